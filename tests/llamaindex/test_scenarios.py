"""Outage scenarios for FailoverLLM with real LlamaIndex clients and the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage, ChatResponse
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverDecisionEvent
from tests.llamaindex.conftest import LIKE, OPENAI, OPENAI_2

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]


def served_by(response: Any) -> str:
    return str(response.additional_kwargs["failover"]["model"])


def test_primary_503_fails_over_benches_and_is_skipped(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), like_llm())
    response = llm.chat(HELLO)
    assert served_by(response) == f"openai_like/{LIKE}"
    assert response.message.content == f"[{LIKE}] you said: hello"
    assert response.additional_kwargs["failover"]["failed_attempts"] == 3
    assert fc.is_benched(f"openai/{OPENAI}")
    llm.complete("again")
    assert provider_sim.calls(OPENAI) == 3


def test_401_benches_after_one_call(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 401, times=None)
    llm = failover_llm(openai_llm(), like_llm())
    assert served_by(llm.chat(HELLO)) == f"openai_like/{LIKE}"
    assert provider_sim.calls(OPENAI) == 1 and fc.is_benched(f"openai/{OPENAI}")


def test_context_length_moves_on_without_bench(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 400, code="context_length_exceeded")
    llm = failover_llm(openai_llm(), like_llm())
    assert served_by(llm.chat(HELLO)) == f"openai_like/{LIKE}"
    assert not fc.is_benched(f"openai/{OPENAI}")


def test_one_429_is_retried_on_the_same_model(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 429, times=1)
    response = failover_llm(openai_llm(), like_llm()).complete("hi")
    assert response.additional_kwargs["failover"] == {
        "model": f"openai/{OPENAI}",
        "failed_attempts": 1,
    }
    assert response.text == f"[{OPENAI}] you said: hi"


async def test_all_down_raises_every_cause(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    provider_sim.fail(LIKE, 529, times=None)
    llm = failover_llm(openai_llm(), like_llm(), max_retries=2)
    with pytest.raises(fc.AllModelsFailedError) as info:
        await llm.achat(HELLO)
    assert "all 2 models in chain failed" in str(info.value)
    assert [fc.status_of(e) for e in info.value.exceptions] == [503, 529]
    assert isinstance(info.value.exceptions[0], openai.InternalServerError)


def test_stream_fails_over_before_the_first_chunk(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), like_llm())
    responses = list(llm.stream_chat(HELLO))
    assert responses[-1].message.content == f"[{LIKE}] you said: hello"
    assert {served_by(r) for r in responses} == {f"openai_like/{LIKE}"}
    text = "".join(r.delta or "" for r in llm.stream_complete("complete me"))
    assert text == f"[{LIKE}] you said: complete me"


async def test_astream_failure_after_output_is_typed_and_not_replayed(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, after_chunks=2)
    llm = failover_llm(openai_llm(), like_llm())
    deltas: list[str] = []
    with pytest.raises(fc.StreamInterruptedError) as info:  # noqa: PT012 - consuming is the act
        async for response in await llm.astream_chat(HELLO):
            deltas.append(response.delta or "")
    assert info.value.text == "".join(deltas) == f"[{OPENAI}] you"
    assert provider_sim.calls(LIKE) == 0


async def test_astream_complete_fails_over_before_output(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 401)
    llm = failover_llm(openai_llm(), like_llm())
    text = "".join([r.delta or "" async for r in await llm.astream_complete("go")])
    assert text == f"[{LIKE}] you said: go"
    completed = await llm.acomplete("again")
    assert completed.additional_kwargs["failover"]["model"] == f"openai_like/{LIKE}"


async def test_async_cancellation_benches_nothing(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.set_latency(OPENAI, 5.0)
    llm = failover_llm(openai_llm(), like_llm())
    task = asyncio.create_task(llm.achat(HELLO))
    for _ in range(200):
        if provider_sim.calls(OPENAI):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fc.list_benched() == [] and provider_sim.calls(LIKE) == 0


def test_instrumentation_handlers_receive_each_decision(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    decisions: list[FailoverDecisionEvent],
) -> None:
    provider_sim.fail(OPENAI, 401)
    failover_llm(openai_llm(), like_llm()).chat(HELLO)
    [event] = decisions
    assert (event.model, event.kind, event.status, event.benched) == (
        f"openai/{OPENAI}",
        "auth_dead",
        401,
        True,
    )
    assert event.next_model == f"openai_like/{LIKE}"
    assert event.span_id is not None and event.span_id.startswith("FailoverLLM.chat")


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_function_agent_completes_while_the_primary_is_down(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), like_llm())
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=llm)
    result = await agent.run("what is 2 + 40?")
    assert str(result) == f"[{LIKE}] tool said: 42"
    assert provider_sim.calls(LIKE) == 2


def test_predict_and_call_reads_tool_calls_with_the_serving_child(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    tool = FunctionTool.from_defaults(add)
    llm = failover_llm(like_llm(), openai_llm())
    from_claude = llm.predict_and_call([tool], user_msg="add 2 and 40")
    provider_sim.fail(LIKE, 401)
    from_openai = llm.predict_and_call([tool], user_msg="add 3 and 4")
    assert (str(from_claude), str(from_openai)) == ("42", "7")
    [to_openai] = provider_sim.requests(OPENAI)
    assert to_openai.body["tools"][0]["function"]["name"] == "add"
    assert provider_sim.requests(LIKE)[0].body["tools"][0]["function"]["name"] == "add"


class Person(BaseModel):
    name: str
    age: int


def test_structured_predict_across_providers(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    from llama_index.core.prompts import PromptTemplate

    llm = failover_llm(openai_llm(), like_llm())
    prompt = PromptTemplate("Extract the person: {text}")
    provider_sim.fail(OPENAI, 503, times=None)
    person = llm.structured_predict(Person, prompt, text="'Ada' is 36 years old")
    assert person == Person(name="Ada", age=36)
    assert provider_sim.calls(LIKE) == 1


def test_query_engine_over_a_vector_index(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 502, times=None)
    llm = failover_llm(openai_llm(), like_llm())
    index = VectorStoreIndex.from_documents(
        [Document(text="Failover moves requests to a healthy model.")],
        embed_model=MockEmbedding(embed_dim=8),
    )
    engine = index.as_query_engine(llm=llm)
    answer = engine.query("what does failover do?")
    assert str(answer).startswith(f"[{LIKE}] you said:")
    assert "healthy model" in provider_sim.requests(LIKE)[0].body["messages"][-1]["content"]


def test_settings_llm_accepts_it(openai_llm: Make, failover_llm: Make) -> None:
    llm = failover_llm(openai_llm())
    old = Settings._llm
    try:
        Settings.llm = llm
        assert Settings.llm is llm
    finally:
        Settings._llm = old


def test_a_model_benched_by_a_langchain_chain_is_skipped_here(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    from langchain_openai import ChatOpenAI

    from langchain_failover import FailoverChatModel

    provider_sim.fail(OPENAI, 401)
    lc_primary = ChatOpenAI(
        model=OPENAI, base_url=provider_sim.openai_base_url, api_key="x", max_retries=0
    )
    lc_backup = ChatOpenAI(
        model=OPENAI_2, base_url=provider_sim.openai_base_url, api_key="x", max_retries=0
    )
    FailoverChatModel(models=[lc_primary, lc_backup]).invoke("hi")
    assert provider_sim.calls(OPENAI) == 1
    response: ChatResponse = failover_llm(openai_llm(), like_llm()).chat(HELLO)
    assert served_by(response) == f"openai_like/{LIKE}"
    assert provider_sim.calls(OPENAI) == 1, "one registry: LlamaIndex skipped it too"
