"""A pool of three deployments of one model, side by side with LiteLLM's Router.

The deployments, on the simulator (real OpenAI SDK clients over loopback):

* ``fast``: p50 60 ms, p99 150 ms;
* ``slow``: p50 300 ms, p99 1.2 s (five times slower);
* ``limited``: as fast as ``fast``, but 60 requests per 5 s window; past that it answers
  429 with ``retry-after``, and every answer carries ``x-ratelimit-remaining-requests`` /
  ``x-ratelimit-reset-requests`` as OpenAI's do.

Each contender sends the same N requests, C at a time, and we time each request end to
end (retries and failovers included), count the 429s the simulator sent, and each
deployment's share of the answers.

    python -m benchmarks.pools            # N=1000, C=8
    python -m benchmarks.pools --quick    # N=300
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import RemoteSimulator
from langchain_failover import FailoverChatModel

from ._common import Table, machine, median, percentile, simulator_process

DEPLOYMENTS = ("fast", "slow", "limited")
LATENCY = {"fast": (0.06, 0.15), "slow": (0.3, 1.2), "limited": (0.06, 0.15)}
LIMIT, WINDOW = 60, 5.0
SEED = 0

Ask = Callable[[], Awaitable[None]]


def _prepare(sim: RemoteSimulator) -> None:
    sim.reset()
    for n, name in enumerate(DEPLOYMENTS):
        p50, p99 = LATENCY[name]
        sim.set_latency(name, p50, p99=p99, seed=SEED + n)
    sim.set_rate_limit("limited", LIMIT, window=WINDOW)


def _failover(sim: RemoteSimulator) -> Ask:
    def chat(name: str) -> ChatOpenAI:
        return ChatOpenAI(model=name, base_url=sim.openai_base_url, api_key="sim", max_retries=0)

    fc.set_pool_balancer(fc.PoolBalancer())  # nothing learnt from an earlier run
    model = FailoverChatModel(
        models=[fc.Pool({name: chat(name) for name in DEPLOYMENTS})],
        registry=fc.HealthRegistry(),
    )

    async def ask() -> None:
        await model.ainvoke("hello")

    return ask


def _litellm(strategy: str) -> Callable[[RemoteSimulator], Ask]:
    def build(sim: RemoteSimulator) -> Ask:
        import litellm
        from litellm import Router

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        params = {"api_base": sim.openai_base_url, "api_key": "sim"}
        router = Router(
            model_list=[
                {"model_name": "pool", "litellm_params": {"model": f"openai/{name}", **params}}
                for name in DEPLOYMENTS
            ],
            routing_strategy=strategy,
            num_retries=2,
        )
        messages = [{"role": "user", "content": "hello"}]

        async def ask() -> None:
            await router.acompletion(model="pool", messages=messages)

        return ask

    return build


async def _drive(ask: Ask, n: int, c: int) -> tuple[list[float], int]:
    gate = asyncio.Semaphore(c)
    times: list[float] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        async with gate:
            started = time.perf_counter()
            try:
                await ask()
            except Exception:
                failed += 1
                return
            times.append(time.perf_counter() - started)

    await asyncio.gather(*(one() for _ in range(n)))
    return times, failed


CONTENDERS: list[tuple[str, Callable[[RemoteSimulator], Ask]]] = [
    ("llm-failover Pool", _failover),
    ("LiteLLM Router, simple-shuffle", _litellm("simple-shuffle")),
    ("LiteLLM Router, latency-based-routing", _litellm("latency-based-routing")),
]


def run(n: int = 1000, c: int = 8) -> Table:
    logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
    logging.getLogger("LiteLLM Router").setLevel(logging.CRITICAL)
    table = Table(
        title=f"Pools: three deployments, one slow, one rate-limited ({n} requests, {c} at a time)",
        columns=["contender", "p50", "p99", "429s seen", "failed", "fast / slow / limited"],
    )
    with simulator_process() as sim:
        for name, build in CONTENDERS:
            _prepare(sim)
            ask = build(sim)
            times, failed = asyncio.run(_drive(ask, n, c))
            counts = sim.call_counts()
            limited = sim.rate_limited()
            answered = {d: counts.get(d, 0) - sim.rate_limited(d) for d in DEPLOYMENTS}
            total = sum(answered.values()) or 1
            share = " / ".join(f"{100 * answered[d] / total:.0f}%" for d in DEPLOYMENTS)
            table.rows.append(
                [
                    name,
                    f"{1000 * median(times):.0f} ms",
                    f"{1000 * percentile(times, 99):.0f} ms",
                    str(limited),
                    str(failed),
                    share,
                ]
            )
    table.notes += [
        f"Latency (p50/p99, log-normal): fast {LATENCY['fast']}, slow {LATENCY['slow']}, "
        f"limited {LATENCY['limited']} s; limited: {LIMIT} requests per {WINDOW:g} s window.",
        "llm-failover: FailoverChatModel(models=[Pool(fast, slow, limited)]), defaults; the "
        "pool turns on include_response_headers and reads x-ratelimit-* from each answer.",
        "LiteLLM Router: three deployments of one model_name, num_retries=2, its defaults "
        "otherwise (no rpm configured: the limit is the provider's, announced in headers).",
        "429s seen: requests the simulator answered 429 (each retry counted).",
    ]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=300")
    args = parser.parse_args()
    logging.getLogger("llm_failover").setLevel(logging.ERROR)
    table = run(n=300 if args.quick else 1000)
    print(f"Measured on {machine()}\n")
    print(table.markdown())


if __name__ == "__main__":
    main()
