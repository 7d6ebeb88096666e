"""Resumed streams with real ChatOpenAI/ChatAnthropic children over the simulator.

An OpenAI stream broken after some text goes on on the Anthropic child, which continues
the partial answer as its own (prefilled) turn; what it must never do is resume a tool
call, structured output, or a stream when nothing after it can continue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from pydantic import BaseModel

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from tests.core.fakes import HTTPError
from tests.langchain.conftest import CLAUDE, OPENAI, OPENAI_2
from tests.langchain.test_reporting import RunTree, get_weather

Make = Callable[..., Any]
PROMPT = "tell me the long story of the failover chain"
WHOLE = f"[{OPENAI}] you said: {PROMPT}"  # the OpenAI answer, unbroken
IDLE = 0.3  # seconds without a chunk before a committed stream counts as broken


class Weather(BaseModel):
    city: str


async def _chunks(model: Any, path: str, prompt: Any = PROMPT, **kwargs: Any) -> list[Any]:
    if path == "stream":
        return list(model.stream(prompt, **kwargs))
    return [c async for c in model.astream(prompt, **kwargs)]


def _break(sim: ProviderSimulator, how: str, after: int = 3) -> dict[str, Any]:
    """Break the OpenAI stream after ``after`` chunks; the options the model needs for it."""
    if how == "error_event":
        sim.fail(OPENAI, 503, after_chunks=after)
    elif how == "dropped":
        sim.fail(OPENAI, 503, after_chunks=after, disconnect=True)
    else:
        sim.stall_after_chunks(OPENAI, after, 2.0, keepalive=0.05)
        return {"idle_timeout": IDLE}
    return {}


def _sum(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


@pytest.mark.parametrize("path", ["stream", "astream"])
@pytest.mark.parametrize("how", ["error_event", "dropped", "idle"])
async def test_a_broken_openai_stream_is_finished_by_the_anthropic_child(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
    how: str,
) -> None:
    events: list[fc.FailoverEvent] = []
    options = _break(provider_sim, how)
    model = failover(
        openai_model(), anthropic_model(), resume_streams=True, observer=events.append, **options
    )
    chunks = await _chunks(model, path)

    text = "".join(c.text for c in chunks)
    assert text == WHOLE, "the answer reads unbroken: nothing repeated, nothing lost"
    [event] = [e for e in events if e.reason == "stream_resumed"]
    partial = WHOLE[: event.error.characters]  # type: ignore[attr-defined]
    assert partial == f"[{OPENAI}] you said:", "three chunks of text were delivered first"
    [continued] = provider_sim.requests(CLAUDE)
    assert continued.body["messages"][-1] == {"role": "assistant", "content": partial}
    starts = [i for i, c in enumerate(chunks) if "failover" in c.response_metadata]
    assert len(starts) == 2, "metadata on the first chunk and on the continuation's first"
    assert "".join(c.text for c in chunks[starts[1] :]) == WHOLE[len(partial) :]
    assert (event.model, event.next_model) == (f"openai/{OPENAI}", f"anthropic/{CLAUDE}")
    assert events == [event], "no other decision: the stream was resumed, not interrupted"


async def test_the_answer_names_both_models_and_the_failed_one_has_its_strike(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    registry: fc.HealthRegistry,
) -> None:
    _break(provider_sim, "error_event")
    model = failover(openai_model(), anthropic_model(), resume_streams=True)
    total = _sum(await _chunks(model, "astream"))
    assert total.response_metadata["failover"] == {
        "model": f"openai/{OPENAI}",
        "failed_attempts": 0,
        "resumed_from": f"openai/{OPENAI}",
        "resumed_on": f"anthropic/{CLAUDE}",
        "resumed_after": len(f"[{OPENAI}] you said:"),
    }
    record = registry.store.get(f"openai/{OPENAI}")
    assert record is not None and record.strikes == 1
    joined = model.model_copy(update={"streaming": True}).invoke(PROMPT)
    assert joined.text == f"[{OPENAI}] you said: {PROMPT}", "invoke(streaming=True) too"


def test_the_trace_shows_both_attempts_the_first_errored(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    _break(provider_sim, "error_event")
    model = failover(openai_model(), anthropic_model(), resume_streams=True)
    tracer = RunTree()
    assert "".join(c.text for c in model.stream(PROMPT, {"callbacks": [tracer]})) == WHOLE
    [router] = tracer.failover_runs()
    assert router.run_type == "chain" and router.error is None
    attempts = tracer.model_runs()
    assert [r.parent_run_id for r in attempts] == [router.id, router.id]
    assert [r.extra["metadata"]["ls_model_name"] for r in attempts] == [OPENAI, CLAUDE]
    assert [r.error is not None for r in attempts] == [True, False]


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_off_by_default_the_broken_stream_is_interrupted(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    _break(provider_sim, "error_event")
    model = failover(openai_model(), anthropic_model())
    with pytest.raises(fc.StreamInterruptedError) as info:
        await _chunks(model, path)
    assert info.value.text == f"[{OPENAI}] you said:"
    assert provider_sim.calls(CLAUDE) == 0


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_no_able_model_after_it_means_interrupted(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make, path: str
) -> None:
    _break(provider_sim, "error_event")
    model = failover(openai_model(), openai_model(OPENAI_2), resume_streams=True)
    with pytest.raises(fc.StreamInterruptedError) as info:
        await _chunks(model, path)
    assert info.value.model == f"openai/{OPENAI}"
    assert provider_sim.calls(OPENAI_2) == 0, "an OpenAI model cannot continue an answer"


async def test_keys_name_the_able_children_instead_of_the_default(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    _break(provider_sim, "error_event")
    model = failover(openai_model(), anthropic_model(), resume_streams=["openai/gpt-4o-mini"])
    with pytest.raises(fc.StreamInterruptedError):
        await _chunks(model, "astream")
    assert provider_sim.calls(CLAUDE) == 0


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_an_openai_tool_call_stream_is_never_resumed(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    _break(provider_sim, "error_event", after=2)
    events: list[fc.FailoverEvent] = []
    model = failover(openai_model(), anthropic_model(), resume_streams=True, observer=events.append)
    with pytest.raises(fc.StreamInterruptedError):
        await _chunks(model.bind_tools([get_weather]), path, "weather in Rome?")
    assert [e.reason for e in events] == ["stream_interrupted"]
    assert provider_sim.calls(CLAUDE) == 0


class BrokenAfter(BaseChatModel):
    """A child that streams ``chunks`` and then fails as a provider does (HTTP 503): for
    chunk shapes the simulator's OpenAI API does not send (text before a tool call,
    reasoning), and for requests whose text must not be continued."""

    chunks: list[AIMessageChunk]

    @property
    def _llm_type(self) -> str:
        return "broken"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        raise NotImplementedError

    def _stream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self.chunks:
            yield ChatGenerationChunk(message=chunk)
        raise HTTPError(503)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tools=tools, **kwargs)


TOOL_CALL = {
    "name": "get_weather",
    "args": '{"ci',
    "id": "call_1",
    "index": 0,
    "type": "tool_call_chunk",
}
NOT_PLAIN = {
    "text_then_tool_call": [
        AIMessageChunk(content="Let me check."),
        AIMessageChunk(content="", tool_call_chunks=[TOOL_CALL]),  # type: ignore[list-item]
    ],
    "thinking_block": [
        AIMessageChunk(content=[{"type": "thinking", "thinking": "hmm", "index": 0}]),
        AIMessageChunk(content=[{"type": "text", "text": "The answer", "index": 1}]),
    ],
    "reasoning_content": [
        AIMessageChunk(content="", additional_kwargs={"reasoning_content": "hmm"}),
        AIMessageChunk(content="The answer"),
    ],
}


@pytest.mark.parametrize("path", ["stream", "astream"])
@pytest.mark.parametrize("shape", sorted(NOT_PLAIN))
async def test_a_stream_with_a_tool_call_or_reasoning_is_never_resumed(
    provider_sim: ProviderSimulator, anthropic_model: Make, failover: Make, path: str, shape: str
) -> None:
    events: list[fc.FailoverEvent] = []
    first = BrokenAfter(chunks=NOT_PLAIN[shape])
    model = failover(first, anthropic_model(), resume_streams=True, observer=events.append)
    runnable = model.bind_tools([get_weather]) if "tool" in shape else model
    with pytest.raises(fc.StreamInterruptedError) as info:
        await _chunks(runnable, path)
    assert info.value.model == "brokenafter"
    assert [e.reason for e in events] == ["stream_interrupted"]
    assert provider_sim.calls(CLAUDE) == 0


async def test_structured_output_is_answered_whole_by_the_next_model_never_resumed(
    provider_sim: ProviderSimulator, anthropic_model: Make, failover: Make
) -> None:
    # with_structured_output is each child's own structured call, answered whole: a child
    # broken midway is an attempt that failed, and the next child answers from scratch.
    events: list[fc.FailoverEvent] = []
    first = BrokenAfter(chunks=[AIMessageChunk(content='{"city": '), AIMessageChunk(content='"Ro')])
    model = failover(first, anthropic_model(), resume_streams=True, observer=events.append)
    runnable = model.with_structured_output(Weather, include_raw=True)
    [answer] = await _chunks(runnable, "astream", "weather in Rome?")
    assert isinstance(answer["parsed"], Weather)
    assert answer["raw"].response_metadata["failover"]["model"] == f"anthropic/{CLAUDE}"
    assert "stream_resumed" not in [e.reason for e in events]


@pytest.mark.parametrize("shape", ["json_mode", "forced_tool"])
async def test_structured_output_is_never_resumed(
    provider_sim: ProviderSimulator, anthropic_model: Make, failover: Make, shape: str
) -> None:
    # The broken child streamed plain text (JSON so far): the request is what forbids it.
    events: list[fc.FailoverEvent] = []
    first = BrokenAfter(chunks=[AIMessageChunk(content='{"city": '), AIMessageChunk(content='"Ro')])
    model = failover(first, anthropic_model(), resume_streams=True, observer=events.append)
    runnable: Any = model
    kwargs: dict[str, Any] = {}
    if shape == "json_mode":
        kwargs = {"response_format": {"type": "json_object"}}
    else:
        runnable = model.bind_tools([get_weather], tool_choice="get_weather")
    with pytest.raises(fc.StreamInterruptedError):
        await _chunks(runnable, "astream", "weather in Rome?", **kwargs)
    assert [e.reason for e in events] == ["stream_interrupted"]
    assert provider_sim.calls(CLAUDE) == 0


def test_from_specs_and_assignment_take_the_option(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make
) -> None:
    model = FailoverChatModel(models=[openai_model(), anthropic_model()])
    assert model.failover_chain.policy.resume_streams is False
    model.resume_streams = True  # assigning a policy option rebuilds the chain
    assert model.failover_chain.policy.resume_streams is True
    with pytest.raises(TypeError, match="resume_streams"):
        model.resume_streams = "yes"
    assert model.failover_chain.policy.resume_streams is True
