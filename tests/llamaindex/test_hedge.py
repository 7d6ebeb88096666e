"""Hedged requests for FailoverLLM with real LlamaIndex clients over the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.span import SpanDropEvent
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import ChatMessage

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverDecisionEvent, FailoverLLM
from tests.llamaindex.conftest import LIKE, OPENAI, ask

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]
HEDGE = 0.2  # seconds without output before the hedge starts
SLOW = 3.0  # the slow primary's stall; nothing waits it out
SLACK = 0.35

PATHS = ["chat", "achat", "stream_chat", "astream_chat", "complete", "astream_complete"]


async def _warm(sim: ProviderSimulator, *llms: Any) -> tuple[Any, ...]:
    """Each client's first call builds its HTTP client (tenths of a second): done here,
    outside the timings, and forgotten by the simulator."""
    for llm in llms:
        llm.chat(HELLO)
        await llm.achat(HELLO)
    sim.reset()
    return llms


@pytest.mark.parametrize("path", PATHS)
async def test_a_slow_primary_is_hedged_and_the_response_says_so(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    decisions: list[FailoverDecisionEvent],
    path: str,
) -> None:
    children = await _warm(provider_sim, openai_llm(), like_llm())
    provider_sim.stall_first_token(OPENAI, SLOW, keepalive=0.05)
    seen: list[fc.FailoverEvent] = []
    llm = failover_llm(*children, hedge_after=HEDGE, observer=seen.append)
    started = time.perf_counter()
    text, served = await ask(llm, path)
    assert HEDGE <= time.perf_counter() - started < HEDGE + SLACK
    assert text == f"[{LIKE}] you said: hello"
    assert served == {"model": f"openai_like/{LIKE}", "failed_attempts": 0, "hedged": True}
    assert [e.reason for e in seen] == ["hedge_started", "hedge_won"]
    assert [(d.model, d.next_model, d.benched) for d in decisions] == [
        (f"openai/{OPENAI}", f"openai_like/{LIKE}", False)
    ] * 2  # instrumentation sees each hedge event, nothing benched
    assert (provider_sim.calls(OPENAI), provider_sim.calls(LIKE)) == (1, 1)
    assert fc.list_benched() == []
    if path.startswith("a"):  # cancelled: the provider sees the client leave at once
        for _ in range(50):
            if provider_sim.disconnects(OPENAI):
                break
            await asyncio.sleep(0.02)
        assert provider_sim.disconnects(OPENAI) == 1


@pytest.mark.parametrize("path", ["achat", "astream_chat"])
async def test_the_primary_keeps_the_answer_when_it_beats_the_hedge(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    path: str,
) -> None:
    provider_sim.stall_first_token(OPENAI, HEDGE + 0.1, keepalive=0.05)
    provider_sim.stall_first_token(LIKE, SLOW, keepalive=0.05)
    seen: list[fc.FailoverEvent] = []
    llm = failover_llm(openai_llm(), like_llm(), hedge_after=HEDGE, observer=seen.append)
    text, served = await ask(llm, path)
    assert text == f"[{OPENAI}] you said: hello"
    assert served == {"model": f"openai/{OPENAI}", "failed_attempts": 0}
    assert [e.reason for e in seen] == ["hedge_started", "hedge_lost"]
    assert fc.list_benched() == []


@pytest.mark.parametrize("path", ["achat", "astream_chat"])
async def test_the_cancelled_losers_span_ends_under_the_failover_span_saying_it_lost(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    spans: SimpleSpanHandler,
    events: list[BaseEvent],
    path: str,
) -> None:
    children = await _warm(provider_sim, openai_llm(), like_llm())
    provider_sim.stall_first_token(OPENAI, SLOW, keepalive=0.05)
    llm = failover_llm(*children, hedge_after=HEDGE)
    spans.completed_spans.clear()
    spans.dropped_spans.clear()
    events.clear()
    await ask(llm, path)
    [router] = [s for s in spans.completed_spans if s.id_.startswith("FailoverLLM.")]
    every = [*spans.completed_spans, *spans.dropped_spans]
    [loser] = [s for s in every if s.id_.startswith(f"OpenAI.{path}")]
    assert loser.parent_id == router.id_
    assert not spans.open_spans, "no span left open"
    # A call's span is dropped with the cancellation; a stream's span closes when the
    # stream is returned (LlamaIndex's way), and its cancellation is an exception event.
    reasons = [
        str(e.exception) if isinstance(e, ExceptionEvent) else e.err_str
        for e in events
        if isinstance(e, (ExceptionEvent, SpanDropEvent)) and e.span_id == loser.id_
    ]
    assert reasons == [f"lost a hedged race to openai_like/{LIKE}"]
    assert (loser in spans.dropped_spans) == (path == "achat")


def test_hedge_after_is_an_option_of_the_llm(openai_llm: Make, like_llm: Make) -> None:
    llm = FailoverLLM(llms=[openai_llm(), like_llm()], hedge_after="p95")
    assert llm.failover_chain.policy.hedge_after == fc.AdaptiveHedge(95.0)
    with pytest.raises(ValueError, match="hedge_after"):
        FailoverLLM(llms=[openai_llm(), like_llm()], hedge_after="soon")
