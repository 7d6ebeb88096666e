"""A sync attempt the failover LLM abandons (past its deadline, or a hedge's loser) ends
its span at that moment, as an error saying why, and nothing it does afterwards reaches a
handler: no late LLM end event, no late token count.

Real handlers (LlamaIndex's span handler, an event handler on the root dispatcher,
``TokenCountingHandler`` on ``Settings.callback_manager``) watch real clients on the
simulator, whose slow model answers after the request was served. Waiting for that late
answer is the point of these tests: they wait for it (about a second), they time nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.span import SpanDropEvent
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import ChatMessage

from failover_core.simulator import ProviderSimulator
from tests.llamaindex.conftest import OPENAI

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]
DEADLINE = 0.3
LATE = 1.0  # the slow model answers this late, long after the request was served
SLOW = "slow-sync-li"  # a name of its own: no other test's late answers mix in


def ask(llm: Any, path: str) -> Any:
    if path == "chat":
        return llm.chat(HELLO)
    if path == "complete":
        return llm.complete("hello")
    return list(llm.stream_chat(HELLO))[-1]


def settle(provider_sim: ProviderSimulator) -> None:
    """Wait until the slow model has answered the abandoned attempt (or failed to)."""
    time.sleep(LATE + 0.3)


@pytest.mark.parametrize(
    ("path", "option"),
    [
        ("chat", {"timeout": DEADLINE}),
        ("complete", {"timeout": DEADLINE}),
        ("stream_chat", {"first_token_timeout": DEADLINE}),
        ("chat", {"hedge_after": DEADLINE}),
        ("stream_chat", {"hedge_after": DEADLINE}),
    ],
    ids=["chat-deadline", "complete-deadline", "stream-deadline", "chat-hedge", "stream-hedge"],
)
def test_an_abandoned_sync_attempt_ends_at_once_and_is_silent_afterwards(
    path: str,
    option: dict[str, float],
    provider_sim: ProviderSimulator,
    like_llm: Make,
    openai_llm: Make,
    failover_llm: Make,
    spans: SimpleSpanHandler,
    events: list[BaseEvent],
    settings_callbacks: Callable[[CallbackManager | None], None],
) -> None:
    tokens = TokenCountingHandler()
    settings_callbacks(CallbackManager([tokens]))
    children = like_llm(SLOW), openai_llm()
    for child in children:  # each client's first call builds its HTTP client: done here
        ask(child, path)
    provider_sim.reset()
    spans.completed_spans.clear()
    spans.dropped_spans.clear()
    events.clear()
    tokens.reset_counts()
    provider_sim.stall_first_token(SLOW, LATE, keepalive=0.05)
    llm = failover_llm(*children, **option)
    response = ask(llm, path)
    assert response.additional_kwargs["failover"]["model"] == f"openai/{OPENAI}"

    slow = [s for s in spans.open_spans.values() if s.id_.startswith("OpenAILike.")]
    assert slow == [], "the abandoned attempt's span ended when it was abandoned"
    dropped = [s for s in spans.dropped_spans if s.id_.startswith("OpenAILike.")]
    ids = {s.id_ for s in dropped}
    expected = "lost a hedged race to openai/" if "hedge_after" in option else "passed its"
    if path != "stream_chat":
        assert dropped, "the abandoned call's spans (OpenAILike nests two) are dropped"
        why = {e.err_str for e in events if isinstance(e, SpanDropEvent) and e.span_id in ids}
    else:  # a stream's span ends when the stream is returned: the error is an event on it
        streams = {s.id_ for s in spans.completed_spans if s.id_.startswith("OpenAILike.")}
        [error] = [e for e in events if isinstance(e, ExceptionEvent)]
        assert error.span_id in streams
        why = {str(error.exception)}
    assert len(why) == 1 and expected in why.pop()
    seen, counted = list(events), list(tokens.llm_token_counts)

    settle(provider_sim)
    late = [type(e).__name__ for e in events[len(seen) :]]
    assert late == [], "nothing from the abandoned attempt reaches a handler"
    assert tokens.llm_token_counts == counted
    assert not [s for s in spans.completed_spans if s.id_.startswith("OpenAILike.")] or (
        path == "stream_chat"
    )
