"""Reliability round 3 (issue 24) on a real redis-server: a bench survives a store outage,
one bad record is that record's problem, a Redis user without CLIENT, bounded bookkeeping."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

import failover_core as fc
from failover_core.redis_store import RedisHealthStore
from tests.core.fakes import FakeEntry, HTTPError
from tests.redis.conftest import RedisServer

PREFIX = "llm-failover:health:"
COOL = timedelta(minutes=5)

_open: list[RedisHealthStore] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def eventually(check: Callable[[], bool], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def cached(url: str, **options: Any) -> RedisHealthStore:
    store = RedisHealthStore.from_url(url, **options)
    _open.append(store)
    return store


# -- 1. a bench made on an event loop survives a Redis stall --------------------------------


def test_an_async_bench_made_while_redis_stalls_is_kept_and_written_when_it_is_back(
    own_server: RedisServer,
) -> None:
    assert own_server.proc is not None
    primary = cached(own_server.url)
    store = fc.FailOpenStore(primary, retry_after=0.3)
    registry = fc.HealthRegistry(store)
    registry.is_benched("warm/up")
    assert eventually(lambda: primary.cache_trusted)
    dead, good = FakeEntry("m/dead", [HTTPError(401)]), FakeEntry("m/good")
    chain = fc.FailoverChain([dead, good], fc.FailoverPolicy.build(), registry)

    async def call(entry: FakeEntry) -> str:
        return await entry.acall()

    os.kill(own_server.proc.pid, signal.SIGSTOP)
    try:
        assert asyncio.run(chain.ainvoke(call))[1].model == "m/good"
        # The writer's transaction times out (0.25 s), the heartbeat misses (about 1 s):
        # the process goes on in-process, and must still know the bench.
        assert eventually(lambda: not primary.cache_trusted)
        for _ in range(20):
            assert asyncio.run(chain.ainvoke(call))[1].model == "m/good"
            assert registry.is_benched("m/dead")
            time.sleep(0.05)
        assert dead.calls == 1, "the dead model is not called again during the outage"
    finally:
        os.kill(own_server.proc.pid, signal.SIGCONT)
    client = redis.Redis.from_url(own_server.url)

    def written() -> bool:
        asyncio.run(chain.ainvoke(call))  # a request after Redis is back merges it
        return client.get(PREFIX + "m/dead") is not None

    assert eventually(written, 5.0), "the bench reached Redis once it was back"
    assert dead.calls == 1
    other = fc.HealthRegistry(RedisHealthStore.from_url(own_server.url, cache=False))
    assert other.is_benched("m/dead"), "every worker sees it"


# -- 2. one bad record is that record's problem ---------------------------------------------


def cli(url: str, *args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "failover_core.cli", *args, "--redis-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("cache", [True, False])
def test_a_redis_list_under_a_models_key_is_read_as_absent_and_replaced(
    redis_url: str, cache: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(redis_url)
    bad = f"m/list-{cache}"  # bad records are logged once per process: one key each
    client.rpush(PREFIX + bad, "x", "y")
    primary = cached(redis_url, cache=cache)
    store = fc.FailOpenStore(primary)
    registry = fc.HealthRegistry(store)
    with caplog.at_level("WARNING", logger="llm_failover"):
        assert not registry.is_benched(bad)
        registry.bench_now("m/other", COOL)
        assert not store.degraded, "one bad record is not an outage"
        assert client.get(PREFIX + "m/other") is not None, "other benches reach Redis"
        registry.bench_now(bad, COOL)
        assert not registry.is_benched(bad) or client.type(PREFIX + bad) == b"string"
        assert not store.degraded
    assert client.type(PREFIX + bad) == b"string", "replaced on the next write"
    assert registry.is_benched(bad)
    logged = [r.getMessage() for r in caplog.records if bad in r.getMessage()]
    assert len([m for m in logged if "malformed" in m]) == 1, logged


def test_the_cli_benches_and_unbenches_a_model_whose_record_is_a_redis_list(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.rpush(PREFIX + "m/list", "x")
    out = cli(redis_url, "unbench", "m/list")
    assert out.returncode == 0, out.stderr
    out = cli(redis_url, "bench", "m/list", "--for", "5m")
    assert out.returncode == 0, out.stderr
    assert client.type(PREFIX + "m/list") == b"string"
    assert cli(redis_url, "unbench", "m/list").returncode == 0
    assert client.get(PREFIX + "m/list") is None


@pytest.mark.parametrize("cache", [True, False])
def test_a_key_redis_cannot_encode_does_not_take_the_store_down(
    redis_url: str, cache: bool
) -> None:
    odd = "m/\udcff\ud800"  # lone surrogates: not UTF-8
    primary = cached(redis_url, cache=cache)
    store = fc.FailOpenStore(primary)
    registry = fc.HealthRegistry(store)
    if cache:
        assert eventually(lambda: primary.cache_trusted)
    assert not registry.is_benched(odd)
    registry.bench_now(odd, COOL)
    registry.bench_now("m/other", COOL)
    assert not store.degraded
    assert registry.is_benched(odd)
    fresh = fc.HealthRegistry(RedisHealthStore.from_url(redis_url, cache=False))
    assert fresh.is_benched(odd) and fresh.is_benched("m/other")
    assert sorted(b.model for b in fresh.list()) == sorted([odd, "m/other"])

    async def on_loop() -> bool:
        registry.bench_now("m/third", COOL)
        return registry.is_benched(odd)

    assert asyncio.run(on_loop())
    assert eventually(lambda: fresh.is_benched("m/third"))
    raw = "m/" + b"caf\xe9".decode("utf-8", "surrogateescape")  # a Latin-1 name, as read
    registry.bench_now(raw, COOL)
    assert redis.Redis.from_url(redis_url).get(PREFIX.encode() + b"m/caf\xe9") is not None
    assert fresh.is_benched(raw) and raw in [b.model for b in fresh.list()]


# -- the CLI: bad input, keys without a provider, escaped output (issues 24.7, 24.9, 27.3) ---


def cli_bare(*args: str) -> Any:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "LLM_FAILOVER_REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "failover_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("--redis-url", "garbage", "list"),
        ("list", "--redis-url", "notaurl"),
        ("--redis-url", "http://127.0.0.1:1/0", "unbench", "m/a"),
    ],
)
def test_a_bad_redis_url_is_one_line_not_a_traceback(args: tuple[str, ...]) -> None:
    out = cli_bare(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "not a Redis URL" in out.stderr and "redis://" in out.stderr


def test_the_redis_url_is_taken_after_each_subcommand(redis_url: str) -> None:
    assert cli(redis_url, "bench", "m/a", "--for", "5m").returncode == 0
    listed = cli(redis_url, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["model"] for r in __import__("json").loads(listed.stdout)] == ["m/a"]
    assert cli(redis_url, "unbench", "m/a").returncode == 0


@pytest.mark.parametrize(
    "command", [("bench", "", "--for", "5m"), ("unbench", ""), ("unbench", "  ")]
)
def test_an_empty_model_key_is_refused_by_bench_and_unbench_alike(
    redis_url: str, command: tuple[str, ...]
) -> None:
    out = cli(redis_url, *command)
    assert out.returncode == 2 and "must not be empty" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_key_without_a_provider_is_refused_unless_forced(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    out = cli(redis_url, "bench", "gpt-4o", "--for", "30m")
    assert out.returncode == 2
    assert "openai/gpt-4o" in out.stderr and "--force" in out.stderr
    assert client.keys(PREFIX + "*") == [], "nothing benched"
    forced = cli(redis_url, "bench", "gpt-4o", "--for", "30m", "--force")
    assert forced.returncode == 0, forced.stderr
    assert client.get(PREFIX + "gpt-4o") is not None
    assert cli(redis_url, "unbench", "gpt-4o").returncode == 0
    hint = cli(redis_url, "unbench", "gpt-4o").stdout
    assert "was not benched" in hint and "provider/model" in hint


def test_the_cli_prints_hostile_keys_escaped(redis_url: str) -> None:
    registry = fc.HealthRegistry(RedisHealthStore.from_url(redis_url, cache=False))
    registry.bench_now("m/\x1b[2J\x1b]0;owned\x07x\nFAKE  ROW", COOL)
    out = cli(redis_url, "list")
    assert out.returncode == 0
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert len(out.stdout.strip().splitlines()) == 2, "a header and one row"
    assert "\\x1b[2J" in out.stdout
    unbench = cli(redis_url, "unbench", "m/\x1b[2Jx")
    assert "\x1b" not in unbench.stdout


# -- 4. a Redis user that may not run CLIENT -------------------------------------------------


@pytest.mark.parametrize("denied", ["-client", "-subscribe"])
def test_a_redis_user_without_client_permission_reads_redis_and_says_so_once(
    redis_url: str, denied: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command(
        "ACL", "SETUSER", "worker", "reset", "on", ">pw", "~*", "&*", "+@all", denied
    )
    try:
        url = redis_url.replace("redis://", "redis://worker:pw@")
        with caplog.at_level(logging.INFO, logger="llm_failover"):
            primary = cached(url)
            store = fc.FailOpenStore(primary)
            registry = fc.HealthRegistry(store)
            registry.is_benched("warm/up")
            time.sleep(0.3)  # the invalidation thread finds out (a real server answers)
            before = int(admin.info("stats")["total_connections_received"])
            dead = FakeEntry("m/dead", [HTTPError(401)])
            chain = fc.FailoverChain(
                [dead, FakeEntry("m/good")], fc.FailoverPolicy.build(), registry
            )

            async def call(entry: FakeEntry) -> str:
                return await entry.acall()

            for _ in range(3):
                assert asyncio.run(chain.ainvoke(call))[1].model == "m/good"
            time.sleep(1.0)
            opened = int(admin.info("stats")["total_connections_received"]) - before
        assert admin.get(PREFIX + "m/dead") is not None, "the async bench reached Redis"
        assert dead.calls == 1
        assert opened <= 2, f"{opened} connections opened in a second: a reconnect storm"
        assert not store.degraded
        said = [r.getMessage() for r in caplog.records if "CLIENT" in r.getMessage()]
        assert len(said) == 1, said
        assert "permission" in said[0] and "read from Redis" in said[0]
        assert primary.tracking_supported is False
        admin.config_resetstat()
        for _ in range(50):
            registry.is_benched("m/good")
        stats = admin.info("commandstats")
        assert stats.get("cmdstat_time", {}).get("calls", 0) <= 1, "the clock offset is reused"
        assert stats.get("cmdstat_ping", {}).get("calls", 0) <= 1
    finally:
        admin.execute_command("ACL", "DELUSER", "worker")


# -- 6. bounded bookkeeping: the store's per-key tables --------------------------------------


def test_the_stores_per_key_tables_stay_bounded_as_short_lived_keys_expire(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_core.health.redis import store as _store

    monkeypatch.setattr(_store, "_SEEN_LIMIT", 1_000, raising=False)  # a smaller table
    primary = cached(redis_url)
    registry = fc.HealthRegistry(fc.FailOpenStore(primary))
    registry.is_benched("warm/up")
    assert eventually(lambda: primary.cache_trusted)
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    for n in range(20_000):  # other workers' strikes, each gone 50 ms later
        pipe.set(f"{PREFIX}m/{n}", '{"strikes": 1}', px=50)
    pipe.execute()
    assert eventually(lambda: client.dbsize() == 0, 30), "expired"
    registry.bench_now("m/after", COOL)
    assert eventually(lambda: fc.HealthRegistry(primary).is_benched("m/after"))
    assert eventually(lambda: len(primary._records) <= 1, 20), "the expiries are all read"
    assert len(primary._seen) <= 1_000, len(primary._seen)


# -- 11. a Redis restart that lost its data: the benches in force are written back ----------


def test_benches_in_force_are_reasserted_after_redis_restarts_without_persistence(
    own_server: RedisServer,
) -> None:
    primary = cached(own_server.url, reconnect_after=0.05)
    registry = fc.HealthRegistry(fc.FailOpenStore(primary))
    registry.is_benched("warm/up")
    assert eventually(lambda: primary.cache_trusted)
    registry.bench_now("m/dead", COOL)
    registry.bench("m/manual", "30m")
    client = redis.Redis.from_url(own_server.url)
    assert eventually(lambda: client.get(PREFIX + "m/dead") is not None)
    until = client.pttl(PREFIX + "m/manual")
    run_id = client.info("server")["run_id"]
    own_server.stop()  # no RDB, no AOF: everything is gone (the store may write back at once)
    own_server.start()
    assert client.info("server")["run_id"] != run_id
    assert eventually(lambda: client.get(PREFIX + "m/dead") is not None, 5), "re-asserted"
    assert eventually(lambda: client.get(PREFIX + "m/manual") is not None, 5)
    assert abs(client.pttl(PREFIX + "m/manual") - until) < 5_000, "the same end, not a new one"
    other = fc.HealthRegistry(RedisHealthStore.from_url(own_server.url, cache=False))
    assert other.is_benched("m/dead") and other.is_benched("m/manual")
    assert [b.manual for b in other.list() if b.model == "m/manual"] == [True]


def test_an_operators_flush_is_not_undone(redis_url: str) -> None:
    primary = cached(redis_url)
    registry = fc.HealthRegistry(fc.FailOpenStore(primary))
    registry.is_benched("warm/up")
    assert eventually(lambda: primary.cache_trusted)
    registry.bench_now("m/dead", COOL)
    client = redis.Redis.from_url(redis_url)
    assert eventually(lambda: client.get(PREFIX + "m/dead") is not None)
    client.flushdb()
    assert eventually(lambda: not registry.is_benched("m/dead"))
    time.sleep(0.3)
    assert client.get(PREFIX + "m/dead") is None
