"""Silence for abandoned sync attempts: a gate per attempt, closed when it is abandoned.

A sync attempt cut by its deadline, or a sync hedge's loser, cannot be interrupted: its
worker thread finishes the call when the provider gives up (seconds later, or never). Left
alone, its span would stay open until then and its late events (the LLM end event, token
counts, stream chunks) would reach every handler after the request was answered.

So each sync attempt runs behind a :class:`Gate`, held in a context variable of the
attempt's own context (its worker thread's, or set and reset around each step on the
caller's thread). When the failover LLM abandons the attempt it closes the gate: the spans
the attempt opened end at that moment, dropped with an error that says why (the deadline,
or the race lost to the winner), and from then on nothing dispatched in the attempt's
context reaches a handler: the root dispatcher's handler lists and the per-call legacy
callback manager iterate to nothing there. Other contexts (the caller, other requests)
are untouched.

The seam: LlamaIndex dispatches to handlers by iterating the dispatchers' handler lists,
so the root dispatcher's lists are replaced, once, by :class:`GatedHandlers` (a list that
is empty when read from a closed attempt's context). Handlers added later join it as
before; handlers on other dispatchers than the root are not gated.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index_instrumentation import get_dispatcher
from llama_index_instrumentation.events.span import SpanDropEvent
from llama_index_instrumentation.span_handlers import BaseSpanHandler

import failover_core as fc

__all__ = ["Gate", "GatedHandlers", "Gates", "current_gate", "gated", "gated_steps"]

T = TypeVar("T")

_current: ContextVar[Gate | None] = ContextVar("llamaindex_failover_gate", default=None)


def current_gate() -> Gate | None:
    """The gate of the attempt running in this context, if any."""
    return _current.get()


class GatedHandlers(list):  # type: ignore[type-arg]  # holds whatever handlers LlamaIndex holds
    """A handler list that reads as empty in the context of an abandoned attempt."""

    def __iter__(self) -> Iterator[Any]:
        gate = _current.get()
        if gate is not None and gate.closed:
            return iter(())
        return super().__iter__()


class Gate:
    """One sync attempt: the spans it has open, and whether it was abandoned."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.closed = False
        self.done = False  # returned (or failed) on its own: nothing left to abandon
        self._lock = threading.Lock()
        self._spans: dict[str, tuple[inspect.BoundArguments, Any]] = {}
        self._first: str | None = None  # the attempt's outermost span, even once ended

    def opened(self, id_: str, bound_args: inspect.BoundArguments, instance: Any) -> None:
        with self._lock:
            self._spans[id_] = (bound_args, instance)
            if self._first is None:
                self._first = id_

    def ended(self, id_: str) -> None:
        with self._lock:
            self._spans.pop(id_, None)

    def close(self, error: BaseException) -> None:
        """Abandon the attempt: its open spans end now, dropped with ``error``. A stream's
        span has ended already (LlamaIndex ends it when the stream is returned): the error
        is then an exception event on it, as for an async stream that is cancelled."""
        with self._lock:
            if self.closed or self.done:
                return
            self.closed = True
            spans, self._spans = list(self._spans.items()), {}
        root = get_dispatcher()
        if not spans and self._first is not None:
            root.event(ExceptionEvent(exception=error, span_id=self._first))
        for id_, (bound_args, instance) in reversed(spans):  # the innermost first
            root.event(SpanDropEvent(span_id=id_, err_str=str(error)))
            root.span_drop(id_=id_, bound_args=bound_args, instance=instance, err=error)


class _Watcher(BaseSpanHandler[Any]):
    """Notes the spans each gated attempt opens, so closing its gate can end them."""

    @classmethod
    def class_name(cls) -> str:
        return "FailoverGateWatcher"

    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        gate = _current.get()
        if gate is not None:
            gate.opened(id_, bound_args, instance)

    def span_exit(self, id_: str, *args: Any, **kwargs: Any) -> None:
        gate = _current.get()
        if gate is not None:
            gate.ended(id_)

    def span_drop(self, id_: str, *args: Any, **kwargs: Any) -> None:
        self.span_exit(id_)

    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None


_install_lock = threading.Lock()


def _install() -> None:
    root = get_dispatcher()
    if isinstance(root.event_handlers, GatedHandlers) and isinstance(
        root.span_handlers, GatedHandlers
    ):
        return
    with _install_lock:
        if not isinstance(root.event_handlers, GatedHandlers):
            root.event_handlers = GatedHandlers(root.event_handlers)
        if not isinstance(root.span_handlers, GatedHandlers):
            root.span_handlers = GatedHandlers(root.span_handlers)
        if not any(isinstance(h, _Watcher) for h in list.__iter__(root.span_handlers)):
            root.span_handlers.append(_Watcher())


class Gates:
    """The gates of one request's sync attempts, closed by the decisions that abandon them."""

    def __init__(self) -> None:
        _install()
        self._gates: list[Gate] = []
        self._lock = threading.Lock()

    def new(self, key: str) -> Gate:
        gate = Gate(key)
        with self._lock:
            self._gates.append(gate)
        return gate

    def abandon(self, event: fc.FailoverEvent) -> None:
        """Close the gates of the attempts ``event`` abandons (a deadline, a lost race)."""
        error: BaseException
        if event.reason in ("hedge_won", "hedge_lost") and event.next_model is not None:
            winner, loser = (
                (event.next_model, event.model)
                if event.reason == "hedge_won"
                else (event.model, event.next_model)
            )
            error = fc.HedgeNotice(f"lost a hedged race to {winner}")
        elif isinstance(event.error, fc.AttemptTimeoutError):
            loser, error = event.model, event.error
        elif isinstance(event.error.__cause__, fc.AttemptTimeoutError):
            loser, error = event.model, event.error.__cause__
        else:
            return
        with self._lock:
            gates = [g for g in self._gates if g.key == loser]
        for gate in gates:
            gate.close(error)

    def reporting(
        self, on_event: Callable[[fc.FailoverEvent], None]
    ) -> Callable[[fc.FailoverEvent], None]:
        """``on_event``, after closing the gates the decision abandons (the abandoned
        attempt's span ends before the decision is told)."""

        def report(event: fc.FailoverEvent) -> None:
            self.abandon(event)
            on_event(event)

        return report


def gated(gate: Gate, call: Callable[[], T]) -> T:
    """``call()`` behind ``gate`` (done once it returns or raises)."""
    token = _current.set(gate)
    try:
        return call()
    finally:
        gate.done = not gate.closed
        _current.reset(token)


def gated_steps(gate: Gate, open_stream: Callable[[], Iterable[T]]) -> Iterator[T]:
    """``open_stream()`` with its opening and each step behind ``gate`` (done once it ends,
    fails or is closed)."""
    token = _current.set(gate)
    try:
        steps = iter(open_stream())
    finally:
        _current.reset(token)
    try:
        while True:
            token = _current.set(gate)
            try:
                item = next(steps)
            except StopIteration:
                return
            finally:
                _current.reset(token)
            yield item
    finally:
        token = _current.set(gate)
        try:
            getattr(steps, "close", lambda: None)()
        finally:
            _current.reset(token)
            gate.done = not gate.closed
