"""The fleet herd: how many calls reach a model that is still down when its cooldown ends.

Several worker processes, each with concurrent request loops, share one Redis. The primary
was benched COOLDOWN seconds ago and still returns 503. We count the calls it receives in
the first second after the cooldown ends: llm-failover lets one request probe it (fleet-
wide); LiteLLM's Router, sharing its state in the same Redis, is given the same chain.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import redis

from failover_core import HealthRegistry
from failover_core.redis_store import RedisHealthStore
from failover_core.simulator import RemoteSimulator

from ._common import Table, litellm_router, simulator_process

PRIMARY, BACKUP = "gpt-4o-mini", "gpt-4.1-nano"
COOLDOWN = 2.0
WORKERS, LOOPS = 4, 8


@contextmanager
def redis_process() -> Iterator[str | None]:
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
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
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _worker(kind: str, sim_url: str, redis_url: str) -> None:
    """One worker process: builds its model, says it is ready, waits for the start signal
    (which carries the stop time), then runs LOOPS concurrent request loops."""
    import logging

    logging.getLogger("llm_failover").setLevel(logging.ERROR)
    if kind == "llm-failover":
        from langchain_openai import ChatOpenAI

        from langchain_failover import FailoverChatModel

        def chat(model: str) -> ChatOpenAI:
            return ChatOpenAI(model=model, base_url=f"{sim_url}/v1", api_key="sim", max_retries=0)

        model = FailoverChatModel(
            models=[chat(PRIMARY), chat(BACKUP)], cooldown=COOLDOWN, backoff=lambda n: 0.05
        )

        async def ask() -> object:
            return await model.ainvoke("hello")
    else:
        host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
        router = litellm_router(
            f"{sim_url}/v1",
            PRIMARY,
            BACKUP,
            num_retries=0,
            allowed_fails=0,
            cooldown_time=COOLDOWN,
            redis_host=host,
            redis_port=int(port),
        )

        async def ask() -> object:
            return await router.acompletion(
                model="primary", messages=[{"role": "user", "content": "hello"}]
            )

    signals = redis.Redis.from_url(redis_url)

    async def loop(stop_at: float) -> tuple[int, int]:
        served = failed = 0
        while time.time() < stop_at:
            try:
                await ask()
                served += 1
            except Exception:
                failed += 1
                await asyncio.sleep(0.01)
        return served, failed

    async def main() -> None:
        await ask()  # warm: imports, clients, connections
        signals.incr("bench:ready")
        while (go := signals.get("bench:go")) is None:  # noqa: ASYNC110 - another process sets it
            await asyncio.sleep(0.005)
        results = await asyncio.gather(*(loop(float(go)) for _ in range(LOOPS)))
        print(sum(s for s, _ in results), sum(f for _, f in results), flush=True)

    asyncio.run(main())


def _contender(kind: str, sim: RemoteSimulator, redis_url: str) -> list[int]:
    signals = redis.Redis.from_url(redis_url)
    signals.flushdb()
    sim.reset()
    sim.set_latency("*", 0.02)
    env = {**os.environ}
    if kind == "llm-failover":
        env["LLM_FAILOVER_REDIS_URL"] = redis_url
    code = "import sys; from benchmarks.fleet import _worker; _worker(*sys.argv[1:4])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, kind, sim.base_url, redis_url],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(WORKERS)
    ]
    while int(signals.get("bench:ready") or 0) < WORKERS:
        time.sleep(0.01)
    # The primary dies; for llm-failover, the fleet benched it a moment ago.
    sim.fail(PRIMARY, 503, times=None)
    calls_before = sim.calls(PRIMARY)
    cooldown_ends = time.time() + COOLDOWN
    if kind == "llm-failover":
        registry = HealthRegistry(RedisHealthStore.from_url(redis_url))
        registry.bench_now(f"openai/{PRIMARY}", timedelta(seconds=COOLDOWN))
    signals.set("bench:go", str(cooldown_ends + 1.5))
    time.sleep(max(0.0, cooldown_ends - time.time()))
    during = sim.calls(PRIMARY) - calls_before
    time.sleep(1.0)
    after = sim.calls(PRIMARY) - calls_before - during
    totals = [p.communicate(timeout=120)[0].split() for p in procs]
    served = sum(int(t[0]) for t in totals if t)
    failed = sum(int(t[1]) for t in totals if len(t) > 1)
    return [during, after, served, failed]


def run() -> Table:
    table = Table(
        f"The fleet herd: {WORKERS} worker processes × {LOOPS} concurrent loops, primary "
        f"still down when its {COOLDOWN:.0f} s cooldown ends",
        [
            "contender",
            "primary calls during the cooldown",
            "primary calls, first second after",
            "requests served",
            "requests failed",
        ],
    )
    with redis_process() as redis_url:
        if redis_url is None:
            table.notes.append("skipped: redis-server is not installed")
            return table
        with simulator_process() as sim:
            for kind in ("llm-failover", "LiteLLM Router"):
                table.rows.append([kind, *map(str, _contender(kind, sim, redis_url))])
    table.notes += [
        "llm-failover: health in Redis (LLM_FAILOVER_REDIS_URL); one request in the fleet "
        "probes the recovering model, fails, and the model is benched again for twice the "
        "cooldown. The probe is a single call (no retries).",
        "LiteLLM Router: Redis-backed, allowed_fails=0, the same cooldown_time, no retries.",
    ]
    return table
