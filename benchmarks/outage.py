"""An outage and a herd, with real SDK clients against the simulator on loopback.

The primary returns 503 for the whole run; the fallback is healthy; both answer with the
same added latency. Each contender serves N sequential requests, then M concurrent ones
(asyncio), from a cold start (nothing benched, nothing cooled down). The physical limit is
the fallback called alone.

The herd: 100 concurrent requests at the moment the primary dies, then 100 more: how many
calls reach the dead primary in each wave.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import RemoteSimulator
from langchain_failover import FailoverChatModel

from ._common import Table, litellm_router, median, percentile, simulator_process

PRIMARY, BACKUP = "gpt-4o-mini", "gpt-4.1-nano"
LATENCY = 0.02

Ask = Callable[[], Awaitable[Any]]


@dataclass
class Contender:
    name: str
    build: Callable[[RemoteSimulator], Ask]


def _chat(sim: RemoteSimulator, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=sim.openai_base_url, api_key="sim", max_retries=0)


def _runnable(runnable: Runnable[Any, Any]) -> Ask:
    return lambda: runnable.ainvoke("hello")


def _failover(sim: RemoteSimulator) -> Ask:
    return _runnable(FailoverChatModel(models=[_chat(sim, PRIMARY), _chat(sim, BACKUP)]))


def _with_fallbacks(sim: RemoteSimulator) -> Ask:
    return _runnable(_chat(sim, PRIMARY).with_fallbacks([_chat(sim, BACKUP)]))


def _retry_then_fallbacks(sim: RemoteSimulator) -> Ask:
    primary = _chat(sim, PRIMARY).with_retry(stop_after_attempt=3)
    return _runnable(primary.with_fallbacks([_chat(sim, BACKUP)]))


def _litellm(num_retries: int) -> Callable[[RemoteSimulator], Ask]:
    def build(sim: RemoteSimulator) -> Ask:
        router = litellm_router(
            sim.openai_base_url, PRIMARY, BACKUP, num_retries=num_retries, cooldown_time=300
        )
        messages = [{"role": "user", "content": "hello"}]
        return lambda: router.acompletion(model="primary", messages=messages)

    return build


def _limit(sim: RemoteSimulator) -> Ask:
    return _runnable(_chat(sim, BACKUP))


def contenders() -> list[Contender]:
    out = [
        Contender("fallback alone (the limit)", _limit),
        Contender("FailoverChatModel (defaults)", _failover),
        Contender("with_fallbacks", _with_fallbacks),
        Contender("with_retry(3).with_fallbacks", _retry_then_fallbacks),
    ]
    try:
        import litellm  # noqa: F401
    except ImportError:
        return out
    return [
        *out,
        Contender("LiteLLM Router, num_retries=2", _litellm(2)),
        Contender("LiteLLM Router, num_retries=0", _litellm(0)),
    ]


async def _timed(ask: Ask) -> float:
    started = time.perf_counter()
    await ask()
    return (time.perf_counter() - started) * 1000


async def _outage(contender: Contender, sim: RemoteSimulator, n: int, m: int) -> list[Any]:
    fc.get_health_registry().reset()
    sim.reset()
    sim.set_latency("*", LATENCY)
    sim.fail(PRIMARY, 503, times=None)
    ask, limit = contender.build(sim), _limit(sim)
    sequential = [await _timed(ask) for _ in range(n)]
    concurrent = await asyncio.gather(*(_timed(ask) for _ in range(m)))
    calls = sim.calls(PRIMARY)
    # The same burst to the fallback alone, right after: at this concurrency the clients and
    # the server are CPU-bound on a small machine, so the burst's own limit is measured.
    paired = await asyncio.gather(*(_timed(limit) for _ in range(m)))
    return [sequential, list(concurrent), calls, median(list(paired))]


async def _herd(contender: Contender, sim: RemoteSimulator, size: int) -> tuple[int, int]:
    fc.get_health_registry().reset()
    sim.reset()
    sim.set_latency("*", LATENCY)
    ask = contender.build(sim)
    await ask()  # warm: the primary was healthy until now
    sim.fail(PRIMARY, 503, times=None)
    before = sim.calls(PRIMARY)
    await asyncio.gather(*(ask() for _ in range(size)))
    first = sim.calls(PRIMARY) - before
    await asyncio.gather(*(ask() for _ in range(size)))
    return first, sim.calls(PRIMARY) - before - first


def run(n: int = 20, m: int = 30, herd: int = 100) -> tuple[Table, Table]:
    outage = Table(
        f"An outage: primary 503 throughout, {n} sequential then {m} concurrent requests "
        f"({LATENCY * 1000:.0f} ms added latency per call)",
        [
            "contender",
            "seq p50 ms",
            "seq p99 ms",
            "seq p50 / limit",
            "conc p50 ms",
            "conc p99 ms",
            "conc p50 / its limit",
            "calls to dead primary",
        ],
    )
    herd_table = Table(
        f"The herd: {herd} concurrent requests when the primary dies, then {herd} more",
        ["contender", "primary calls, wave 1", "primary calls, wave 2", "per request, both waves"],
    )
    results: dict[str, list[Any]] = {}
    herds: dict[str, tuple[int, int]] = {}

    async def measure(sim: RemoteSimulator) -> None:
        # One event loop for everything: the SDKs cache their async HTTP clients.
        for contender in contenders():
            results[contender.name] = await _outage(contender, sim, n, m)
            if not contender.name.startswith("fallback alone"):
                herds[contender.name] = await _herd(contender, sim, herd)

    with simulator_process() as sim:
        asyncio.run(measure(sim))
    limit = median(results["fallback alone (the limit)"][0])
    for name, (seq, conc, calls, paired) in results.items():
        outage.rows.append(
            [
                name,
                f"{median(seq):.0f}",
                f"{percentile(seq, 99):.0f}",
                f"{median(seq) / limit:.2f}×",
                f"{median(conc):.0f}",
                f"{percentile(conc, 99):.0f}",
                f"{median(conc) / paired:.2f}×",
                str(calls),
            ]
        )
    for name, (first, second) in herds.items():
        herd_table.rows.append(
            [name, str(first), str(second), f"{(first + second) / (2 * herd):.2f}"]
        )
    outage.notes += [
        "Targets: p50 within 1.10× of the limit; calls to the dead primary no more than one "
        "entry's retries per cooldown window (3 for FailoverChatModel's defaults).",
        "'its limit': the same concurrent burst sent to the fallback alone right after, "
        "since at that concurrency client and simulator are CPU-bound on this machine.",
        "Each contender starts cold and keeps its own defaults (with_retry waits with "
        "exponential jitter; LiteLLM's Router retries with its own backoff and "
        "cooldown_time=300).",
    ]
    herd_table.notes += [
        "Target: at most one call per in-flight request in the first wave, none once the "
        "primary is benched.",
    ]
    return outage, herd_table
