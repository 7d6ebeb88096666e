"""Failover decisions as LlamaIndex instrumentation events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from llama_index.core.instrumentation.events import BaseEvent
from llama_index_instrumentation import get_dispatcher

import failover_core as fc
from failover_core.classification.origin import register_callback_dispatch

# The dispatcher keeps the name it had when this lived in llms.py (handlers may filter on it).
dispatcher = get_dispatcher("llamaindex_failover.llms")


class FailoverDecisionEvent(BaseEvent):
    """A failover decision, dispatched to LlamaIndex instrumentation event handlers."""

    model: str
    kind: str
    status: int | None = None
    attempt: int
    benched: bool
    cooldown: float | None = None
    next_model: str | None = None
    error: str
    reason: str = ""
    """Why (``exhausted``, ``stream_resumed``, ...: :class:`failover_core.FailoverEvent`;
    ``retry``: the same model is tried again after ``retry_in`` seconds)."""
    retry_in: float | None = None

    @classmethod
    def class_name(cls) -> str:
        return "FailoverDecisionEvent"

    @classmethod
    def from_event(cls, event: fc.FailoverEvent) -> FailoverDecisionEvent:
        return cls(
            model=event.model,
            kind=event.kind.value,
            status=event.status,
            attempt=event.attempt,
            benched=event.benched,
            cooldown=event.benched_for.total_seconds() if event.benched_for else None,
            next_model=event.next_model,
            error=f"{type(event.error).__name__}: {event.error}"[:1000],
            reason=event.reason,
        )

    @classmethod
    def retry(cls, command: fc.Sleep, rules: Iterable[fc.ClassifierRule]) -> FailoverDecisionEvent:
        """A retry on the same model (the flow's ``Sleep``): LlamaIndex's twin of
        LangChain's ``on_retry``. Nothing is benched; the next model is the same one."""
        error = command.error
        return cls(
            model=command.key,
            kind=fc.classify(error, rules).value,
            status=fc.status_of(error),
            attempt=command.attempt,
            benched=False,
            next_model=command.key,
            error=f"{type(error).__name__}: {error}"[:1000],
            reason="retry",
            retry_in=command.seconds,
        )


def on_event(event: fc.FailoverEvent) -> None:
    dispatcher.event(FailoverDecisionEvent.from_event(event))


async def aon_event(event: fc.FailoverEvent) -> None:
    await dispatcher.aevent(FailoverDecisionEvent.from_event(event))


def on_retry(rules: Iterable[fc.ClassifierRule]) -> Callable[[fc.Sleep], None]:
    def report(command: fc.Sleep) -> None:
        dispatcher.event(FailoverDecisionEvent.retry(command, rules))

    return report


def aon_retry(rules: Iterable[fc.ClassifierRule]) -> Callable[[fc.Sleep], Awaitable[None]]:
    async def report(command: fc.Sleep) -> None:
        await dispatcher.aevent(FailoverDecisionEvent.retry(command, rules))

    return report


# A legacy callback handler's exception enters a child's call through these: it is the
# caller's own, re-raised as it is (failover_core.classification.origin).
register_callback_dispatch("llama_index.core.callbacks.base", "on_event_start", "on_event_end")
