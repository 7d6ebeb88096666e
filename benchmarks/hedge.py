"""Hedged requests against a heavy-tailed primary, with real SDK clients on loopback.

The primary is healthy but slow in its tail: its time to first token is log-normal with
p50 100 ms and p99 1.5 s. The fallback is healthy and steady (p50 100 ms, p99 150 ms).
Each contender streams the same N requests (C at a time) and we time the first token.
The limit for a hedged request is the hedge delay plus the fallback's p99.

    python -m benchmarks.hedge            # N=1000
    python -m benchmarks.hedge --quick    # N=300
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.flow import hedging as _hedge
from failover_core.simulator import RemoteSimulator
from langchain_failover import FailoverChatModel

from ._common import Table, litellm_router, machine, median, percentile, simulator_process

PRIMARY, BACKUP = "gpt-4o-mini", "gpt-4.1-nano"
P50, P99 = 0.1, 1.5  # the primary's time to first token
BACKUP_P50, BACKUP_P99 = 0.1, 0.15
FIXED = 0.5  # the fixed hedge_after contender's delay (about the primary's p92)
SEED = 0

Ask = Callable[[], Awaitable[float]]  # one streamed request; seconds to its first token


@dataclass
class Contender:
    name: str
    build: Callable[[RemoteSimulator], Ask]
    hedge: Any = None  # the adaptive contender reads its delay back


def _chat(sim: RemoteSimulator, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=sim.openai_base_url, api_key="sim", max_retries=0)


def _failover(hedge_after: Any) -> Callable[[RemoteSimulator], Ask]:
    def build(sim: RemoteSimulator) -> Ask:
        model = FailoverChatModel(
            models=[_chat(sim, PRIMARY), _chat(sim, BACKUP)], hedge_after=hedge_after
        )

        async def ask() -> float:
            started = time.perf_counter()
            first: float | None = None
            async for chunk in model.astream("hello"):
                if first is None and chunk.content:
                    first = time.perf_counter() - started
            assert first is not None
            return first

        return ask

    return build


def _litellm(**options: Any) -> Callable[[RemoteSimulator], Ask]:
    def build(sim: RemoteSimulator) -> Ask:
        router = litellm_router(sim.openai_base_url, PRIMARY, BACKUP, num_retries=0, **options)
        messages = [{"role": "user", "content": "hello"}]

        async def ask() -> float:
            started = time.perf_counter()
            first: float | None = None
            response = await router.acompletion(model="primary", messages=messages, stream=True)
            async for chunk in response:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - started
            assert first is not None
            return first

        return ask

    return build


def contenders() -> list[Contender]:
    out = [
        Contender("FailoverChatModel, no hedging", _failover(None)),
        Contender(f"hedge_after={FIXED}", _failover(FIXED)),
        Contender('hedge_after="p95"', _failover("p95"), hedge="p95"),
    ]
    try:
        import litellm  # noqa: F401
    except ImportError:
        return out
    return [
        *out,
        Contender("LiteLLM Router, fallbacks", _litellm()),
        Contender(
            f"LiteLLM Router, stream_timeout={FIXED}, fallbacks", _litellm(stream_timeout=FIXED)
        ),
    ]


async def _work(ask: Ask, n: int, concurrency: int) -> list[float]:
    queue = list(range(n))
    out: list[float] = []

    async def worker() -> None:
        while queue:
            queue.pop()
            out.append(await ask())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def _plan(sim: RemoteSimulator, seed: int) -> None:
    sim.reset()
    sim.set_latency(PRIMARY, P50, p99=P99, seed=seed)
    sim.set_latency(BACKUP, BACKUP_P50, p99=BACKUP_P99, seed=seed + 1)


def run(n: int = 1000, concurrency: int = 6) -> Table:
    table = Table(
        f"Hedging: a heavy-tailed primary (TTFT p50 {P50 * 1000:.0f} ms, p99 {P99 * 1000:.0f} "
        f"ms), a steady fallback (p50 {BACKUP_P50 * 1000:.0f}, p99 {BACKUP_P99 * 1000:.0f} ms); "
        f"{n} streamed requests, {concurrency} at a time",
        [
            "contender",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "TTFT max ms",
            "extra calls",
            "hedge delay ms",
            "p99 / (delay + fallback p99)",
        ],
    )
    logging.getLogger("llm_failover").setLevel(logging.ERROR)
    logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)

    async def measure(sim: RemoteSimulator) -> None:
        warm = _chat(sim, BACKUP)
        for _ in range(3):  # imports and connection pools, outside the timings
            await warm.ainvoke("hello")
        for contender in contenders():
            fc.get_health_registry().reset()
            _hedge.set_hedging(_hedge.Hedging(_hedge.LatencyTracker(), fc.HedgeBudget()))
            ask = contender.build(sim)
            _plan(sim, SEED)  # the same draws for everyone
            ttft = await _work(ask, n, concurrency)
            extra = sim.calls() - n
            delay: float | None = None
            if contender.hedge == "p95":
                delay = _hedge.get_hedging().tracker.delay(
                    f"openai/{PRIMARY}", True, fc.AdaptiveHedge(95.0)
                )
            elif contender.name.startswith("hedge_after") or "timeout" in contender.name:
                delay = FIXED
            p99 = percentile(ttft, 99)
            table.rows.append(
                [
                    contender.name,
                    f"{median(ttft) * 1000:.0f}",
                    f"{p99 * 1000:.0f}",
                    f"{max(ttft) * 1000:.0f}",
                    f"{extra} ({extra / n:.1%})",
                    "-" if delay is None else f"{delay * 1000:.0f}",
                    "-" if delay is None else f"{p99 / (delay + BACKUP_P99):.2f}×",
                ]
            )

    with simulator_process() as sim:
        asyncio.run(measure(sim))
    table.notes += [
        'Target: with hedge_after="p95", TTFT p99 within 1.10× (hedge delay + the '
        "fallback's p99) for at most 6% extra calls.",
        "Extra calls: calls beyond one per request (hedges, or fallbacks after a timeout). "
        "The adaptive delay is the primary's p95 at the end of the run (it is learnt: no "
        "hedge before 20 samples). The hedge budget: a burst of 10, then at most 10% of requests.",
        "LiteLLM's Router does not hedge: with stream_timeout it abandons the primary at the "
        "timeout and starts the fallback, so a primary that was about to answer is lost.",
    ]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=300")
    args = parser.parse_args()
    started = time.perf_counter()
    table = run(n=300 if args.quick else 1000)
    print(f"Measured on {machine()} in {time.perf_counter() - started:.0f} s.\n")
    print(table.markdown())


if __name__ == "__main__":
    main()
