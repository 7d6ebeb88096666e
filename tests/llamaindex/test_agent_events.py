"""A streamed FunctionAgent over FailoverLLM reports what the direct child reports, per attempt.

``FunctionAgent`` streams by default: every model call is the LLM's
``astream_chat_with_tools``. A real event handler on the root dispatcher and a real
``TokenCountingHandler`` watch the real OpenAI client on the simulator, first called
directly, then through FailoverLLM. Each attempt the failover LLM makes must be reported
exactly as the same call made on the child directly: one ``LLMChatStartEvent``, the child's
in-progress events, one ``LLMChatEndEvent`` when it succeeds (a failed call: a start and no
end, as the direct child reports it), tokens counted once.

Measured (llama-index-core 0.14.25, llama-index-llms-openai 0.8.3): a call reports one
start and one end event, direct or through FailoverLLM, awaited or streamed. OpenInference
shows two LLM spans per call on this path (``OpenAI._prepare_chat_with_tools`` and
``OpenAI.astream_chat``), the direct child as much as FailoverLLM: LlamaIndex's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import openai
import pytest
from llama_index.core.agent.workflow import AgentOutput, AgentStream, AgentWorkflow, FunctionAgent
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMChatStartEvent,
)
from llama_index.core.llms import LLM
from llama_index.core.tools import BaseTool, FunctionTool
from llama_index.llms.openai import OpenAI

from failover_core.simulator import ProviderSimulator
from tests.llamaindex.conftest import OPENAI, OPENAI_2

Make = Callable[..., Any]
LLM_EVENTS = (LLMChatStartEvent, LLMChatInProgressEvent, LLMChatEndEvent)
QUESTION = "what is 2 + 40?"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def run_agent(llm: LLM, *, tool: bool, streamed: bool) -> str:
    """One agent run as a user makes it: awaited, or its events streamed to the end."""
    tools: list[BaseTool | Callable[..., Any]] = [FunctionTool.from_defaults(add)] if tool else []
    agent = FunctionAgent(tools=tools, llm=llm, streaming=True)
    handler = agent.run(QUESTION)
    if streamed:
        async for _ in handler.stream_events():
            pass
    return str(await handler)


def reported(events: list[BaseEvent], tokens: TokenCountingHandler) -> Counter[str]:
    """What the handlers saw: LLM events by type, token-count events and their tokens."""
    seen = Counter(type(e).__name__ for e in events if isinstance(e, LLM_EVENTS))
    seen["token events"] = len(tokens.llm_token_counts)
    seen["tokens"] = tokens.total_llm_token_count
    return seen


async def observe(
    llm: LLM, events: list[BaseEvent], tokens: TokenCountingHandler, **run: bool
) -> tuple[Counter[str], str | None]:
    """(what one agent run reported, its answer; None when it failed with a 503)."""
    events.clear()
    tokens.reset_counts()
    try:
        answer: str | None = await run_agent(llm, **run)
    except openai.InternalServerError:
        answer = None
    return reported(events, tokens), answer


def assert_paired_child_calls(events: list[BaseEvent]) -> None:
    """Every LLM event is a child's call (never the failover LLM's); one end per start."""
    starts = [e for e in events if isinstance(e, LLMChatStartEvent)]
    ends = [e for e in events if isinstance(e, LLMChatEndEvent)]
    assert {e.model_dict["class_name"] for e in starts} == {OpenAI.class_name()}
    assert not any(str(e.span_id).startswith("FailoverLLM") for e in [*starts, *ends])
    start_spans = [e.span_id for e in starts]
    assert len(set(start_spans)) == len(start_spans), "one start per call"
    end_spans = [e.span_id for e in ends]
    assert len(set(end_spans)) == len(end_spans) and set(end_spans) <= set(start_spans)


# fault: none; the primary's first call 503s and is retried on it; the primary 503s
# throughout and the request fails over to the second model.
FAULTS = ["none", "retried", "failed over"]


@pytest.mark.parametrize("streamed", [False, True], ids=["awaited", "stream_events"])
@pytest.mark.parametrize("tool", [True, False], ids=["one tool", "no tool"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_a_streamed_agent_reports_each_attempt_as_the_direct_child_does(
    fault: str,
    tool: bool,
    streamed: bool,
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    failover_llm: Make,
    events: list[BaseEvent],
    settings_callbacks: Callable[[CallbackManager | None], None],
) -> None:
    tokens = TokenCountingHandler()
    settings_callbacks(CallbackManager([tokens]))  # children and failover LLM all carry it
    serving = OPENAI_2 if fault == "failed over" else OPENAI

    # The direct child, attempt by attempt: the failed call, then the run that is served.
    expected: Counter[str] = Counter()
    if fault != "none":
        provider_sim.fail(OPENAI, 503)
        failed, answer = await observe(openai_llm(), events, tokens, tool=tool, streamed=streamed)
        assert answer is None and failed["LLMChatStartEvent"] == 1
        expected += failed
    direct, direct_answer = await observe(
        openai_llm(serving), events, tokens, tool=tool, streamed=streamed
    )
    expected += direct
    assert direct["LLMChatEndEvent"] == direct["LLMChatStartEvent"] == (2 if tool else 1)

    provider_sim.reset()
    if fault != "none":
        provider_sim.fail(OPENAI, 503, times=1 if fault == "retried" else None)
    retries = {"max_retries": 1} if fault == "failed over" else {}
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2), **retries)
    seen, answer = await observe(llm, events, tokens, tool=tool, streamed=streamed)

    assert answer == direct_answer is not None
    assert seen == expected
    assert_paired_child_calls(events)
    calls = direct["LLMChatStartEvent"] + (fault != "none")
    assert provider_sim.calls(OPENAI) + provider_sim.calls(OPENAI_2) == calls


async def test_handlers_given_only_to_the_failover_llm_see_a_streamed_agent_once(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    failover_llm: Make,
    events: list[BaseEvent],
) -> None:
    tokens = TokenCountingHandler()
    manager = CallbackManager([tokens])
    direct, _ = await observe(
        openai_llm(callback_manager=manager), events, tokens, tool=True, streamed=True
    )
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2), callback_manager=manager)
    seen, _ = await observe(llm, events, tokens, tool=True, streamed=True)
    assert seen == direct and direct["tokens"] > 0
    assert_paired_child_calls(events)


# -- who served each step ------------------------------------------------------------


@pytest.mark.parametrize("workflow", [False, True], ids=["FunctionAgent", "AgentWorkflow"])
@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "not streaming"])
async def test_each_agent_step_says_who_served_it(
    workflow: bool,
    streaming: bool,
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    failover_llm: Make,
) -> None:
    provider_sim.fail(OPENAI, 401)  # benched at the first step: the second model serves all
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2))
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=llm, streaming=streaming)
    handler = (AgentWorkflow(agents=[agent]) if workflow else agent).run(QUESTION)
    outputs: list[AgentOutput] = []
    streamed: list[AgentStream] = []
    async for event in handler.stream_events():
        if isinstance(event, AgentOutput):
            outputs.append(event)
        elif isinstance(event, AgentStream):
            streamed.append(event)
    await handler

    served = [output.raw["failover"] for output in outputs]
    assert [s["model"] for s in served] == [f"openai/{OPENAI_2}"] * 2, "the tool call, the answer"
    assert [s["failed_attempts"] for s in served] == [1, 0]
    assert all(output.raw["model"] == OPENAI_2 for output in outputs), "the provider's fields stay"
    if streaming:
        assert streamed and all(
            s.raw["failover"]["model"] == f"openai/{OPENAI_2}" for s in streamed
        )
