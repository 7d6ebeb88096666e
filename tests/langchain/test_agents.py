"""Inside agents, the failover model keeps the promises it keeps when called directly.

``create_agent`` and LangGraph call the model's ``invoke()``; the tokens an agent's user
sees come from the child runs underneath (LangGraph's "messages" mode listens to
``on_llm_new_token``). Real ``ChatOpenAI``/``ChatAnthropic`` children over the simulator,
real agents, real stream modes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from tests.langchain.conftest import CLAUDE, OPENAI
from tests.langchain.test_reporting import get_weather

Make = Callable[..., Any]
QUESTION = "tell me a story about the failover chain"
WHOLE = f"[{OPENAI}] you said: {QUESTION}"  # the OpenAI answer, unbroken


def _agent(maker: str, model: Any, tools: list[Any]) -> Any:
    if maker == "create_agent":
        from langchain.agents import create_agent

        return create_agent(model, tools=tools)
    from langgraph.graph import START, MessagesState, StateGraph

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_edge(START, "model")
    return graph.compile()


def _stream(
    agent: Any, question: str
) -> tuple[list[tuple[AIMessageChunk, dict[str, Any]]], list[Any]]:
    """What a "messages"+"updates" consumer gets: the AI chunks, the AI messages."""
    chunks: list[tuple[AIMessageChunk, dict[str, Any]]] = []
    updates: list[Any] = []
    inputs = {"messages": [HumanMessage(question)]}
    for mode, data in agent.stream(inputs, stream_mode=["messages", "updates"]):
        if mode == "messages":
            chunk, meta = data
            if isinstance(chunk, AIMessageChunk):
                chunks.append((chunk, meta))
        else:
            for update in data.values():
                updates += [m for m in (update or {}).get("messages", []) if m.type == "ai"]
    return chunks, updates


def _text(chunks: list[tuple[AIMessageChunk, dict[str, Any]]]) -> str:
    return "".join(chunk.text for chunk, _ in chunks)


@pytest.mark.parametrize("maker", ["create_agent", "langgraph"])
def test_a_broken_stream_in_an_agent_shows_its_partial_text_once_then_the_fallbacks_answer(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    maker: str,
) -> None:
    provider_sim.fail(OPENAI, 503, after_chunks=3, times=None)
    events: list[fc.FailoverEvent] = []
    model = failover(openai_model(), anthropic_model(), observer=events.append)
    chunks, updates = _stream(_agent(maker, model, []), QUESTION)
    partial = _text([c for c in chunks if c[1].get("ls_provider") == "openai"])
    assert partial and WHOLE.startswith(partial)
    assert _text(chunks) == partial + updates[-1].text, "the partial once, then Claude's answer"
    assert updates[-1].text == f"[{CLAUDE}] you said: {QUESTION}"
    assert provider_sim.calls(OPENAI) == 1, "a model that broke mid-stream is not retried"
    assert [e.reason for e in events] == ["stream_restarted"]


@pytest.mark.parametrize("maker", ["create_agent", "langgraph"])
def test_a_broken_stream_in_an_agent_is_resumed_where_resumption_is_on(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    maker: str,
) -> None:
    provider_sim.fail(OPENAI, 503, after_chunks=3, times=None)
    model = failover(openai_model(), anthropic_model(), resume_streams=True)
    chunks, updates = _stream(_agent(maker, model, []), QUESTION)
    assert _text(chunks) == WHOLE == updates[-1].text, "each piece of text shown once"
    served = updates[-1].response_metadata["failover"]
    assert served["model"] == f"anthropic/{CLAUDE}"
    assert served["resumed_from"] == f"openai/{OPENAI}"


def test_without_a_streaming_consumer_invoke_keeps_retrying_as_before(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=2)
    answer = failover(openai_model(), anthropic_model()).invoke(QUESTION)
    assert answer.response_metadata["failover"] == {
        "model": f"openai/{OPENAI}",
        "failed_attempts": 2,
    }


@pytest.mark.parametrize("maker", ["create_agent", "langgraph"])
def test_the_last_chunk_of_each_model_call_and_the_final_message_say_who_served(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    maker: str,
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    model = failover(openai_model(), anthropic_model())
    tools = [get_weather] if maker == "create_agent" else []
    chunks, updates = _stream(_agent(maker, model, tools), "weather in 'Lima'?")
    last = [chunk for chunk, _ in chunks if chunk.chunk_position == "last"]
    assert len(last) == len(updates) == (2 if tools else 1), "one per model call"
    # Three 503s bench the primary: the second step goes straight to Claude.
    served = [{"model": f"anthropic/{CLAUDE}", "failed_attempts": n} for n in (3, 0)]
    assert [c.response_metadata["failover"] for c in last] == served[: len(last)]
    assert [m.response_metadata["failover"] for m in updates] == served[: len(updates)]
    others = [chunk for chunk, _ in chunks if chunk.chunk_position != "last"]
    assert all("failover" not in c.response_metadata for c in others)
