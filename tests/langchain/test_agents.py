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
from langchain_failover import FailoverChatModel
from tests.langchain.conftest import CLAUDE, OPENAI, ask
from tests.langchain.test_reporting import RunTree, get_weather

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


async def _astream(
    agent: Any, question: str
) -> tuple[list[tuple[AIMessageChunk, dict[str, Any]]], list[Any]]:
    """:func:`_stream`, with the agent run asynchronously (its model called by ainvoke)."""
    chunks: list[tuple[AIMessageChunk, dict[str, Any]]] = []
    updates: list[Any] = []
    inputs = {"messages": [HumanMessage(question)]}
    async for mode, data in agent.astream(inputs, stream_mode=["messages", "updates"]):
        if mode == "messages":
            chunk, meta = data
            if isinstance(chunk, AIMessageChunk):
                chunks.append((chunk, meta))
        else:
            for update in data.values():
                updates += [m for m in (update or {}).get("messages", []) if m.type == "ai"]
    return chunks, updates


@pytest.mark.parametrize("maker", ["create_agent", "langgraph", "create_agent_async"])
async def test_a_broken_stream_in_an_agent_shows_its_partial_text_once_then_the_fallbacks_answer(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    maker: str,
) -> None:
    provider_sim.fail(OPENAI, 503, after_chunks=3, times=None)
    events: list[fc.FailoverEvent] = []
    model = failover(openai_model(), anthropic_model(), observer=events.append)
    if maker.endswith("_async"):
        chunks, updates = await _astream(_agent("create_agent", model, []), QUESTION)
    else:
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


# -- children that do not stream; resumed metadata; configurable children; generate() --


@pytest.mark.parametrize("path", ["stream", "astream"])
@pytest.mark.parametrize("disable", [True, "tool_calling"])
async def test_a_child_that_does_not_stream_serves_a_stream_with_its_tool_call(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
    disable: Any,
) -> None:
    model = failover(openai_model(disable_streaming=disable), anthropic_model())
    answer = await ask(model.bind_tools([get_weather]), path, "weather in 'Quito'?")
    assert answer.tool_calls[0]["name"] == "get_weather"
    assert answer.tool_calls[0]["args"] == {"city": "Quito"}
    assert answer.response_metadata["failover"]["model"] == f"openai/{OPENAI}"
    assert provider_sim.calls() == 1, "one model called, its answer used"
    text = await ask(failover(openai_model(disable_streaming=disable)), path, "hi")
    assert text.text == f"[{OPENAI}] you said: hi"


async def test_a_resumed_stream_keeps_one_model_provider(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 503, after_chunks=3)
    model = failover(openai_model(), anthropic_model(), resume_streams=True)
    answer = await ask(model, "astream", QUESTION)
    assert answer.text == WHOLE
    assert answer.response_metadata["model_provider"] == "openai"


def test_a_configurable_child_is_refused_with_a_clear_message() -> None:
    from langchain.chat_models import init_chat_model

    child = init_chat_model(
        "openai:gpt-4o-mini", configurable_fields=("temperature",), api_key="sk-x"
    )
    with pytest.raises(TypeError, match="configurable_fields"):
        FailoverChatModel(models=[child])


def test_generate_traces_the_serving_childs_priced_model_run(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 401)
    tracer = RunTree()
    model = failover(openai_model(), anthropic_model())
    result = model.generate([[HumanMessage("one")], [HumanMessage("two")]], callbacks=[tracer])
    texts = [g[0].text for g in result.generations]
    assert texts == [f"[{CLAUDE}] you said: one", f"[{CLAUDE}] you said: two"]
    assert [r.run_type for r in tracer.roots] == ["chain", "chain"], "a router run per prompt"
    priced = [r for r in tracer.model_runs() if r.error is None]
    assert [r.extra["metadata"]["ls_model_name"] for r in priced] == [CLAUDE, CLAUDE]
    assert all(r.extra["metadata"]["ls_provider"] == "anthropic" for r in priced)


def test_a_sync_agents_hedge_loser_streams_no_phantom_tool_call(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    import time

    from langchain.agents import create_agent
    from langchain_core.tools import tool

    @tool
    def slow_weather(city: str) -> str:
        """Get the weather for a city (slowly)."""
        time.sleep(1.0)  # the loser's late answer arrives while the graph still runs
        return f"sunny in {city}"

    provider_sim.stall_first_token(OPENAI, 0.6, keepalive=0.05, times=None)
    model = failover(openai_model(), anthropic_model(), hedge_after=0.2)
    agent = create_agent(model, tools=[slow_weather])
    chunks, updates = _stream(agent, "weather in 'Lima'?")
    served = {m.id for m in updates}  # a streamed model call's chunks share its message id
    phantom = [c for c, _ in chunks if c.id not in served and (c.text or c.tool_call_chunks)]
    assert phantom == []
    calls = [call["name"] for m in updates for call in m.tool_calls]
    assert calls == ["slow_weather"], "one tool call, the winner's"
    assert updates[0].response_metadata["failover"]["hedged"] is True
