"""Hedged requests with real ChatOpenAI/ChatAnthropic children over the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from tests.langchain.conftest import CLAUDE, OPENAI

Make = Callable[..., Any]
HEDGE = 0.2  # seconds without output before the hedge starts
SLOW = 3.0  # the slow primary's stall; nothing waits it out
SLACK = 0.35  # the fallback's own answer plus scheduling on a busy machine

PATHS = ["invoke", "ainvoke", "stream", "astream"]


async def _ask(model: FailoverChatModel, path: str, config: Any = None) -> BaseMessage:
    """One request on ``path``; a stream's chunks are added up into one message."""
    if path == "invoke":
        return model.invoke("hello", config)
    if path == "ainvoke":
        return await model.ainvoke("hello", config)
    if path == "stream":
        chunks = list(model.stream("hello", config))
    else:
        chunks = [c async for c in model.astream("hello", config)]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


async def _disconnected(sim: ProviderSimulator, model: str) -> int:
    for _ in range(50):
        if sim.disconnects(model):
            break
        await asyncio.sleep(0.02)
    return sim.disconnects(model)


@pytest.mark.parametrize("path", PATHS)
async def test_a_slow_primary_is_hedged_and_the_answer_says_so(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    provider_sim.stall_first_token(OPENAI, SLOW, keepalive=0.05)
    seen: list[fc.FailoverEvent] = []
    model = failover(openai_model(), anthropic_model(), hedge_after=HEDGE, observer=seen.append)
    started = time.perf_counter()
    answer = await _ask(model, path)
    assert HEDGE <= time.perf_counter() - started < HEDGE + SLACK
    assert answer.content == f"[{CLAUDE}] you said: hello"
    assert answer.response_metadata["failover"] == {
        "model": f"anthropic/{CLAUDE}",
        "failed_attempts": 0,
        "hedged": True,
    }
    assert [(e.reason, e.model, e.next_model) for e in seen] == [
        ("hedge_started", f"openai/{OPENAI}", f"anthropic/{CLAUDE}"),
        ("hedge_won", f"openai/{OPENAI}", f"anthropic/{CLAUDE}"),
    ]
    assert (provider_sim.calls(OPENAI), provider_sim.calls(CLAUDE)) == (1, 1)
    assert fc.list_benched() == []  # slower is not dead
    if path.startswith("a"):  # cancelled: the provider sees the client leave at once
        assert await _disconnected(provider_sim, OPENAI) == 1


@pytest.mark.parametrize("path", PATHS)
async def test_a_fast_primary_is_never_hedged(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    model = failover(openai_model(), anthropic_model(), hedge_after=HEDGE)
    answer = await _ask(model, path)
    assert answer.response_metadata["failover"] == {
        "model": f"openai/{OPENAI}",
        "failed_attempts": 0,
    }
    assert provider_sim.calls(CLAUDE) == 0


async def test_adaptive_hedging_learns_the_primarys_latency_then_cuts_its_tail(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    adaptive = fc.AdaptiveHedge(95, floor=0.05, min_samples=10)
    model = failover(openai_model(), anthropic_model(), hedge_after=adaptive)
    provider_sim.set_latency(OPENAI, 0.01)
    for _ in range(10):  # cold: no hedge while the tracker learns
        await model.ainvoke("hello")
    assert provider_sim.calls(CLAUDE) == 0
    provider_sim.stall_first_token(OPENAI, SLOW)
    started = time.perf_counter()
    answer = await model.ainvoke("hello")
    assert time.perf_counter() - started < 0.05 + SLACK  # the floor, not the 3 s stall
    assert answer.response_metadata["failover"]["hedged"] is True


class _Runs(BaseCallbackHandler):
    """Chat model runs as a tracer sees them: parent, and how each ended."""

    def __init__(self) -> None:
        self.parents: dict[UUID, UUID | None] = {}
        self.ended: dict[UUID, str] = {}

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.parents[run_id] = parent_run_id

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ended[run_id] = "end"

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.ended[run_id] = type(error).__name__


@pytest.mark.parametrize("path", PATHS)
async def test_both_attempts_are_model_runs_under_the_failover_run_the_loser_cancelled(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    provider_sim.stall_first_token(OPENAI, SLOW, keepalive=0.05)
    runs = _Runs()
    model = failover(openai_model(), anthropic_model(), hedge_after=HEDGE)
    await _ask(model, path, {"callbacks": [runs]})
    children = {run for run, parent in runs.parents.items() if parent is not None}
    assert len(children) == 2  # each attempt once
    assert len({runs.parents[run] for run in children}) == 1  # siblings, under the failover
    ended = sorted(runs.ended.get(run, "open") for run in children)
    # langchain-core's agenerate reports no end for a cancelled call (its gather is
    # cancelled before it can); its astream reports the CancelledError. A sync loser is
    # abandoned: its run ends whenever its provider answers, long after this request.
    assert ended == (["CancelledError", "end"] if path == "astream" else ["end", "open"])


def test_hedge_after_is_an_option_of_the_model_and_of_from_specs() -> None:
    built = FailoverChatModel.from_specs(
        ["openai:gpt-4o-mini", "anthropic:claude-haiku"], hedge_after="p99", api_key="sk-x"
    )
    assert built.failover_chain.policy.hedge_after == fc.AdaptiveHedge(99.0)
    with pytest.raises(ValueError, match="hedge_after"):
        FailoverChatModel.from_specs(["openai:gpt-4o-mini"], hedge_after=-1, api_key="sk-x")
