"""Resumed streams with real llama-index OpenAI/Anthropic clients over the simulator.

An OpenAI chat stream broken after some text goes on on the Anthropic LLM, which continues
the partial answer as its own (prefilled) turn. Tool calls, structured output and chains
with nothing able after the broken model are never resumed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    LLMMetadata,
    ThinkingBlock,
)
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import ChatMessage, CustomLLM
from llama_index.core.tools import FunctionTool
from llama_index.llms.anthropic import Anthropic
from pydantic import BaseModel

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverDecisionEvent, FailoverLLM
from tests.core.fakes import HTTPError
from tests.llamaindex.conftest import OPENAI, OPENAI_2

Make = Callable[..., Any]
CLAUDE = "claude-haiku-4-5"
PROMPT = "tell me the long story of the failover chain"
ASK = [ChatMessage(role="user", content=PROMPT)]
WHOLE = f"[{OPENAI}] you said: {PROMPT}"  # the OpenAI answer, unbroken
PARTIAL = f"[{OPENAI}] you said:"  # its first three chunks
IDLE = 0.3


class Weather(BaseModel):
    city: str


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"sunny in {city}"


@pytest.fixture
def claude(provider_sim: ProviderSimulator) -> Anthropic:
    return Anthropic(
        model=CLAUDE, base_url=provider_sim.anthropic_base_url, api_key="x", max_retries=0
    )


def _break(sim: ProviderSimulator, how: str, after: int = 3) -> dict[str, Any]:
    if how == "error_event":
        sim.fail(OPENAI, 503, after_chunks=after)
    elif how == "dropped":
        sim.fail(OPENAI, 503, after_chunks=after, disconnect=True)
    else:
        sim.stall_after_chunks(OPENAI, after, 2.0, keepalive=0.05)
        return {"idle_timeout": IDLE}
    return {}


async def _chat(llm: FailoverLLM, path: str, messages: list[ChatMessage] = ASK) -> list[Any]:
    if path == "stream_chat":
        return list(llm.stream_chat(messages))
    return [r async for r in await llm.astream_chat(messages)]


@pytest.mark.parametrize("path", ["stream_chat", "astream_chat"])
@pytest.mark.parametrize("how", ["error_event", "dropped", "idle"])
async def test_a_broken_openai_chat_stream_is_finished_by_anthropic(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    claude: Anthropic,
    failover_llm: Make,
    path: str,
    how: str,
) -> None:
    events: list[fc.FailoverEvent] = []
    options = _break(provider_sim, how)
    llm = failover_llm(openai_llm(), claude, resume_streams=True, observer=events.append, **options)
    responses = await _chat(llm, path)

    assert "".join(r.delta or "" for r in responses) == WHOLE, "nothing repeated, none lost"
    assert responses[-1].message.content == WHOLE, "the message holds the whole answer"
    [continued] = provider_sim.requests(CLAUDE)
    prefill = continued.body["messages"][-1]
    assert prefill["role"] == "assistant"
    assert [b["text"] for b in prefill["content"]] == [PARTIAL], "the text so far, as a prefill"
    first = next(r for r in responses if r.additional_kwargs["failover"].get("resumed_from"))
    assert first.additional_kwargs["failover"] == {
        "model": f"anthropic/{CLAUDE}",
        "failed_attempts": 1,
        "resumed_from": f"openai/{OPENAI}",
        "resumed_after": len(PARTIAL),
    }
    assert responses[0].additional_kwargs["failover"]["model"] == f"openai/{OPENAI}"
    [event] = events
    assert (event.reason, event.model, event.next_model) == (
        "stream_resumed",
        f"openai/{OPENAI}",
        f"anthropic/{CLAUDE}",
    )
    assert isinstance(event.error, fc.ResumeNotice) and event.error.characters == len(PARTIAL)


async def test_the_failed_attempt_and_the_decision_show_in_instrumentation(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    claude: Anthropic,
    failover_llm: Make,
    registry: fc.HealthRegistry,
    events: list[BaseEvent],
) -> None:
    _break(provider_sim, "error_event")
    llm = failover_llm(openai_llm(), claude, resume_streams=True)
    responses = await _chat(llm, "astream_chat")
    assert responses[-1].message.content == WHOLE
    [decision] = [e for e in events if isinstance(e, FailoverDecisionEvent)]
    assert (decision.reason, decision.next_model) == ("stream_resumed", f"anthropic/{CLAUDE}")
    record = registry.store.get(f"openai/{OPENAI}")
    assert record is not None and record.strikes == 1, "one strike, as an interrupted stream"
    spans = {e.span_id.split(".")[0] for e in events if e.span_id and "-" in e.span_id}
    assert {"OpenAI", "Anthropic"} <= spans, "both attempts are traced"
    failed = [e for e in events if type(e).__name__ in ("ExceptionEvent", "SpanDropEvent")]
    assert any(str(e.span_id).startswith("OpenAI.") for e in failed), "the first one errored"


@pytest.mark.parametrize("path", ["stream_chat", "astream_chat"])
async def test_off_by_default_the_stream_is_interrupted(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    claude: Anthropic,
    failover_llm: Make,
    path: str,
) -> None:
    _break(provider_sim, "error_event")
    with pytest.raises(fc.StreamInterruptedError) as info:
        await _chat(failover_llm(openai_llm(), claude), path)
    assert info.value.text == PARTIAL
    assert provider_sim.calls(CLAUDE) == 0


@pytest.mark.parametrize("path", ["stream_chat", "astream_chat"])
async def test_no_able_llm_after_it_means_interrupted(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make, path: str
) -> None:
    _break(provider_sim, "error_event")
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2), resume_streams=True)
    with pytest.raises(fc.StreamInterruptedError):
        await _chat(llm, path)
    assert provider_sim.calls(OPENAI_2) == 0


async def test_a_tool_call_stream_is_never_resumed(
    provider_sim: ProviderSimulator, openai_llm: Make, claude: Anthropic, failover_llm: Make
) -> None:
    _break(provider_sim, "error_event", after=2)
    llm = failover_llm(openai_llm(), claude, resume_streams=True)
    tool = FunctionTool.from_defaults(fn=get_weather)
    with pytest.raises(fc.StreamInterruptedError):
        list(llm.stream_chat_with_tools([tool], user_msg="weather in Rome?"))
    assert provider_sim.calls(CLAUDE) == 0


async def test_structured_output_is_never_resumed_it_is_retried_whole(
    provider_sim: ProviderSimulator, openai_llm: Make, claude: Anthropic, failover_llm: Make
) -> None:
    """Each attempt is the child's own structured stream, whose partial objects have no
    field before the JSON (or the tool call's arguments) is whole: a break before that has
    shown nothing, so the request is retried from scratch, never continued elsewhere."""
    from llama_index.core.prompts import PromptTemplate
    from llama_index.core.types import PydanticProgramMode

    _break(provider_sim, "error_event", after=2)
    primary = openai_llm(pydantic_program_mode=PydanticProgramMode.FUNCTION)
    llm = failover_llm(primary, claude, resume_streams=True)
    partials = [
        p
        async for p in await llm.astream_structured_predict(
            Weather, PromptTemplate("weather in {city}?"), city="Rome"
        )
    ]
    assert partials[-1] == Weather(city="City")
    assert (provider_sim.calls(OPENAI), provider_sim.calls(CLAUDE)) == (2, 0)


class BrokenAfter(CustomLLM):
    """A child whose chat stream sends ``responses`` then fails as a provider does (HTTP
    503): for shapes the simulator's OpenAI API does not send (thinking, text before a
    tool call) and for requests whose text must not be continued."""

    responses: list[ChatResponse]

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="broken", is_chat_model=True)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError

    def stream_chat(self, messages: Any, **kwargs: Any) -> ChatResponseGen:
        def gen() -> ChatResponseGen:
            yield from self.responses
            raise HTTPError(503)

        return gen()

    async def astream_chat(self, messages: Any, **kwargs: Any) -> ChatResponseAsyncGen:
        async def gen() -> ChatResponseAsyncGen:
            for response in self.responses:
                yield response
            raise HTTPError(503)

        return gen()


def _said(text: str, **kwargs: Any) -> ChatResponse:
    return ChatResponse(message=ChatMessage(role="assistant", content=text, **kwargs), delta=text)


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{"}}
NOT_PLAIN = {
    "thinking_block": [
        ChatResponse(
            message=ChatMessage(role="assistant", blocks=[ThinkingBlock(content="hmm")]), delta=""
        ),
        _said("The answer"),
    ],
    "text_then_tool_call": [
        _said("Let me check."),
        ChatResponse(
            message=ChatMessage(
                role="assistant", content="Let me check.", additional_kwargs={"tool_calls": [CALL]}
            ),
            delta="",
        ),
    ],
}


@pytest.mark.parametrize("path", ["stream_chat", "astream_chat"])
@pytest.mark.parametrize("shape", sorted(NOT_PLAIN))
async def test_thinking_or_a_tool_call_is_never_resumed(
    provider_sim: ProviderSimulator, claude: Anthropic, failover_llm: Make, path: str, shape: str
) -> None:
    events: list[fc.FailoverEvent] = []
    first = BrokenAfter(responses=NOT_PLAIN[shape])
    llm = failover_llm(first, claude, resume_streams=True, observer=events.append)
    with pytest.raises(fc.StreamInterruptedError):
        await _chat(llm, path)
    assert [e.reason for e in events] == ["stream_interrupted"]
    assert provider_sim.calls(CLAUDE) == 0


async def test_json_mode_is_never_resumed(
    provider_sim: ProviderSimulator, claude: Anthropic, failover_llm: Make
) -> None:
    # The broken child streamed plain text (JSON so far): the request is what forbids it.
    events: list[fc.FailoverEvent] = []
    first = BrokenAfter(responses=[_said('{"city": '), _said('{"city": "Ro')])
    llm = failover_llm(first, claude, resume_streams=True, observer=events.append)
    with pytest.raises(fc.StreamInterruptedError):
        list(llm.stream_chat(ASK, response_format={"type": "json_object"}))
    assert [e.reason for e in events] == ["stream_interrupted"]
    assert provider_sim.calls(CLAUDE) == 0


def test_completion_streams_are_not_resumed(
    provider_sim: ProviderSimulator, openai_llm: Make, claude: Anthropic, failover_llm: Make
) -> None:
    _break(provider_sim, "error_event")
    llm = failover_llm(openai_llm(), claude, resume_streams=True)
    with pytest.raises(fc.StreamInterruptedError):
        list(llm.stream_complete(PROMPT))
    assert provider_sim.calls(CLAUDE) == 0


def test_assignment_rebuilds_the_chain_with_the_option(openai_llm: Make, claude: Anthropic) -> None:
    llm = FailoverLLM(llms=[openai_llm(), claude])
    assert llm.failover_chain.policy.resume_streams is False
    llm.resume_streams = [f"anthropic/{CLAUDE}"]
    policy = llm.failover_chain.policy
    assert policy.resume_streams == frozenset({f"anthropic/{CLAUDE}"})
