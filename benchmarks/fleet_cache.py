"""What fleet health on Redis costs a request, how fast a bench travels, and the event loop.

python -m benchmarks.fleet_cache [--quick]

Three tables, each against a redis-server of its own (commands counted with
``INFO commandstats``):

1. In one process, a 3-model chain of instant LangChain models: Redis commands and time
   per request with in-process health, with the cached Redis store (this release), and
   with the store reading Redis on every call (``cache=False``: the store before it).
2. Four worker processes against the provider simulator: commands per request while
   healthy and while the primary is down, and how long after one worker benches the
   primary the other three see it in their routing decision (p50/p99 over rounds). Side
   by side with LiteLLM's Router sharing its cooldowns in the same Redis.
3. Four processes x 32 concurrent async requests in asyncio debug mode (slow callback
   threshold 5 ms), healthy then a failing model, with Redis stalled (SIGSTOP) for 0.5 s
   mid-run: slow callbacks, health calls that held the loop, Redis I/O on the loop thread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from ._common import Table, machine, percentile, simulator_process

PRIMARY, BACKUP = "gpt-4o-mini", "gpt-4.1-nano"
WORKERS = 4
LOAD_COOLDOWN = 0.6  # seconds: the load phase benches and probes the primary often
PROPAGATION_COOLDOWN = 3.0  # long enough for LiteLLM's cooldowns to reach other workers
ROUND = PROPAGATION_COOLDOWN + 0.6
IGNORED = {"info", "config|resetstat", "client|list"}


@contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of the benchmark's own (it is stalled and its stats reset)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            tempfile.mkdtemp(),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(500):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.01)
    try:
        yield url, proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=10)


def commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(
        int(v["calls"]) for k, v in stats.items() if k.removeprefix("cmdstat_") not in IGNORED
    )


# -- 1. one process: commands and time per request ------------------------------------------


def _per_request(url: str | None, cache: bool, requests: int) -> list[str]:
    import failover_core as fc
    from failover_core.redis_store import RedisHealthStore
    from langchain_failover import FailoverChatModel

    from ._common import FastChat

    store: Any = None
    if url is None:
        registry = fc.HealthRegistry()
    else:
        store = RedisHealthStore.from_url(url, cache=cache, heartbeat=60)
        registry = fc.HealthRegistry(fc.FailOpenStore(store))
    old = fc.set_health_registry(registry)
    client = redis.Redis.from_url(url) if url else None
    model = FailoverChatModel(models={"a/1": FastChat(), "b/2": FastChat(), "c/3": FastChat()})
    try:
        out: list[str] = []
        for phase in ("healthy", "outage"):
            if phase == "outage":
                registry.bench("a/1", "1h")  # the first model is down and benched
            for _ in range(200):
                model.invoke("hi")
            time.sleep(0.05)
            if client is not None:
                client.config_resetstat()
            rounds = []  # the quickest of five rounds: the machine's noise only adds
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(requests // 5):
                    model.invoke("hi")
                rounds.append((time.perf_counter() - started) / (requests // 5) * 1e6)
            sync_us = min(rounds)
            sent = commands(client) / requests if client is not None else 0.0

            async def many() -> float:
                best = float("inf")
                for _ in range(5):
                    began = time.perf_counter()
                    for _ in range(requests // 5):
                        await model.ainvoke("hi")
                    best = min(best, (time.perf_counter() - began) / (requests // 5) * 1e6)
                return best

            async_us = asyncio.run(many())
            out += [f"{sent:.2f}", f"{sync_us:.0f}", f"{async_us:.0f}"]
        return out
    finally:
        fc.set_health_registry(old)
        if store is not None:
            store.close()


def per_request(requests: int) -> Table:
    table = Table(
        "Health on Redis, per request: 3 instant models, one process",
        [
            "health",
            "commands/request, healthy",
            "µs sync",
            "µs async",
            "commands/request, first model benched",
            "µs sync",
            "µs async",
        ],
    )
    with redis_server() as (url, _):
        rows = [
            ("in-process", None, True),
            ("Redis, cached (this release)", url, True),
            ("Redis, read on every call (cache=False, before)", url, False),
        ]
        for name, where, cache in rows:
            h_cmd, h_sync, h_async, o_cmd, o_sync, o_async = _per_request(where, cache, requests)
            table.rows.append([name, h_cmd, h_sync, h_async, o_cmd, o_sync, o_async])
    base = table.rows[0]
    for row in table.rows[1:]:
        row[2] = f"{row[2]} (+{float(row[2]) - float(base[2]):.0f})"
        row[3] = f"{row[3]} (+{float(row[3]) - float(base[3]):.0f})"
    table.notes.append(
        "FailoverChatModel over three FastChat models; µs per request (the quickest of five "
        "rounds), the added cost over in-process health in brackets. Redis on loopback: "
        "across a network each command costs a round trip more."
    )
    return table


# -- 2. four processes: commands per request, bench propagation ----------------------------


def _worker(kind: str, sim_url: str, redis_url: str, role: str) -> None:
    """A worker process: ``load`` runs a request loop and prints (start, served by the
    primary) per request; ``bencher`` sends one request per round (the primary fails it)
    and prints each one's end; ``observer`` polls the routing decision (would a request go
    to the primary?) and prints when it changed."""
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    logging.getLogger("llm_failover").setLevel(logging.CRITICAL)
    cooldown = LOAD_COOLDOWN if role == "load" else PROPAGATION_COOLDOWN
    benched_at: list[float] = []  # when this worker benched the primary (llm-failover)
    if kind.startswith("llm-failover"):
        from langchain_openai import ChatOpenAI

        import failover_core as fc
        from failover_core.redis_store import RedisHealthStore
        from langchain_failover import FailoverChatModel

        store = RedisHealthStore.from_url(redis_url, cache=kind == "llm-failover")
        registry = fc.HealthRegistry(fc.FailOpenStore(store), cooldown_growth=1, probe_lease=0.2)
        fc.set_health_registry(registry)

        def chat(model: str) -> ChatOpenAI:
            return ChatOpenAI(model=model, base_url=f"{sim_url}/v1", api_key="sim", max_retries=0)

        model = FailoverChatModel(
            models=[chat(PRIMARY), chat(BACKUP)],
            cooldown=cooldown,
            max_retries=1,
            observer=lambda event: benched_at.append(time.time()) if event.benched else None,
        )

        async def ask() -> bool:
            message = await model.ainvoke("hello")
            return bool(message.response_metadata["failover"]["model"].endswith(PRIMARY))

        async def primary_open() -> bool:
            return not registry.is_benched(f"openai/{PRIMARY}")
    else:
        from ._common import litellm_router

        host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
        router = litellm_router(
            f"{sim_url}/v1",
            PRIMARY,
            BACKUP,
            num_retries=0,
            allowed_fails=0,
            cooldown_time=cooldown,
            redis_host=host,
            redis_port=int(port),
        )
        messages = [{"role": "user", "content": "hello"}]

        async def ask() -> bool:
            response = await router.acompletion(model="primary", messages=messages)
            return bool(response.model == PRIMARY)

        async def primary_open() -> bool:
            try:
                await router.async_get_available_deployment(
                    model="primary", messages=messages, request_kwargs={}
                )
            except Exception:
                return False
            return True

    signals = redis.Redis.from_url(redis_url)

    async def main() -> None:
        for _ in range(20):
            await ask()  # warm: imports, clients, connections
        signals.incr("bench:ready")
        while (go := signals.get("bench:go")) is None:  # noqa: ASYNC110 - another process sets it
            await asyncio.sleep(0.002)
        end = float(go)
        log: list[tuple[float, bool]] = []
        if role == "load":
            while time.time() < end:
                started = time.time()
                try:
                    log.append((started, await ask()))
                except Exception:
                    log.append((started, False))
        elif role == "bencher":
            seen = b"0"
            while time.time() < end:
                armed = signals.get("bench:round") or b"0"
                if armed != seen:
                    seen = armed
                    benched_at.clear()
                    primary = await ask()
                    log.append(((benched_at or [time.time()])[0], primary))
                await asyncio.sleep(0.002)
        else:
            state = True
            while time.time() < end:
                now_open = await primary_open()
                if now_open != state:
                    state = now_open
                    log.append((time.time(), state))
                await asyncio.sleep(0.0005)
        print(json.dumps(log), flush=True)

    asyncio.run(main())


def _start(kind: str, sim: Any, redis_url: str, roles: list[str]) -> list[Any]:
    signals = redis.Redis.from_url(redis_url)
    signals.flushdb()
    code = "import sys; from benchmarks.fleet_cache import _worker; _worker(*sys.argv[1:5])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, kind, sim.base_url, redis_url, role],
            stdout=subprocess.PIPE,
            text=True,
        )
        for role in roles
    ]
    while int(signals.get("bench:ready") or 0) < len(roles):
        time.sleep(0.01)
    return procs


def _fleet(kind: str, sim: Any, redis_url: str, rounds: int) -> list[str]:
    signals = redis.Redis.from_url(redis_url)
    sim.reset()
    sim.set_latency("*", 0.002)
    # Commands per request: every worker a request loop, healthy then the primary down.
    procs = _start(kind, sim, redis_url, ["load"] * WORKERS)
    start = time.time() + 0.3
    healthy = (start + 0.2, start + 2.2)
    outage = (start + 2.5, start + 4.5)
    signals.set("bench:go", str(outage[1] + 0.2))
    time.sleep(max(0.0, healthy[0] - time.time()))
    signals.config_resetstat()
    time.sleep(max(0.0, healthy[1] - time.time()))
    healthy_cmds = commands(signals)
    sim.fail(PRIMARY, 503, times=None)
    time.sleep(max(0.0, outage[0] - time.time()))
    signals.config_resetstat()
    time.sleep(max(0.0, outage[1] - time.time()))
    outage_cmds = commands(signals)
    logs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    sim.clear(PRIMARY)

    def served(window: tuple[float, float]) -> int:
        return sum(1 for log in logs for s, _ in log if window[0] <= s < window[1])

    # Propagation: one worker benches the primary (a single 503), three watch for it.
    procs = _start(kind, sim, redis_url, ["bencher"] + ["observer"] * (WORKERS - 1))
    arms: list[float] = []
    signals.set("bench:go", str(time.time() + 1.0 + rounds * ROUND))
    time.sleep(0.5)
    for n in range(rounds):
        arms.append(time.time())
        sim.fail(PRIMARY, 503, times=1)
        signals.set("bench:round", str(n + 1))
        time.sleep(ROUND)
    [benched, *observed] = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    delays: list[float] = []
    for arm, (t0, _) in zip(arms, benched, strict=False):
        for log in observed:
            closed = [
                t for t, is_open in log if not is_open and arm <= t < arm + PROPAGATION_COOLDOWN
            ]
            delays.append((closed[0] - t0) if closed else float("inf"))
    ms = [d * 1000 for d in delays]
    return [
        kind,
        f"{healthy_cmds / max(1, served(healthy)):.2f}",
        f"{outage_cmds / max(1, served(outage)):.2f}",
        f"{percentile(ms, 50):.1f}",
        f"{percentile(ms, 99):.1f}",
        f"{len(ms)}",
    ]


def fleet(rounds: int) -> Table:
    table = Table(
        f"A fleet of {WORKERS} processes on one Redis: commands per request, bench propagation",
        [
            "contender",
            "commands/request, healthy",
            "commands/request, primary down",
            "propagation p50 ms",
            "p99 ms",
            "samples",
        ],
    )
    with redis_server() as (url, _), simulator_process() as sim:
        for kind in ("llm-failover", "llm-failover (cache=False)", "LiteLLM Router"):
            table.rows.append(_fleet(kind, sim, url, rounds))
    table.notes += [
        "Commands: one sequential async request loop per process, the simulator answering "
        "in 2 ms, for 2 s healthy, then 2 s with every primary call a 503 (cooldown 0.6 s, "
        "no growth); INFO commandstats over each window divided by the requests served.",
        "Propagation: a single 503 benches the primary (cooldown 3 s) in one worker; the "
        "three others poll their routing decision (llm-failover: is_benched on the event "
        "loop; LiteLLM: async_get_available_deployment) every 0.5 ms. Delay from the bench "
        "(llm-failover: the failing worker's observer event; LiteLLM: the end of its "
        "request) to each of them seeing it.",
        "LiteLLM Router: redis_host/redis_port, allowed_fails=0, fallbacks to the backup, "
        "no retries.",
    ]
    return table


# -- 3. the event loop ------------------------------------------------------------------------


def _loop_worker(redis_url: str, cache: str) -> None:
    """32 concurrent requests in debug mode; prints slow callbacks and Redis I/O on the loop."""
    import redis.connection

    import failover_core as fc
    from failover_core.redis_store import RedisHealthStore
    from tests.core.fakes import FakeEntry, HTTPError

    logging.getLogger("llm_failover").setLevel(logging.CRITICAL)
    on_loop = [0]
    real_send = redis.connection.AbstractConnection.send_packed_command

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        try:
            asyncio.get_running_loop()
            on_loop[0] += 1
        except RuntimeError:
            pass
        real_send(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    slow: list[float] = []

    class Slow(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if "took" in message and message.endswith("seconds"):
                slow.append(float(message.rsplit(" ", 2)[-2]))

    logging.getLogger("asyncio").addHandler(Slow())
    store = RedisHealthStore.from_url(redis_url, cache=cache == "cached")
    failopen = fc.FailOpenStore(store, retry_after=0.5)
    health_calls: list[float] = []  # seconds each health read or write held the loop

    def timed(method: Any) -> Any:
        def call(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args)
            finally:
                if fc.health.failopen.on_event_loop():
                    health_calls.append(time.perf_counter() - started)

        return call

    for name in ("get", "update", "claim_later", "time"):
        setattr(failopen, name, timed(getattr(failopen, name)))
    registry = fc.HealthRegistry(failopen)
    healthy = fc.FailoverChain(
        [FakeEntry("h/a"), FakeEntry("h/b"), FakeEntry("h/c")], fc.FailoverPolicy.build(), registry
    )
    failing = fc.FailoverChain(
        [FakeEntry("f/a", [HTTPError(503)] * 10**6), FakeEntry("f/b")],
        fc.FailoverPolicy.build(cooldown=0.2, backoff=lambda n: 0.001),
        registry,
    )
    signals = redis.Redis.from_url(redis_url)

    async def call(entry: Any) -> str:
        await asyncio.sleep(0.001)
        return str(entry.call())

    async def requests(stop_at: float, served: list[int]) -> None:
        while time.time() < stop_at:
            chain = healthy if served[0] % 2 else failing
            await chain.ainvoke(call)
            served[0] += 1

    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = 0.005
        await healthy.ainvoke(call)
        signals.incr("loop:ready")
        while (go := signals.get("loop:go")) is None:  # noqa: ASYNC110 - another process sets it
            await asyncio.sleep(0.002)
        on_loop[0], served = 0, [0]
        health_calls.clear()
        started = time.perf_counter()
        await asyncio.gather(*(requests(float(go), served) for _ in range(32)))
        return served[0], time.perf_counter() - started

    served, seconds = asyncio.run(main(), debug=True)
    blocking = [c for c in health_calls if c >= 0.005]
    print(
        json.dumps([served, seconds, slow, on_loop[0], len(blocking), max(health_calls)]),
        flush=True,
    )


def event_loop() -> Table:
    table = Table(
        "The event loop: processes x 32 concurrent async requests, asyncio debug mode, Redis "
        "stalled 0.5 s mid-run",
        [
            "processes x requests, store",
            "requests",
            "slow callbacks (≥ 5 ms), any cause",
            "their total ms",
            "longest ms",
            "health calls ≥ 5 ms on the loop",
            "longest health call ms",
            "Redis commands sent on the loop",
        ],
    )
    with redis_server() as (url, proc):
        for workers, cache in ((WORKERS, "cached"), (WORKERS, "uncached"), (1, "cached")):
            signals = redis.Redis.from_url(url)
            signals.flushdb()
            code = (
                "import sys; from benchmarks.fleet_cache import _loop_worker; "
                "_loop_worker(*sys.argv[1:3])"
            )
            procs = [
                subprocess.Popen([sys.executable, "-c", code, url, cache], stdout=subprocess.PIPE)
                for _ in range(workers)
            ]
            while int(signals.get("loop:ready") or 0) < workers:
                time.sleep(0.01)
            go = time.time() + 0.2
            signals.set("loop:go", str(go + 3.0))
            time.sleep(go + 1.2 - time.time())
            os.kill(proc.pid, signal.SIGSTOP)
            time.sleep(0.5)
            os.kill(proc.pid, signal.SIGCONT)
            results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
            slow = [s for r in results for s in r[2]]
            table.rows.append(
                [
                    f"{workers} x 32, "
                    + ("cached (this release)" if cache == "cached" else "cache=False (before)"),
                    f"{sum(r[0] for r in results):,}",
                    f"{len(slow)}",
                    f"{sum(slow) * 1000:.0f}",
                    f"{max(slow, default=0) * 1000:.0f}",
                    f"{sum(r[4] for r in results):,}",
                    f"{max(r[5] for r in results) * 1000:.1f}",
                    f"{sum(r[3] for r in results):,}",
                ]
            )
    table.notes.append(
        "Half the requests go to a healthy 3-model chain, half to a chain whose first model "
        "always fails (503): strikes, benches, probes, writes. Slow callbacks are asyncio's "
        "own report and include any cause (CPU contention on a shared machine, debug mode); "
        "health calls are timed around each registry-to-store call made on the loop; the "
        "last column counts redis-py sends on the loop thread. One process alone shows what "
        "the four share: two cores, so a call can wait for a core or the GIL."
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    args = parser.parse_args()
    logging.getLogger("llm_failover").setLevel(logging.CRITICAL)
    tables = [
        per_request(requests=300 if args.quick else 2000),
        fleet(rounds=4 if args.quick else 12),
        event_loop(),
    ]
    print(f"Measured on {machine()}\n")
    for table in tables:
        print(table.markdown())


if __name__ == "__main__":
    main()
