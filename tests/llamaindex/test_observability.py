"""Every model call is reported once: FailoverLLM is a router in traces, not a second LLM.

Real handlers (TokenCountingHandler, LlamaIndex's span handler, an event handler) watch real
OpenAI clients on the simulator. The failover LLM's own span holds the attempts; each
attempt is the child's own LLM call, reported by the child alone.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import ChatResponseAsyncGen
from llama_index.core.callbacks import CallbackManager, LlamaDebugHandler, TokenCountingHandler
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import LLM, ChatMessage, ChatResponse, MockLLM
from pydantic import Field

from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverDecisionEvent
from tests.llamaindex.conftest import LIKE, OPENAI, ask

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]
METHODS = [
    "chat",
    "achat",
    "stream_chat",
    "astream_chat",
    "complete",
    "acomplete",
    "stream_complete",
    "astream_complete",
]
START_EVENTS = (LLMChatStartEvent, LLMCompletionStartEvent)
END_EVENTS = (LLMChatEndEvent, LLMCompletionEndEvent)


async def run(llm: LLM, method: str) -> Any:
    """Call ``method`` the way a user does and consume it; the last response."""
    arg: Any = HELLO if "chat" in method else "hello"
    result = getattr(llm, method)(arg)
    if method.startswith("a"):
        result = await result
    if "stream" not in method:
        return result
    chunks = [c async for c in result] if method.startswith("astream") else list(result)
    return chunks[-1]


def counted(handler: TokenCountingHandler) -> tuple[int, int]:
    return len(handler.llm_token_counts), handler.total_llm_token_count


# -- 1. counted once ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["failover", "settings", "children", "both"])
@pytest.mark.parametrize("method", METHODS)
async def test_token_counting_handler_counts_each_call_once(
    where: str,
    method: str,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    settings_callbacks: Callable[[CallbackManager | None], None],
) -> None:
    direct = TokenCountingHandler()
    await run(openai_llm(callback_manager=CallbackManager([direct])), method)

    handler = TokenCountingHandler()
    manager = CallbackManager([handler])
    if where == "settings":  # the documented pattern: every object built after picks it up
        settings_callbacks(manager)
    on_children = {"callback_manager": manager} if where in ("children", "both") else {}
    on_failover = {"callback_manager": manager} if where in ("failover", "both") else {}
    llm = failover_llm(openai_llm(**on_children), like_llm(**on_children), **on_failover)
    await run(llm, method)
    assert counted(handler) == counted(direct) != (0, 0)


async def test_a_handler_on_the_failover_llm_sees_every_attempt_once(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    handler = TokenCountingHandler()
    provider_sim.fail(OPENAI, 401)
    llm = failover_llm(openai_llm(), like_llm(), callback_manager=CallbackManager([handler]))
    await run(llm, "achat")
    [failed, served] = handler.llm_token_counts
    assert failed.total_token_count == 0 < served.total_token_count


def test_a_child_used_elsewhere_does_not_report_to_the_failover_llms_handlers(
    openai_llm: Make, failover_llm: Make
) -> None:
    handler = TokenCountingHandler()
    child = openai_llm()
    failover_llm(child, callback_manager=CallbackManager([handler]))
    child.chat(HELLO)
    assert counted(handler) == (0, 0)


@pytest.mark.parametrize("method", METHODS)
async def test_llm_events_fire_once_per_attempt_and_never_for_the_failover_llm(
    method: str,
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    events: list[BaseEvent],
) -> None:
    provider_sim.fail(OPENAI, 401)
    await run(failover_llm(openai_llm(), like_llm()), method)
    starts = [e for e in events if isinstance(e, START_EVENTS)]
    ends = [e for e in events if isinstance(e, END_EVENTS)]
    assert len(starts) == 2, "one per attempt: the failed one and the one that served"
    assert len(ends) == 1
    assert all(e.model_dict["class_name"] != "FailoverLLM" for e in starts)
    assert not any(str(e.span_id).startswith("FailoverLLM") for e in [*starts, *ends])


# -- 2. nested ------------------------------------------------------------------------


def descends_from(span_id: str, root: str, parents: dict[str, str | None]) -> bool:
    while span_id in parents:
        parent = parents[span_id]
        if parent == root:
            return True
        if parent is None:
            return False
        span_id = parent
    return False


@pytest.mark.parametrize("method", METHODS)
async def test_every_attempt_nests_under_the_failover_span(
    method: str,
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    spans: SimpleSpanHandler,
    events: list[BaseEvent],
) -> None:
    provider_sim.fail(OPENAI, 401)
    response = await run(failover_llm(openai_llm(), like_llm()), method)
    assert response.additional_kwargs["failover"]["model"] == f"openai_like/{LIKE}"

    every = [*spans.completed_spans, *spans.dropped_spans]
    parents = {s.id_: s.parent_id for s in every}
    [root] = [s for s in every if s.parent_id is None]
    assert root.id_.startswith(f"FailoverLLM.{method}-"), "one trace, the failover span its root"
    children = [s for s in every if s is not root]
    assert {s.id_.split(".")[0] for s in children} >= {"OpenAI", "OpenAILike"}
    assert all(descends_from(s.id_, root.id_, parents) for s in children)

    [decision] = [e for e in events if isinstance(e, FailoverDecisionEvent)]
    assert decision.span_id == root.id_
    failed = next(s for s in children if s.id_.startswith("OpenAI."))
    if "stream" in method:  # a stream's span ends when it returns; its error comes later
        assert any(isinstance(e, ExceptionEvent) and e.span_id == failed.id_ for e in events)
    else:
        assert failed in spans.dropped_spans, "the failed attempt is a dropped span"


async def test_a_stream_span_lasts_until_the_stream_ends(
    failover_llm: Make, spans: SimpleSpanHandler
) -> None:
    gen = failover_llm(MockLLM()).stream_complete("one two three")
    assert not [s for s in spans.completed_spans if s.id_.startswith("FailoverLLM")]
    list(gen)
    [span] = [s for s in spans.completed_spans if s.id_.startswith("FailoverLLM")]
    [child] = [s for s in spans.completed_spans if s.parent_id == span.id_]
    assert span.start_time <= child.start_time and child.end_time <= span.end_time


# -- 5. the user's objects are left alone ----------------------------------------------


class Cached(MockLLM):
    """A child that answers from a cache: the same response object every time."""

    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        return CACHE


CACHE = ChatResponse(message=ChatMessage(role="assistant", content="cached"))


def test_a_childs_response_is_not_changed_in_place(failover_llm: Make) -> None:
    response = failover_llm(Cached()).chat(HELLO)
    assert response.additional_kwargs["failover"]["failed_attempts"] == 0
    assert "failover" not in CACHE.additional_kwargs
    assert response.message.content == "cached"


def test_a_stream_stopped_early_or_dropped_unread_still_ends_its_span(
    failover_llm: Make, spans: SimpleSpanHandler
) -> None:
    llm = failover_llm(MockLLM())
    for _ in llm.stream_complete("one two three"):
        break  # the consumer stops early: the span ends, without an error
    unread = llm.stream_complete("never read")
    del unread
    gc.collect()
    ours = [s for s in spans.completed_spans if s.id_.startswith("FailoverLLM.stream_complete")]
    assert len(ours) == 2
    assert not [s for s in spans.dropped_spans if s.id_.startswith("FailoverLLM")]
    assert not [s for s in spans.open_spans.values() if s.id_.startswith("FailoverLLM")]


# -- 6. the legacy callback trace -----------------------------------------------------


def query_trace(make_llm: Callable[[], LLM], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The trace ``LlamaDebugHandler`` on ``Settings.callback_manager`` prints for one
    query-engine query (the LLM built after it is set, as the docs show), without timings."""
    Settings.callback_manager = CallbackManager([LlamaDebugHandler(print_trace_on_end=True)])
    index = VectorStoreIndex.from_documents(
        [Document(text="hello world")], embed_model=MockEmbedding(embed_dim=8)
    )
    engine = index.as_query_engine(llm=make_llm(), embed_model=MockEmbedding(embed_dim=8))
    capsys.readouterr()
    engine.query("hi")
    printed = capsys.readouterr().out.splitlines()
    return [line.split(" -> ")[0] for line in printed if "CBEventType." in line]


def test_llama_debug_handler_sees_the_childs_llm_event_under_a_query_engine(
    failover_llm: Make,
    settings_callbacks: Callable[[CallbackManager | None], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings_callbacks(None)
    direct = query_trace(lambda: MockLLM(max_tokens=5), capsys)
    through = query_trace(lambda: failover_llm(MockLLM(max_tokens=5)), capsys)
    assert "        |_CBEventType.LLM" in direct, "QUERY > SYNTHESIZE > LLM"
    assert through == direct


# -- 7. an abandoned stream -------------------------------------------------------------


class Watched(MockLLM):
    """A child whose async chat stream notes when it is closed."""

    closed: list[str] = Field(default_factory=list)

    async def astream_chat(self, messages: Any, **kwargs: Any) -> ChatResponseAsyncGen:
        async def gen() -> ChatResponseAsyncGen:
            try:
                for i in range(5):
                    yield ChatResponse(
                        message=ChatMessage(role="assistant", content="x" * (i + 1)), delta="x"
                    )
            finally:
                self.closed.append("closed")

        return gen()


async def test_an_astream_chat_the_caller_closes_closes_the_childs_stream_at_once(
    failover_llm: Make,
) -> None:
    child = Watched()
    stream = await failover_llm(child).astream_chat(HELLO)
    async for _ in stream:
        break
    await stream.aclose()  # an async generator's close does not close what it reads
    assert child.closed == ["closed"]


# -- 8. a retry is a decision -------------------------------------------------------------


@pytest.mark.parametrize("path", ["chat", "achat", "stream_chat", "astream_chat"])
async def test_a_retry_on_the_same_model_is_a_decision_event(
    path: str,
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    failover_llm: Make,
    decisions: list[FailoverDecisionEvent],
    spans: SimpleSpanHandler,
) -> None:
    """LangChain reports a retry through ``on_retry``; LlamaIndex handlers get a decision."""
    provider_sim.fail(OPENAI, 503, times=1)
    _, served = await ask(failover_llm(openai_llm()), path)
    assert served == {"model": f"openai/{OPENAI}", "failed_attempts": 1}
    [retry] = decisions
    assert (retry.reason, retry.model, retry.next_model) == (
        "retry",
        f"openai/{OPENAI}",
        retry.model,
    )
    assert (retry.kind, retry.status, retry.attempt, retry.benched) == ("transient", 503, 1, False)
    assert retry.retry_in == 0.0
    [root] = [s for s in [*spans.completed_spans, *spans.dropped_spans] if s.parent_id is None]
    assert retry.span_id == root.id_, "reported on the failover span"
