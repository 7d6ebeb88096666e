"""The caller's own exceptions never bench a healthy model (issue 24, item 3): a
LlamaIndex callback handler that raises inside a child's call is re-raised as it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.callbacks import CallbackManager
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverLLM
from tests.llamaindex.conftest import OPENAI


class Raising(BaseCallbackHandler):
    """A tracing handler whose backend is down."""

    def __init__(self, error: Exception) -> None:
        super().__init__([], [])
        self.error = error

    def on_event_start(self, *args: Any, **kwargs: Any) -> str:
        raise self.error

    def on_event_end(self, *args: Any, **kwargs: Any) -> None:
        pass

    def start_trace(self, trace_id: str | None = None) -> None:
        pass

    def end_trace(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.mark.parametrize("path", ["chat", "achat", "stream_chat"])
async def test_a_handlers_exception_is_raised_as_it_is_and_benches_nothing(
    provider_sim: ProviderSimulator,
    openai_llm: Callable[..., OpenAI],
    registry: fc.HealthRegistry,
    path: str,
) -> None:
    error = ConnectionError("tracing backend unreachable")
    handlers = CallbackManager([Raising(error)])
    first = openai_llm(OPENAI, callback_manager=handlers)
    second = openai_llm("gpt-4.1-nano", callback_manager=handlers)
    llm = FailoverLLM(llms={"a/1": first, "b/2": second}, max_retries=3)
    messages = [ChatMessage(role="user", content="hi")]
    try:
        if path == "chat":
            llm.chat(messages)
        elif path == "achat":
            await llm.achat(messages)
        else:
            list(llm.stream_chat(messages))
    except ConnectionError as raised:
        assert raised is error
    else:
        raise AssertionError("the handler's error was not raised")
    assert provider_sim.calls() == 0, "the handler raised before the provider was called"
    assert registry.list() == [], "nothing benched"
