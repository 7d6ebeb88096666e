"""Real LlamaIndex LLM clients on the simulator, an instrumentation recorder, a builder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core import Settings
from llama_index.core.callbacks import CallbackManager
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI
from llama_index.llms.openai_like import OpenAILike
from pydantic import Field

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverDecisionEvent, FailoverLLM

OPENAI, OPENAI_2, LIKE = "gpt-4o-mini", "gpt-4.1-nano", "mistral-small"


@pytest.fixture
def openai_llm(provider_sim: ProviderSimulator) -> Callable[..., OpenAI]:
    def make(name: str = OPENAI, **kwargs: Any) -> OpenAI:
        return OpenAI(
            model=name,
            api_base=provider_sim.openai_base_url,
            api_key="sk-test",
            max_retries=0,
            **kwargs,
        )

    return make


@pytest.fixture
def like_llm(provider_sim: ProviderSimulator) -> Callable[..., OpenAILike]:
    """An OpenAI-compatible provider of another kind (key ``openai_like/...``)."""

    def make(name: str = LIKE, **kwargs: Any) -> OpenAILike:
        return OpenAILike(
            model=name,
            api_base=provider_sim.openai_base_url,
            api_key="sk-like",
            max_retries=0,
            is_chat_model=True,
            is_function_calling_model=True,
            context_window=32000,
            **kwargs,
        )

    return make


@pytest.fixture
def failover_llm(registry: fc.HealthRegistry) -> Callable[..., FailoverLLM]:
    def make(*llms: Any, **options: Any) -> FailoverLLM:
        options.setdefault("backoff", lambda attempt: 0.0)
        return FailoverLLM(llms=list(llms), **options)

    return make


class DecisionRecorder(BaseEventHandler):
    """A root instrumentation handler keeping the failover decisions it sees."""

    events: list[FailoverDecisionEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "DecisionRecorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, FailoverDecisionEvent):
            self.events.append(event)


@pytest.fixture
def decisions() -> Iterator[list[FailoverDecisionEvent]]:
    root = get_dispatcher()
    handler = DecisionRecorder(events=[])
    root.add_event_handler(handler)
    yield handler.events
    root.event_handlers.remove(handler)


class EventRecorder(BaseEventHandler):
    """A root instrumentation handler keeping every event it sees."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventRecorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def events() -> Iterator[list[BaseEvent]]:
    root = get_dispatcher()
    handler = EventRecorder(events=[])
    root.add_event_handler(handler)
    yield handler.events
    root.event_handlers.remove(handler)


@pytest.fixture
def spans() -> Iterator[SimpleSpanHandler]:
    """LlamaIndex's own span handler on the root dispatcher (completed and dropped spans)."""
    root = get_dispatcher()
    handler = SimpleSpanHandler()
    root.add_span_handler(handler)
    yield handler
    root.span_handlers.remove(handler)


@pytest.fixture
def settings_callbacks() -> Iterator[Callable[[CallbackManager | None], None]]:
    """Set ``Settings.callback_manager`` for one test (the documented place for handlers)."""
    old = Settings._callback_manager

    def set_manager(manager: CallbackManager | None) -> None:
        Settings._callback_manager = manager

    yield set_manager
    Settings._callback_manager = old


HELLO = [ChatMessage(role="user", content="hello")]


async def ask(llm: FailoverLLM, path: str) -> tuple[str, dict[str, Any]]:
    """(text, failover metadata) of one request on ``path`` (a stream: its last response)."""
    if path == "chat":
        r: Any = llm.chat(HELLO)
    elif path == "achat":
        r = await llm.achat(HELLO)
    elif path == "complete":
        r = llm.complete("hello")
    elif path == "stream_chat":
        r = list(llm.stream_chat(HELLO))[-1]
    elif path == "astream_chat":
        r = [x async for x in await llm.astream_chat(HELLO)][-1]
    else:
        r = [x async for x in await llm.astream_complete("hello")][-1]
    text = r.message.content if hasattr(r, "message") else r.text
    return str(text), dict(r.additional_kwargs["failover"])
