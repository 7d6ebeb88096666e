"""Reliability under faults: a fleet on a real Redis, loaded while Redis misbehaves.

Four workers (each its own registry, FailOpenStore and Redis client, as four processes
would have) run eight request loops each for LOAD seconds over one chain:

    d/0  dead (401 on every call): benched at once, fleet-wide
    p/1  healthy, benched by an operator (manual, 10 min) at 0.5 s, while requests are in flight
    r/3  serves until its key is revoked, 0.2 s into the fault (401 from then on): benched
         while the fault is on
    b/2  healthy: serves once the others are benched

Each model call takes 2 ms. A fault starts at FAULT_AT and lasts FAULT_FOR seconds. Counted:
requests served and failed; benches lost (of d/0's, p/1's and r/3's, missing from Redis
once it answers again); healthy models benched (b/2 in Redis at the end); requests served by p/1
that started after its bench; calls to the dead model; the slowest request. Rows marked
"async" run each worker's loops as tasks on one event loop (``ainvoke``). Run:
``python -m benchmarks.reliability`` (needs redis-server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import redis

import failover_core as fc
from failover_core.redis_store import RedisHealthStore

from ._common import Table, percentile

WORKERS, LOOPS = 4, 8
LOAD, FAULT_AT, FAULT_FOR, BENCH_AT = 6.0, 1.0, 2.0, 0.5
PREFIX = "llm-failover:health:"


class Dead(Exception):
    status_code = 401


class Model:
    """A chain member that takes 2 ms and counts its calls (``calls_dead``: once dead)."""

    def __init__(self, key: str, *, dead: bool = False) -> None:
        self.key, self.dead = key, dead
        self.calls = self.calls_dead = 0
        self._lock = threading.Lock()

    def revoke(self) -> None:
        self.dead = True

    def call(self) -> str:
        with self._lock:
            self.calls += 1
            self.calls_dead += self.dead
        time.sleep(0.002)
        if self.dead:
            raise Dead("revoked key")
        return self.key

    async def acall(self) -> str:
        with self._lock:
            self.calls += 1
            self.calls_dead += self.dead
        await asyncio.sleep(0.002)
        if self.dead:
            raise Dead("revoked key")
        return self.key


class Server:
    """A redis-server of our own that can be stalled, killed and started again."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, persist: bool = True) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None, "needs redis-server"
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if persist else []
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", *aof],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(500):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait()
            self.proc = None


@dataclass
class Fault:
    name: str
    start: Callable[[Server], None] = lambda server: None
    end: Callable[[Server], None] = lambda server: None
    clocks: tuple[float, ...] = (0.0,) * WORKERS
    on_loop: bool = False  # each worker's loops as tasks on one event loop
    user_acl: tuple[str, ...] = ()  # the workers' Redis user gets these ACL rules


def _corrupt(server: Server) -> None:
    client = redis.Redis.from_url(server.url)
    garbage = ['{"until": "abc"}', "not json", '{"until": Infinity}', '{"until": 1e300}']
    for n, raw in enumerate(garbage):
        client.set(f"{PREFIX}x/{n}", raw)
    client.set(PREFIX + "b/2", garbage[0])  # the serving model's own record


def _wrong_types(server: Server) -> None:
    client = redis.Redis.from_url(server.url)
    client.rpush(PREFIX + "b/2", "a list")  # the serving model's own key: WRONGTYPE
    client.hset(PREFIX + "x/hash", "field", "value")


def _lose_everything(server: Server) -> None:
    server.kill()
    shutil.rmtree(server.dir, ignore_errors=True)
    os.makedirs(server.dir)


FAULTS = [
    Fault("none"),
    Fault(
        f"Redis stalled {FAULT_FOR:g} s (SIGSTOP)",
        start=lambda s: s.signal(signal.SIGSTOP),
        end=lambda s: s.signal(signal.SIGCONT),
    ),
    Fault(
        f"Redis killed, back after {FAULT_FOR:g} s (AOF on)", start=Server.kill, end=Server.start
    ),
    Fault("corrupt records under the prefix", start=_corrupt),
    Fault("worker clocks +10 min, -1 h, -1 min, 0", clocks=(600.0, -3600.0, -60.0, 0.0)),
    Fault(
        f"async: Redis stalled {FAULT_FOR:g} s (SIGSTOP)",
        start=lambda s: s.signal(signal.SIGSTOP),
        end=lambda s: s.signal(signal.SIGCONT),
        on_loop=True,
    ),
    Fault(
        f"async: Redis killed, back after {FAULT_FOR:g} s (AOF on)",
        start=Server.kill,
        end=Server.start,
        on_loop=True,
    ),
    Fault(
        f"Redis restarted without its data after {FAULT_FOR:g} s",
        start=_lose_everything,
        end=lambda s: s.start(persist=False),
    ),
    Fault("a list and a hash under model keys (WRONGTYPE)", start=_wrong_types),
    Fault("async: a list and a hash under model keys", start=_wrong_types, on_loop=True),
    Fault("async: Redis user without CLIENT (ACL -client)", user_acl=("-client",), on_loop=True),
]


@dataclass
class Outcome:
    durations: list[float] = field(default_factory=list)
    failed: int = 0
    after_bench: int = 0


def run_fault(fault: Fault) -> list[str]:
    server = Server()
    server.start()
    try:
        return _load(server, fault)
    finally:
        server.stop()


def _load(server: Server, fault: Fault) -> list[str]:
    models = [Model("d/0", dead=True), Model("p/1"), Model("r/3"), Model("b/2")]
    url = server.url
    if fault.user_acl:
        redis.Redis.from_url(url).execute_command(
            "ACL", "SETUSER", "worker", "on", ">pw", "~*", "&*", "+@all", *fault.user_acl
        )
        url = url.replace("redis://", "redis://worker:pw@")
    stores = [fc.FailOpenStore(RedisHealthStore.from_url(url)) for _ in range(WORKERS)]
    registries = [
        fc.HealthRegistry(store, clock=lambda skew=skew: time.time() + skew)
        for store, skew in zip(stores, fault.clocks, strict=True)
    ]
    policy = fc.FailoverPolicy.build()
    chains = [fc.FailoverChain(models, policy, registry) for registry in registries]
    outcomes = [Outcome() for _ in range(WORKERS * LOOPS)]
    bench_done = threading.Event()
    bench_time = [0.0]
    started = time.perf_counter()
    stop_at = started + LOAD

    def loop(chain: fc.FailoverChain[Model], out: Outcome) -> None:
        while time.perf_counter() < stop_at:
            begun = time.perf_counter()
            try:
                _, served = chain.invoke(lambda m: m.call())
            except Exception:
                out.failed += 1
                continue
            finally:
                out.durations.append(time.perf_counter() - begun)
            if served.model == "p/1" and bench_done.is_set() and begun > bench_time[0]:
                out.after_bench += 1

    async def aloop(chain: fc.FailoverChain[Model], out: Outcome) -> None:
        while time.perf_counter() < stop_at:
            begun = time.perf_counter()
            try:
                _, served = await chain.ainvoke(lambda m: m.acall())
            except Exception:
                out.failed += 1
                continue
            finally:
                out.durations.append(time.perf_counter() - begun)
            if served.model == "p/1" and bench_done.is_set() and begun > bench_time[0]:
                out.after_bench += 1

    def worker(n: int) -> None:
        mine = outcomes[n * LOOPS : (n + 1) * LOOPS]

        async def tasks() -> None:
            await asyncio.gather(*(aloop(chains[n], out) for out in mine))

        asyncio.run(tasks())

    if fault.on_loop:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    else:
        threads = [
            threading.Thread(target=loop, args=(chains[n // LOOPS], outcomes[n]))
            for n in range(WORKERS * LOOPS)
        ]
    for t in threads:
        t.start()
    time.sleep(BENCH_AT)
    registries[-1].bench("p/1", timedelta(minutes=10))  # the operator, mid-load
    bench_time[0] = time.perf_counter()
    bench_done.set()
    time.sleep(max(0.0, started + FAULT_AT - time.perf_counter()))
    fault.start(server)
    time.sleep(0.2)
    models[2].revoke()  # a key revoked while the fault is on
    time.sleep(FAULT_FOR - 0.2)
    fault.end(server)
    for t in threads:
        t.join()

    async def ask(registry: fc.HealthRegistry) -> None:
        registry.is_benched("b/2")

    for _ in range(100):  # Redis answers again: every worker merges and shares again
        for registry in registries:
            with contextlib.suppress(Exception):  # counted as failed above; only waiting here
                if fault.on_loop:
                    asyncio.run(ask(registry))
                else:
                    registry.is_benched("b/2")
        if not any(store.degraded for store in stores):
            break
        time.sleep(0.1)
    shared = fc.HealthRegistry(RedisHealthStore.from_url(server.url, timeout=5.0, cache=False))
    for _ in range(50):  # writes handed to the workers' writer threads land
        if all(shared.is_benched(key) for key in ("d/0", "p/1", "r/3")):
            break
        time.sleep(0.1)
    lost = sum(not shared.is_benched(key) for key in ("d/0", "p/1", "r/3"))
    for store in stores:
        primary = store.primary
        if isinstance(primary, RedisHealthStore):
            primary.close()
    durations = [d for out in outcomes for d in out.durations]
    return [
        fault.name,
        str(len(durations) - sum(out.failed for out in outcomes)),
        str(sum(out.failed for out in outcomes)),
        str(lost),
        str(int(shared.is_benched("b/2"))),
        str(sum(out.after_bench for out in outcomes)),
        str(models[0].calls_dead + models[2].calls_dead),
        f"{max(durations) * 1000:.0f}",
        f"{percentile(durations, 99) * 1000:.1f}",
    ]


def run(faults: list[Fault] = FAULTS) -> Table:
    table = Table(
        title=(
            f"Reliability: {WORKERS} workers x {LOOPS} loops for {LOAD:g} s on a real Redis, "
            f"fault at {FAULT_AT:g} s for {FAULT_FOR:g} s"
        ),
        columns=[
            "fault",
            "served",
            "failed",
            "benches lost",
            "healthy models benched",
            "served by p/1 after its bench",
            "calls to dead models",
            "slowest (ms)",
            "p99 (ms)",
        ],
    )
    for fault in faults:
        table.rows.append(run_fault(fault))
    table.notes = [
        "Each model call takes 2 ms; the Redis timeout is the default 250 ms, retry_after 5 s.",
        "Benches lost: of the dead model's, the revoked model's and the operator's bench, "
        "missing from Redis at the end. Healthy models benched: b/2 benched in Redis at the end. "
        "Served by p/1 after its bench: requests that started after the operator benched it "
        "and were still served by it. Calls to dead models: d/0's, and r/3's once revoked.",
    ]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault", help="run only the faults whose name contains this")
    args = parser.parse_args()
    logging.getLogger("llm_failover").setLevel(logging.CRITICAL)  # counted, not logged
    faults = [f for f in FAULTS if args.fault is None or args.fault in f.name]
    print(run(faults).markdown())


if __name__ == "__main__":
    main()
