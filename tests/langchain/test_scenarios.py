"""Outage scenarios with real ChatOpenAI/ChatAnthropic children and the loopback simulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from tests.conftest import FakeClock
from tests.langchain.conftest import CLAUDE, OPENAI, OPENAI_2

Make = Callable[..., Any]


def served_by(message: AIMessage) -> str:
    return str(message.response_metadata["failover"]["model"])


def test_primary_503_fails_over_benches_and_is_skipped_next_time(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    model = failover(openai_model(), anthropic_model())
    first = model.invoke("hello")
    assert served_by(first) == f"anthropic/{CLAUDE}"
    assert first.content == f"[{CLAUDE}] you said: hello"
    assert first.response_metadata["failover"]["failed_attempts"] == 3
    assert provider_sim.calls(OPENAI) == 3
    assert fc.is_benched(f"openai/{OPENAI}")
    model.invoke("again")
    assert provider_sim.calls(OPENAI) == 3, "the benched primary was not called"


def test_cooldown_expiry_brings_the_primary_back(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    clock: FakeClock,
) -> None:
    provider_sim.fail(OPENAI, 503, times=3)
    model = failover(openai_model(), anthropic_model(), cooldown=60)
    assert served_by(model.invoke("a")) == f"anthropic/{CLAUDE}"
    clock.advance(61)
    assert served_by(model.invoke("b")) == f"openai/{OPENAI}"


def test_401_benches_after_one_call(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 401, times=None)
    events: list[fc.FailoverEvent] = []
    model = failover(openai_model(), anthropic_model(), observer=events.append)
    assert served_by(model.invoke("hi")) == f"anthropic/{CLAUDE}"
    assert provider_sim.calls(OPENAI) == 1
    assert fc.is_benched(f"openai/{OPENAI}")
    [event] = events
    assert (event.kind, event.status, event.benched) == (fc.ErrorKind.AUTH_DEAD, 401, True)
    assert isinstance(event.error, openai.AuthenticationError)


def test_context_length_400_moves_on_without_bench(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(
        OPENAI,
        400,
        code="context_length_exceeded",
        message="This model's maximum context length is 128000 tokens.",
    )
    model = failover(openai_model(), anthropic_model())
    assert served_by(model.invoke("a very long prompt")) == f"anthropic/{CLAUDE}"
    assert provider_sim.calls(OPENAI) == 1
    assert not fc.is_benched(f"openai/{OPENAI}")
    assert served_by(model.invoke("short")) == f"openai/{OPENAI}"


def test_one_429_is_retried_on_the_same_model(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 429, times=1)
    model = failover(openai_model(), anthropic_model())
    answer = model.invoke("hi")
    assert answer.response_metadata["failover"] == {
        "model": f"openai/{OPENAI}",
        "failed_attempts": 1,
    }
    assert provider_sim.calls(CLAUDE) == 0
    assert not fc.is_benched(f"openai/{OPENAI}")


def test_anthropic_529_fails_over_to_openai(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(CLAUDE, 529, times=None)
    events: list[fc.FailoverEvent] = []
    model = failover(anthropic_model(), openai_model(), observer=events.append)
    assert served_by(model.invoke("hi")) == f"openai/{OPENAI}"
    assert isinstance(events[0].error, anthropic.APIStatusError)
    assert events[0].status == 529 and events[0].kind is fc.ErrorKind.TRANSIENT


def test_all_down_raises_every_cause(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    provider_sim.fail(CLAUDE, 401, times=None)
    model = failover(openai_model(), anthropic_model(), max_retries=2)
    with pytest.raises(fc.AllModelsFailedError) as info:
        model.invoke("hi")
    assert "all 2 models in chain failed" in str(info.value)
    assert info.value.models == (f"openai/{OPENAI}", f"anthropic/{CLAUDE}")
    assert isinstance(info.value.exceptions[0], openai.InternalServerError)
    assert isinstance(info.value.exceptions[1], anthropic.AuthenticationError)


def test_stream_fails_over_before_the_first_chunk(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    model = failover(openai_model(), anthropic_model())
    chunks = list(model.stream("stream please"))
    assert "".join(c.text for c in chunks) == f"[{CLAUDE}] you said: stream please"
    assert chunks[0].response_metadata["failover"]["model"] == f"anthropic/{CLAUDE}"


def test_stream_error_before_any_text_still_fails_over(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    # HTTP 200 and the role header arrive, then the in-stream error: no text was emitted.
    provider_sim.fail(OPENAI, 503, after_chunks=0, times=None)
    model = failover(openai_model(), anthropic_model(), max_retries=1)
    text = "".join(c.text for c in model.stream("hi"))
    assert text == f"[{CLAUDE}] you said: hi"


def test_stream_failure_after_output_is_typed_and_not_replayed(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 503, after_chunks=2)
    model = failover(openai_model(), anthropic_model())
    received: list[str] = []
    with pytest.raises(fc.StreamInterruptedError) as info:  # noqa: PT012 - consuming is the act
        for chunk in model.stream("tell me something"):
            received.append(chunk.text)
    assert "".join(received) == f"[{OPENAI}] you"
    assert info.value.text == f"[{OPENAI}] you"
    assert info.value.model == f"openai/{OPENAI}"
    assert provider_sim.calls(CLAUDE) == 0, "nothing was replayed on the backup"


async def test_astream_dropped_connection_after_output_is_typed(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 503, after_chunks=3, disconnect=True)
    model = failover(openai_model(), anthropic_model())
    received: list[str] = []
    with pytest.raises(fc.StreamInterruptedError) as info:  # noqa: PT012 - consuming is the act
        async for chunk in model.astream("tell me something"):
            received.append(chunk.text)
    assert info.value.text == "".join(received) != ""
    assert provider_sim.calls(CLAUDE) == 0


async def test_async_cancellation_benches_nothing(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.set_latency(OPENAI, 5.0)
    events: list[fc.FailoverEvent] = []
    model = failover(openai_model(), anthropic_model(), observer=events.append)
    task = asyncio.create_task(model.ainvoke("slow"))
    for _ in range(200):
        if provider_sim.calls(OPENAI):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fc.list_benched() == [] and events == []
    assert provider_sim.calls(CLAUDE) == 0


def test_tools_are_bound_on_every_child_in_its_own_format(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"sunny in {city}"

    provider_sim.fail(OPENAI, 503, times=None)
    model = failover(openai_model(), anthropic_model(), max_retries=1)
    answer = model.bind_tools([get_weather], tool_choice="any").invoke("weather in 'Paris'?")
    assert answer.tool_calls[0]["name"] == "get_weather"
    assert answer.tool_calls[0]["args"] == {"city": "Paris"}
    [to_openai] = provider_sim.requests(OPENAI)
    [to_claude] = provider_sim.requests(CLAUDE)
    assert to_openai.body["tools"][0]["function"]["name"] == "get_weather"
    assert to_openai.body["tool_choice"] == "required"
    assert to_claude.body["tools"][0]["name"] == "get_weather"
    assert "input_schema" in to_claude.body["tools"][0]
    assert to_claude.body["tool_choice"] == {"type": "any"}


class Person(BaseModel):
    name: str
    age: int


PERSON_SCHEMA = {
    "title": "Person",
    "description": "A person.",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.mark.parametrize("schema", [Person, PERSON_SCHEMA], ids=["pydantic", "json_schema"])
def test_structured_output_across_providers(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    schema: Any,
) -> None:
    model = failover(openai_model(), anthropic_model())
    structured = model.with_structured_output(schema)
    prompt = "Extract: 'Ada' is 36 years old."
    from_openai = structured.invoke(prompt)
    provider_sim.fail(OPENAI, 401)
    from_claude = structured.invoke(prompt)
    expected = {"name": "Ada", "age": 36}
    for result in (from_openai, from_claude):
        assert (result.model_dump() if isinstance(result, Person) else result) == expected
    assert provider_sim.calls(CLAUDE) == 1


def test_an_lcel_chain_survives_the_outage(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 502, times=None)
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")])
    chain = prompt | failover(openai_model(), anthropic_model()) | StrOutputParser()
    assert chain.invoke({"q": "what is failover"}) == f"[{CLAUDE}] you said: what is failover"
    assert chain.batch([{"q": "one"}, {"q": "two"}]) == [
        f"[{CLAUDE}] you said: one",
        f"[{CLAUDE}] you said: two",
    ]


def test_an_agent_finishes_when_its_primary_dies_mid_conversation(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    from langchain.agents import create_agent

    @tool
    def lookup_order(order_id: int) -> str:
        """Look up an order's status."""
        provider_sim.fail(OPENAI, 503, times=None)  # the primary dies while the tool runs
        return f"order {order_id} shipped"

    agent = create_agent(failover(openai_model(), anthropic_model()), tools=[lookup_order])
    result = agent.invoke({"messages": [HumanMessage("where is order 4242?")]})
    messages = result["messages"]
    assert messages[1].tool_calls[0]["args"] == {"order_id": 4242}
    assert served_by(messages[1]) == f"openai/{OPENAI}"
    assert messages[2].content == "order 4242 shipped"
    assert served_by(messages[3]) == f"anthropic/{CLAUDE}"
    assert messages[3].content == f"[{CLAUDE}] tool said: order 4242 shipped"
    assert (
        json.loads(json.dumps(provider_sim.requests(CLAUDE)[0].body["messages"]))[-1]["content"][0][
            "type"
        ]
        == "tool_result"
    )


def test_three_providers_and_a_second_openai_model(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 401, times=None)
    provider_sim.fail(CLAUDE, 403, times=None)
    model = failover(openai_model(), anthropic_model(), openai_model(OPENAI_2))
    assert served_by(model.invoke("x")) == f"openai/{OPENAI_2}"
    assert [b.model for b in fc.list_benched()] == [f"anthropic/{CLAUDE}", f"openai/{OPENAI}"]


def test_an_agent_with_a_response_format_uses_tools_across_providers(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    from langchain.agents import create_agent

    provider_sim.fail(OPENAI, 503, times=None)
    agent = create_agent(
        failover(openai_model(), anthropic_model()), tools=[], response_format=Person
    )
    result = agent.invoke({"messages": [HumanMessage("Extract: 'Ada' is 36 years old.")]})
    assert result["structured_response"] == Person(name="Ada", age=36)
