"""A provider that hangs: silent, stalled before the first token, stalled midway.

The primary accepts every request and then (1) sends nothing, (2) streams a role header
and keep-alives only, or (3) streams two chunks and then keep-alives only, each for
``STALL`` seconds; the fallback is healthy. Keep-alives come every ``KEEPALIVE`` s, so an
SDK's read timeout never fires on them. Each contender serves ``N`` sequential requests
from a cold start (async; one row runs the sync path in a thread). Measured per request:
seconds to the first token (the answer, for the silent hang, which is not streamed) and to
the end of the answer (or its error); calls that reached the hung primary.

Contenders get the same one-second budget: an SDK timeout on each child, LiteLLM's
``timeout``/``stream_timeout``, or FailoverChatModel's own deadlines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import RemoteSimulator
from langchain_failover import FailoverChatModel

from ._common import Table, litellm_router, median, simulator_process

PRIMARY, BACKUP = "gpt-4o-mini", "gpt-4.1-nano"
LATENCY = 0.02  # added to every answer
DEADLINE = 1.0  # every contender's budget per attempt
STALL = 3.0  # how long the primary hangs or stalls
KEEPALIVE = 0.25

Ask = Callable[[bool], AsyncIterator[str]]
"""One request: streamed (True) or not; yields the answer's text pieces."""
Outcome = tuple[float, float, bool]  # seconds to first token, to the end; answered


@dataclass
class Contender:
    name: str
    build: Callable[[RemoteSimulator], Ask] | None = None
    build_sync: Callable[[RemoteSimulator], FailoverChatModel] | None = None
    """A model driven through its sync path (invoke/stream), in a thread."""


@dataclass
class Outage:
    name: str
    plan: Callable[[RemoteSimulator], object]
    stream: bool


OUTAGES = [
    Outage("silent", lambda sim: sim.hang(PRIMARY, STALL, times=None), stream=False),
    Outage(
        "stalled before the first token",
        lambda sim: sim.stall_first_token(PRIMARY, STALL, keepalive=KEEPALIVE, times=None),
        stream=True,
    ),
    Outage(
        "stalled midway",
        lambda sim: sim.stall_after_chunks(PRIMARY, 2, STALL, keepalive=KEEPALIVE, times=None),
        stream=True,
    ),
]


def _chat(sim: RemoteSimulator, model: str, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=model, base_url=sim.openai_base_url, api_key="sim", max_retries=0, **options
    )


def _runnable(runnable: Runnable[Any, Any]) -> Ask:
    async def ask(stream: bool) -> AsyncIterator[str]:
        if stream:
            async for chunk in runnable.astream("hello"):
                yield str(chunk.content)
        else:
            yield str((await runnable.ainvoke("hello")).content)

    return ask


def _limit(sim: RemoteSimulator) -> Ask:
    return _runnable(_chat(sim, BACKUP))


def _with_fallbacks(sim: RemoteSimulator) -> Ask:
    primary = _chat(sim, PRIMARY, timeout=DEADLINE)
    return _runnable(primary.with_fallbacks([_chat(sim, BACKUP, timeout=DEADLINE)]))


def _failover_sdk(sim: RemoteSimulator) -> FailoverChatModel:
    return FailoverChatModel(
        models=[_chat(sim, PRIMARY, timeout=DEADLINE), _chat(sim, BACKUP, timeout=DEADLINE)],
        timeout=None,
        first_token_timeout=None,
        idle_timeout=None,
    )


def _failover_deadlines(sim: RemoteSimulator) -> FailoverChatModel:
    return FailoverChatModel(
        models=[_chat(sim, PRIMARY), _chat(sim, BACKUP)],
        timeout=DEADLINE,
        first_token_timeout=DEADLINE,
        idle_timeout=DEADLINE,
    )


def _litellm(sim: RemoteSimulator) -> Ask:
    router = litellm_router(
        sim.openai_base_url,
        PRIMARY,
        BACKUP,
        num_retries=0,
        timeout=DEADLINE,
        stream_timeout=DEADLINE,
        cooldown_time=300,
    )
    messages = [{"role": "user", "content": "hello"}]

    async def ask(stream: bool) -> AsyncIterator[str]:
        response = await router.acompletion(model="primary", messages=messages, stream=stream)
        if not stream:
            yield str(response.choices[0].message.content)
            return
        async for chunk in response:
            if chunk.choices:
                yield chunk.choices[0].delta.content or ""

    return ask


def contenders() -> list[Contender]:
    out = [
        Contender("fallback alone (the limit)", _limit),
        Contender(f"with_fallbacks, SDK timeout {DEADLINE:g} s", _with_fallbacks),
    ]
    try:
        import litellm  # noqa: F401
    except ImportError:
        pass
    else:
        out.append(Contender(f"LiteLLM Router, timeout/stream_timeout {DEADLINE:g} s", _litellm))
    return [
        *out,
        Contender(
            f"FailoverChatModel, SDK timeout {DEADLINE:g} s",
            lambda sim: _runnable(_failover_sdk(sim)),
        ),
        Contender(
            f"FailoverChatModel, deadlines {DEADLINE:g} s",
            lambda sim: _runnable(_failover_deadlines(sim)),
        ),
        Contender(
            f"FailoverChatModel, deadlines {DEADLINE:g} s, sync",
            build_sync=_failover_deadlines,
        ),
    ]


def _sync_outcome(model: FailoverChatModel, stream: bool) -> Outcome:
    started = time.perf_counter()
    first: float | None = None
    try:
        if stream:
            for chunk in model.stream("hello"):
                if chunk.content and first is None:
                    first = time.perf_counter() - started
        else:
            model.invoke("hello")
        answered = True
    except Exception:
        answered = False
    end = time.perf_counter() - started
    return (first if first is not None else end), end, answered


async def _outcome(ask: Ask, stream: bool) -> Outcome:
    started = time.perf_counter()
    first: float | None = None
    try:
        async for text in ask(stream):
            if text and first is None:
                first = time.perf_counter() - started
        answered = True
    except Exception:
        answered = False
    end = time.perf_counter() - started
    return (first if first is not None else end), end, answered


async def _serve(
    contender: Contender, outage: Outage, sim: RemoteSimulator, n: int
) -> tuple[list[Outcome], int, float]:
    fc.get_health_registry().reset()
    sim.reset()
    sim.set_latency("*", LATENCY)
    outage.plan(sim)
    outcomes: list[Outcome] = []
    if contender.build_sync is not None:
        model = contender.build_sync(sim)
        for _ in range(n):
            outcomes.append(await asyncio.to_thread(_sync_outcome, model, outage.stream))
    else:
        assert contender.build is not None
        ask = contender.build(sim)
        for _ in range(n):
            outcomes.append(await _outcome(ask, outage.stream))
    calls = sim.calls(PRIMARY)
    # The fallback alone, right after and the same way: the limit this row is held to,
    # measured in the same minute on a machine whose load drifts.
    limit = _limit(sim)
    paired = [await _outcome(limit, outage.stream) for _ in range(max(1, n // 2))]
    return outcomes, calls, median([first for first, _, _ in paired])


def run(n: int = 8) -> Table:
    table = Table(
        f"A provider that hangs: {n} sequential requests per outage, the primary hung or "
        f"stalled for {STALL:g} s (keep-alives every {KEEPALIVE:g} s), a budget of "
        f"{DEADLINE:g} s per attempt",
        [
            "outage",
            "contender",
            "first token p50 s",
            "first token max s",
            "done p50 s",
            "done max s",
            "after the bench / limit",
            "calls to hung primary",
            "errors",
        ],
    )
    results: dict[tuple[str, str], tuple[list[Outcome], int, float]] = {}

    async def measure(sim: RemoteSimulator) -> None:
        for outage in OUTAGES:
            for contender in contenders():
                results[outage.name, contender.name] = await _serve(contender, outage, sim, n)

    with simulator_process() as sim:
        asyncio.run(measure(sim))
    tail = max(1, n // 2)  # the last requests: after any bench
    for outage in OUTAGES:
        for contender in contenders():
            runs, calls, limit = results[outage.name, contender.name]
            firsts = [first for first, _, _ in runs]
            ends = [end for _, end, _ in runs]
            table.rows.append(
                [
                    outage.name,
                    contender.name,
                    f"{median(firsts):.2f}",
                    f"{max(firsts):.2f}",
                    f"{median(ends):.2f}",
                    f"{max(ends):.2f}",
                    f"{median(firsts[-tail:]) / limit:.2f}×",
                    str(calls),
                    str(sum(not ok for _, _, ok in runs)),
                ]
            )
    table.notes += [
        f"Target: every first token within one deadline plus the fallback's latency (×1.10), "
        f"i.e. max ≤ {DEADLINE:g} s + 1.10 × the limit; after the bench (the median of the "
        f"last {tail} requests) within 1.10× the fallback alone, measured right after each "
        "row the same way (about 30 ms here, so a few ms of scheduling noise shows).",
        "'stalled midway' cannot fail over without replaying delivered text: the deadline "
        "turns a stall into StreamInterruptedError (counted under errors) and benches the "
        "model, so the next requests go straight to the fallback.",
        "SDK timeouts are per read: keep-alives reset them, so a stalled stream holds "
        "the request for the whole stall.",
    ]
    return table


if __name__ == "__main__":
    import logging

    logging.getLogger("llm_failover").setLevel(logging.ERROR)
    print(run().markdown())
