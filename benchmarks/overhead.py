"""Per-call cost of the failover wrappers on a healthy chain, in process.

The children answer at once, so what is measured is the wrapper: FailoverChatModel vs the
child called directly vs ``child.with_fallbacks([other])``, sync and async, with no
callback handler and with one attached (then the failover run is a chain run and the
child's model run nests under it, as with ``with_fallbacks``);
FailoverLLM vs a LlamaIndex MockLLM.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from llama_index.core.llms import ChatMessage, MockLLM

from langchain_failover import FailoverChatModel
from llamaindex_failover import FailoverLLM

from ._common import FastChat, Table


class Counting(BaseCallbackHandler):
    """A handler that does almost nothing, so runs must be reported to it."""

    def __init__(self) -> None:
        self.starts = 0

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.starts += 1


def per_call_us(*fns: Callable[[], Any], calls: int, rounds: int = 10) -> list[float]:
    """µs per call of each of ``fns``: the quickest of ``rounds`` rounds, the contenders
    taking turns in every round, so load from elsewhere on the machine falls on all alike
    and the quickest round is the one least disturbed."""
    per_round = max(calls // rounds, 1)
    best = [float("inf")] * len(fns)
    for fn in fns:
        for _ in range(min(200, calls)):
            fn()
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            for _ in range(per_round):
                fn()
            best[i] = min(best[i], (time.perf_counter() - started) / per_round * 1e6)
    return best


def aper_call_us(*fns: Callable[[], Awaitable[Any]], calls: int, rounds: int = 10) -> list[float]:
    """The async twin of :func:`per_call_us` (one event loop for all)."""

    async def run() -> list[float]:
        per_round = max(calls // rounds, 1)
        best = [float("inf")] * len(fns)
        for fn in fns:
            for _ in range(min(200, calls)):
                await fn()
        for _ in range(rounds):
            for i, fn in enumerate(fns):
                started = time.perf_counter()
                for _ in range(per_round):
                    await fn()
                best[i] = min(best[i], (time.perf_counter() - started) / per_round * 1e6)
        return best

    return asyncio.run(run())


def run(calls: int = 2000) -> Table:
    child, other = FastChat(), FastChat(answer="other")
    failover = FailoverChatModel(models={"fast/a": child, "fast/b": other})
    undeadlined = FailoverChatModel(models={"fast/a": child, "fast/b": other}, timeout=None)
    fallbacks = child.with_fallbacks([other])
    handler = Counting()
    cfg: Any = {"callbacks": [handler]}

    table = Table(
        "Overhead on a healthy chain (µs per call, in process)",
        [
            "path",
            "direct child",
            "with_fallbacks",
            "FailoverChatModel",
            "failover / direct",
            "failover / with_fallbacks",
        ],
    )

    def row(name: str, direct: float, wf: float, fo: float) -> None:
        table.rows.append(
            [
                name,
                f"{direct:.0f}",
                f"{wf:.0f}",
                f"{fo:.0f}",
                f"{fo / direct:.2f}×",
                f"{fo / wf:.2f}×",
            ]
        )

    row(
        "LangChain invoke",
        *per_call_us(
            lambda: child.invoke("hi"),
            lambda: fallbacks.invoke("hi"),
            lambda: failover.invoke("hi"),
            calls=calls,
        ),
    )
    row(
        "LangChain ainvoke",
        *aper_call_us(
            lambda: child.ainvoke("hi"),
            lambda: fallbacks.ainvoke("hi"),
            lambda: failover.ainvoke("hi"),
            calls=calls,
        ),
    )
    row(
        "LangChain invoke, 1 handler",
        *per_call_us(
            lambda: child.invoke("hi", cfg),
            lambda: fallbacks.invoke("hi", cfg),
            lambda: failover.invoke("hi", cfg),
            calls=calls,
        ),
    )
    row(
        "LangChain invoke, 1 handler, no deadline",
        *per_call_us(
            lambda: child.invoke("hi", cfg),
            lambda: fallbacks.invoke("hi", cfg),
            lambda: undeadlined.invoke("hi", cfg),
            calls=calls,
        ),
    )

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from failover_core.otel import instrument_metrics, uninstrument_metrics

    instrument_metrics(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    try:
        row(
            "LangChain invoke, metrics on",
            *per_call_us(
                lambda: child.invoke("hi"),
                lambda: fallbacks.invoke("hi"),
                lambda: failover.invoke("hi"),
                calls=calls,
            ),
        )
    finally:
        uninstrument_metrics()

    mock = MockLLM()
    li_failover = FailoverLLM(llms={"mock/a": mock, "mock/b": MockLLM()})
    messages = [ChatMessage(role="user", content="hi")]
    li_direct, li_fo = per_call_us(
        lambda: mock.chat(messages), lambda: li_failover.chat(messages), calls=calls
    )
    table.rows.append(
        [
            "LlamaIndex chat",
            f"{li_direct:.0f}",
            "—",
            f"{li_fo:.0f}",
            f"{li_fo / li_direct:.2f}×",
            "—",
        ]
    )
    table.notes += [
        "Targets: no more than with_fallbacks, aiming at 1.25× the direct call.",
        "Each figure is the quickest of 10 rounds, the three contenders taking turns in each.",
        "The failover model does what with_fallbacks does (a chain run, the child's model run) "
        "plus the health registry's reads and, by default, a deadline: the sync call runs on a "
        "pooled worker thread so that a hung provider can be abandoned ('no deadline': "
        "timeout=None, the call runs in the caller's thread).",
        "With no handler attached, nobody can see a child run, so the failover model calls "
        "the child's generation directly; with a handler, the failover run is a chain run "
        "and the child's model run nests under it (one model run per call, as with_fallbacks).",
        "LlamaIndex has no with_fallbacks; FailoverLLM opens its own span and calls the "
        "child's chat, which reports the LLM call (once).",
        "'metrics on': failover_core.otel recording into the OpenTelemetry SDK's in-memory "
        "reader (the other columns do not record metrics).",
        f"handler saw {handler.starts} chat-model starts",
    ]
    return table
