"""Fleet health cached in each process and kept exact by Redis (issue 14), on a real
redis-server: no command for a healthy request, a bench seen fleet-wide within 50 ms, an
untrusted copy while the invalidation connection is down, one probe in the fleet from
event loops, and no Redis I/O on an event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.connection

import failover_core as fc
from failover_core.redis_store import RedisHealthStore
from tests.core.fakes import FakeEntry, HTTPError
from tests.redis.conftest import RedisServer

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "llm-failover:health:"
COOL = timedelta(minutes=5)


def commands(client: redis.Redis) -> dict[str, int]:
    """Commands the server ran since the last reset, by name (ours to count them left out)."""
    stats = client.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    return {k: v for k, v in counts.items() if k not in {"info", "config|resetstat"}}


def eventually(check: Callable[[], bool], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


_open: list[RedisHealthStore] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    """Each cached store has an invalidation connection: close them after each test."""
    yield
    while _open:
        _open.pop().close()


def cached(url: str, **options: Any) -> RedisHealthStore:
    store = RedisHealthStore.from_url(url, **options)
    _open.append(store)
    return store


def fleet(url: str, **options: Any) -> tuple[fc.HealthRegistry, RedisHealthStore]:
    primary = cached(url, **options)
    registry = fc.HealthRegistry(fc.FailOpenStore(primary))
    registry.is_benched("warm/up")  # start the invalidation connection
    assert eventually(lambda: primary.cache_trusted), "the copy is loaded"
    return registry, primary


# -- 1. a healthy request sends nothing -------------------------------------------------------


def test_healthy_requests_send_no_redis_command_sync_or_async(redis_url: str) -> None:
    registry, _ = fleet(redis_url, heartbeat=60)
    entries = [FakeEntry("a/1"), FakeEntry("b/2"), FakeEntry("c/3")]
    chain = fc.FailoverChain(entries, fc.FailoverPolicy.build(), registry)
    chain.invoke(lambda e: e.call())
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()

    for _ in range(50):
        assert chain.invoke(lambda e: e.call())[1].model == "a/1"

    async def call(entry: FakeEntry) -> str:
        return entry.call()

    async def many() -> None:
        for _ in range(50):
            assert (await chain.ainvoke(call))[1].model == "a/1"

    asyncio.run(many())
    assert commands(client) == {}, "100 healthy requests, not one command"


def test_writes_only_when_state_changes_and_other_workers_see_them(redis_url: str) -> None:
    registry, mine = fleet(redis_url, heartbeat=60)
    other, theirs = fleet(redis_url, heartbeat=60)
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    registry.bench_now("m/a", COOL)
    assert eventually(lambda: other.is_benched("m/a"), 0.05)
    counts = commands(client)
    assert counts.get("exec") == 1 and counts.get("set") == 1, counts
    # Each copy re-reads the key once the change is announced (the writer's too); until
    # that re-read lands a read goes to Redis. The steady state after it is what counts.
    assert eventually(lambda: not mine._stale and not theirs._stale, 0.05)
    client.config_resetstat()
    for _ in range(20):
        assert other.is_benched("m/a") and registry.is_benched("m/a")
    # At most a store's own re-read of the write, if it was still on its way.
    assert set(commands(client)) <= {"mget"}, "reads of a bench are local too"


# -- 2. propagation across processes --------------------------------------------------------

OBSERVER = """
import json, sys, time
import redis
import failover_core as fc
from failover_core.redis_store import RedisHealthStore
url, keys = sys.argv[1], sys.argv[2].split(",")
primary = RedisHealthStore.from_url(url, heartbeat=60)
registry = fc.HealthRegistry(fc.FailOpenStore(primary))
registry.is_benched("warm/up")
while not primary.cache_trusted:
    time.sleep(0.001)
signals = redis.Redis.from_url(url)
signals.incr("ready")
seen = {}
deadline = time.time() + 20
while len(seen) < len(keys) and time.time() < deadline:
    for key in keys:
        if key not in seen and registry.is_benched(key):
            seen[key] = time.time()
    time.sleep(0.0005)
print(json.dumps(seen))
"""


def test_a_bench_reaches_three_other_processes_within_50ms_reading_nothing(
    redis_url: str,
) -> None:
    keys = [f"m/{i}" for i in range(15)]
    client = redis.Redis.from_url(redis_url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OBSERVER, redis_url, ",".join(keys)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    assert eventually(lambda: int(client.get("ready") or 0) == 3, 60)
    bencher = fc.HealthRegistry(fc.FailOpenStore(cached(redis_url)))
    client.config_resetstat()
    made: dict[str, float] = {}
    for key in keys:
        made[key] = time.time()
        bencher.bench_now(key, COOL)
        time.sleep(0.03)
    time.sleep(0.2)
    counts = commands(client)
    seen = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    delays = sorted(s[key] - made[key] for s in seen for key in keys)
    assert len(delays) == 45, "every process saw every bench"
    p99 = delays[int(0.99 * (len(delays) - 1))]
    assert p99 < 0.05, f"propagation p99 {p99 * 1000:.1f} ms (slowest {delays[-1] * 1000:.1f})"
    # The observers polled ~2,000 times a second each; they re-read only what changed.
    assert sum(counts.values()) < 15 * 30, counts


# -- 4. the invalidation connection drops -----------------------------------------------------


def kill_invalidation_connection(client: redis.Redis, store: RedisHealthStore) -> None:
    named = {int(c["id"]) for c in client.client_list() if c["name"] == "llm-failover-invalidation"}
    assert store.invalidation_client_id in named
    client.client_kill_filter(_id=str(store.invalidation_client_id))


def test_a_killed_invalidation_connection_untrusts_the_copy_until_it_is_back(
    redis_url: str,
) -> None:
    registry, primary = fleet(redis_url, heartbeat=60, reconnect_after=0.5)
    client = redis.Redis.from_url(redis_url)
    kill_invalidation_connection(client, primary)
    assert eventually(lambda: not primary.cache_trusted, 0.2)
    # Written while nobody tells this process: it must still be read exactly.
    client.set(PREFIX + "m/a", json.dumps({"until": time.time() + 60, "cooldown": 60}))
    client.config_resetstat()
    assert registry.is_benched("m/a"), "an untrusted copy is not used"
    assert commands(client).get("get", 0) >= 1, "read from Redis"

    assert eventually(lambda: primary.cache_trusted, 3), "re-established"
    client.config_resetstat()
    assert registry.is_benched("m/a") and not registry.is_benched("m/b")
    assert commands(client) == {}, "local again"
    client.set(PREFIX + "m/b", json.dumps({"until": time.time() + 60, "cooldown": 60}))
    assert eventually(lambda: registry.is_benched("m/b"), 0.05), "and kept exact again"


def test_on_an_event_loop_an_untrusted_copy_means_in_process_health_not_waiting(
    redis_url: str,
) -> None:
    registry, primary = fleet(redis_url, heartbeat=60, reconnect_after=0.5)
    registry.bench_now("m/a", COOL)
    assert eventually(lambda: registry.store.get("m/a") is not None)
    client = redis.Redis.from_url(redis_url)

    async def during_the_gap() -> tuple[bool, bool, bool]:
        kill_invalidation_connection(client, primary)
        while primary.cache_trusted:  # noqa: ASYNC110 - the store's own thread clears it
            await asyncio.sleep(0.001)
        client.config_resetstat()
        registry.bench_now("m/b", COOL)  # recorded in-process meanwhile
        seen = registry.is_benched("m/a"), registry.is_benched("m/b")
        sent = bool(commands(client))
        while not primary.cache_trusted:  # noqa: ASYNC110 - the store's own thread sets it
            await asyncio.sleep(0.01)
        registry.is_benched("m/a")  # the next call finds it back and merges
        return *seen, sent

    a, b, sent = asyncio.run(during_the_gap())
    assert a, "a bench known before the gap is honoured in-process"
    assert b and not sent, "the loop sent nothing while the copy was untrusted"
    assert eventually(lambda: fleet(redis_url)[0].is_benched("m/b")), "merged back"


def test_a_server_without_client_tracking_is_read_on_every_call(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis before 6 answers CLIENT TRACKING with an error: faked here."""
    real = redis.connection.AbstractConnection.send_command

    def old_server(self: Any, *args: Any, **kwargs: Any) -> None:
        if args[:2] == ("CLIENT", "TRACKING"):
            args = ("CLIENT", "NO-SUCH-SUBCOMMAND")  # the server's own error reply
        real(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", old_server)
    primary = cached(redis_url)
    registry = fc.HealthRegistry(fc.FailOpenStore(primary))
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        registry.is_benched("m/a")
        assert eventually(lambda: primary.tracking_supported is False)
    assert any("no client tracking" in r.getMessage() for r in caplog.records)
    registry.bench_now("m/a", COOL)
    other = fc.HealthRegistry(fc.FailOpenStore(cached(redis_url)))
    assert other.is_benched("m/a"), "still shared, read from Redis"
    assert not primary.cache_trusted and not primary.nonblocking()


# -- 4b. a process reads its own writes, whatever the invalidation thread is reading ----------


class Gate:
    """Holds the invalidation thread at one step until the test lets it go on."""

    def __init__(self) -> None:
        self.reached, self.go = threading.Event(), threading.Event()

    def hold(self) -> None:
        self.reached.set()
        assert self.go.wait(5), "the test never let the invalidation thread go on"


def trusted(url: str) -> tuple[fc.HealthRegistry, RedisHealthStore]:
    store = cached(url)
    registry = fc.HealthRegistry(store)
    registry.is_benched("warm/up")
    assert eventually(lambda: store.cache_trusted)
    return registry, store


def test_a_bench_made_while_the_copy_reloads_is_seen_at_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy reloads (a FLUSHDB, a reconnect) from a read of Redis made before this
    process's bench and installed after it: the bench must not vanish until its own
    invalidation arrives. (This made the fleet's one-probe test see no probe at all.)"""
    registry, store = trusted(redis_url)
    loaded, reloaded, own_invalidation = Gate(), threading.Event(), Gate()
    real_items, real_invalidated = store.items, store._invalidated

    def items() -> list[tuple[str, fc.HealthRecord]]:
        read = real_items()
        loaded.hold()  # read, not installed yet
        return read

    def invalidated(names: list[bytes] | None) -> None:
        if names is not None:
            own_invalidation.hold()
        real_invalidated(names)
        if names is None:
            reloaded.set()

    monkeypatch.setattr(store, "items", items)
    monkeypatch.setattr(store, "_invalidated", invalidated)
    redis.Redis.from_url(redis_url).flushdb()
    assert loaded.reached.wait(5)
    until = registry.bench_now("m/a", COOL)
    loaded.go.set()
    assert reloaded.wait(5)
    try:
        assert registry.is_benched("m/a"), "this process's own bench, read back at once"
        assert registry.benched_until("m/a") == until
    finally:
        own_invalidation.go.set()
    assert eventually(lambda: store.cache_trusted and "m/a" not in store._stale)
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    assert registry.is_benched("m/a") and commands(client) == {}, "then cached again"


def test_a_bench_made_while_another_change_is_read_is_seen_at_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker changes the record; this process's invalidation thread reads that
    change just before this process benches the model, and installs it just after: the
    older record must not hide the bench."""
    registry, store = trusted(redis_url)
    read_theirs, read_ours = Gate(), Gate()
    real_mget, real_invalidated = store.client.mget, store._invalidated
    calls: list[int] = []

    def mget(keys: Any, *args: Any) -> Any:
        values = real_mget(keys, *args)
        read_theirs.hold()  # read, not installed yet
        return values

    def invalidated(names: list[bytes] | None) -> None:
        calls.append(1)
        if len(calls) == 1:
            with monkeypatch.context() as patch:
                patch.setattr(store.client, "mget", mget)
                real_invalidated(names)
        else:
            read_ours.hold()  # the invalidation of our own bench waits
            real_invalidated(names)

    monkeypatch.setattr(store, "_invalidated", invalidated)
    ended = {"until": time.time() - 120, "cooldown": 60}  # their record: a bench long over
    redis.Redis.from_url(redis_url).set(PREFIX + "m/a", json.dumps(ended))
    assert read_theirs.reached.wait(5)
    registry.bench_now("m/a", COOL)
    read_theirs.go.set()
    assert read_ours.reached.wait(5)
    try:
        assert registry.is_benched("m/a"), "this process's own bench, read back at once"
    finally:
        read_ours.go.set()
    assert eventually(lambda: "m/a" not in store._stale), "settled by its own invalidation"
    assert registry.is_benched("m/a")


# -- 2b/3. one probe in the fleet from event loops; no Redis I/O on a loop ------------------

ASYNC_WORKER = """
import asyncio, sys, time
import redis
import failover_core as fc
from failover_core.redis_store import RedisHealthStore
from tests.core.fakes import FakeEntry, HTTPError
url = sys.argv[1]
primary = RedisHealthStore.from_url(url)
registry = fc.HealthRegistry(fc.FailOpenStore(primary))
registry.is_benched("warm/up")
while not primary.cache_trusted:
    time.sleep(0.001)
a, b = FakeEntry("m/a", [HTTPError(503)] * 1000), FakeEntry("m/b")
chain = fc.FailoverChain([a, b], fc.FailoverPolicy.build(), registry)
signals = redis.Redis.from_url(url)
signals.incr("ready")
while not signals.exists("go"):
    time.sleep(0.001)

async def call(entry):
    await asyncio.sleep(0.001)
    return entry.call()

async def requests():
    for _ in range(10):
        await chain.ainvoke(call)

async def main():
    await asyncio.gather(*(requests() for _ in range(32)))

asyncio.run(main())
print(a.calls)
"""


def test_four_processes_of_32_async_requests_make_exactly_one_probe(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    setup = fc.HealthRegistry(RedisHealthStore.from_url(redis_url, cache=False))
    setup.bench_now("m/a", timedelta(seconds=60))
    setup.store.update("m/a", lambda r: r and fc.HealthRecord(until=time.time() - 1, cooldown=60))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ASYNC_WORKER, redis_url], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    assert eventually(lambda: int(client.get("ready") or 0) == 4, 60)
    client.set("go", 1)
    calls = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(calls) == 1, f"calls to the recovering model per process: {calls}"
    assert setup.is_benched("m/a"), "the probe failed: benched again"


def test_on_an_event_loop_the_next_request_after_a_cooldown_is_the_probe(redis_url: str) -> None:
    """The lease is claimed off the loop for the request about to start, so a quiet
    worker's next request probes the model: it is not skipped for a lease it never uses."""
    registry, _ = fleet(redis_url)
    a, b = FakeEntry("m/a", [HTTPError(503)] * 100), FakeEntry("m/b")
    policy = fc.FailoverPolicy.build(max_retries=1, cooldown=timedelta(seconds=60))
    chain = fc.FailoverChain([a, b], policy, registry)
    operator = RedisHealthStore.from_url(redis_url, cache=False)
    ended = lambda r: r and fc.HealthRecord(until=operator.time() - 1, cooldown=60)  # noqa: E731

    def benched_in_redis() -> bool:
        record = operator.get("m/a")
        return record is not None and record.benched_at(operator.time())

    async def until(check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 2
        while not check():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.001)

    async def call(entry: FakeEntry) -> str:
        return entry.call()

    async def rounds() -> list[int]:
        calls = []
        for _ in range(5):
            # The failed probe's bench has reached Redis (the writer thread sends it).
            await asyncio.to_thread(until_sync, benched_in_redis)
            await asyncio.to_thread(operator.update, "m/a", ended)  # the cooldown just ended
            await until(lambda: not registry.is_benched("m/a"))  # this worker heard of it
            before = a.calls
            assert (await chain.ainvoke(call))[1].model == "m/b"
            calls.append(a.calls - before)
        return calls

    registry.bench_now("m/a", COOL)
    assert asyncio.run(rounds()) == [1] * 5, "each probe made by the next request"
    assert registry.is_benched("m/a"), "the failed probe benched it again"


def until_sync(check: Callable[[], bool]) -> None:
    assert eventually(check)


def test_the_async_path_does_no_redis_io_on_the_loop_even_when_redis_stalls(
    own_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[str] = []
    real_send = redis.connection.AbstractConnection.send_packed_command

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        try:
            asyncio.get_running_loop()
            on_loop.append(repr(command)[:60])
        except RuntimeError:
            pass
        real_send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send)
    assert own_server.proc is not None
    registry, _ = fleet(own_server.url)
    a = FakeEntry("m/a", [HTTPError(503)] * 10_000)
    d = FakeEntry("m/d", [HTTPError(401)] * 10_000)
    chain = fc.FailoverChain(
        [a, d, FakeEntry("m/b")], fc.FailoverPolicy.build(), registry, asleep=lambda s: _now()
    )
    slow: list[float] = []

    async def call(entry: FakeEntry) -> str:
        await asyncio.sleep(0)
        return entry.call()

    async def requests(stop_at: float) -> None:
        while time.monotonic() < stop_at:
            assert (await chain.ainvoke(call))[1].model == "m/b"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = 0.1
        stop_at = time.monotonic() + 1.0
        tasks = [asyncio.create_task(requests(stop_at)) for _ in range(32)]
        await asyncio.sleep(0.3)
        assert own_server.proc is not None
        os.kill(own_server.proc.pid, signal.SIGSTOP)  # Redis stalls mid-run
        await asyncio.gather(*tasks)

    handler = _SlowCallbacks(slow)
    logging.getLogger("asyncio").addHandler(handler)
    try:
        asyncio.run(main(), debug=True)
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
        os.kill(own_server.proc.pid, signal.SIGCONT)
    assert on_loop == [], f"Redis I/O on the event loop: {on_loop[:3]}"
    # A health call waiting out the stall would hold the loop for the 250 ms timeout.
    assert max(slow, default=0) < 0.2, f"the loop was blocked: {slow}"
    assert a.calls >= 1 and d.calls >= 1


async def _now() -> None:
    await asyncio.sleep(0)


class _SlowCallbacks(logging.Handler):
    """Collects asyncio debug mode's "Executing ... took N seconds" reports."""

    def __init__(self, into: list[float]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "took" in message and message.endswith("seconds"):
            self.into.append(float(message.rsplit(" ", 2)[-2]))
