"""Failover decisions: the event an observer receives and the log line written for it."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import traceback
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from ..classification.classifier import ErrorKind, status_of
from .printable import printable

__all__ = ["FailoverEvent", "Observer", "logger"]

logger = logging.getLogger("llm_failover")


@dataclass(frozen=True, slots=True)
class FailoverEvent:
    """One failover decision, as the seed's ``FailoverEvent``.

    ``next_model`` is the entry tried next (``None`` at the end of the chain, or when a
    stream failed after output and nothing is tried). ``benched_for`` is the cooldown
    applied when ``benched`` is true. ``request`` is whatever the adapter passed as the
    request (the messages); observers may persist it, the library never logs it.

    Hedges (``hedge_after``) are events too, with ``reason`` ``"hedge_started"`` then
    ``"hedge_won"`` or ``"hedge_lost"``: ``model`` is the slow attempt, ``next_model`` the
    hedge, ``error`` a :class:`~failover_core.HedgeNotice`, and nothing is benched.

    A stream continued on another model (``resume_streams``) is the event ``reason``
    ``"stream_resumed"``: ``model`` failed, ``next_model`` continues, ``error`` a
    :class:`~failover_core.ResumeNotice` (with the character count; the failure is its
    ``__cause__``).
    """

    model: str
    error: BaseException
    kind: ErrorKind
    attempt: int
    benched: bool = False
    benched_for: timedelta | None = None
    next_model: str | None = None
    request: object = None
    until: datetime | None = None
    reason: str = ""

    @property
    def status(self) -> int | None:
        """The HTTP status behind the error, if one was found."""
        return status_of(self.error)

    def as_dict(self) -> dict[str, Any]:
        """The decision's fields without the request or the error's text (safe to log)."""
        return {
            "model": self.model,
            "kind": self.kind.value,
            "status": self.status,
            "error_type": type(self.error).__name__,
            "attempt": self.attempt,
            "benched": self.benched,
            "cooldown": self.benched_for.total_seconds() if self.benched_for else None,
            "until": self.until.isoformat() if self.until else None,
            "next": self.next_model,
            "reason": self.reason,
        }


class Observer(Protocol):
    """Receives every failover decision. An observer that raises is logged, not fatal.

    It may be an ``async def``: the async paths await it. A plain function runs inline,
    on the event loop when the call is async, so it should be quick.
    """

    def __call__(self, event: FailoverEvent, /) -> object: ...


_MESSAGES = {
    "request_specific": "failover: request-specific error, trying next model",
    "auth_dead": "failover: auth/model-dead error, benching model",
    "exhausted": "failover: transient error, retries exhausted",
    "timeout": "failover: attempt passed its deadline, abandoned, trying next model",
    "transient_next": "failover: transient error, trying the next model at once (a strike)",
    "benched_elsewhere": "failover: model benched by another request, trying next model",
    "stream_interrupted": "failover: stream failed after output, not failing over",
    "stream_resumed": "failover: stream failed after plain text, continued on the next model",
    "hedge_started": "failover: no output yet, hedging with the next model",
    "hedge_won": "failover: the hedge answered first, the slower attempt cancelled",
    "hedge_lost": "failover: the hedged attempt answered first, the hedge cancelled",
    "failed_in_race": "failover: an attempt failed while its hedge race went on",
}


def log_event(event: FailoverEvent) -> None:
    """A warning with the seed's fields. Never the request, never the error's message."""
    fields = event.as_dict()
    # Model keys are escaped: one with a line break must not forge a second log line.
    text = " ".join(f"{k}={printable(v)}" for k, v in fields.items() if k != "reason")
    # A hedge is routine (a few percent of requests), not a failure: info, not a warning.
    logger.log(
        logging.INFO if event.reason.startswith("hedge_") else logging.WARNING,
        "%s %s",
        _MESSAGES.get(event.reason, "failover decision"),
        text,
        extra={"failover": fields},
    )


_reported_lock = threading.Lock()
_reported: dict[str, weakref.WeakSet[Any]] = {}
_reported_ids: set[tuple[str, int]] = set()  # callables that take no weak reference
_REPORTED_MAX = 1024


def _first_failure(role: str, fn: object) -> bool:
    """Whether this is ``fn``'s first failure in ``role`` (then it is remembered)."""
    with _reported_lock:
        seen = _reported.setdefault(role, weakref.WeakSet())
        try:
            if fn in seen:
                return False
            seen.add(fn)
            return True
        except TypeError:  # not weak-referenceable or not hashable: remember its id
            ident = (role, id(fn))
            if ident in _reported_ids:
                return False
            if len(_reported_ids) < _REPORTED_MAX:
                _reported_ids.add(ident)
            return True


def contained_failure(role: str, fn: object, exc: BaseException, fallback: str) -> None:
    """Log a user callable's failure once per callable, without any chained exception.

    The callable ran while a provider error was being handled, so Python chains that
    error (whose text can echo the prompt or part of a key) to ``exc``; the traceback is
    formatted with ``chain=False`` and never includes it. Later failures of the same
    callable are logged at debug level only, so a broken hook cannot flood the logs.
    """
    first = _first_failure(role, fn)
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False))
    logger.log(
        logging.ERROR if first else logging.DEBUG,
        "failover: %s %s raised %s; %s; the request goes on\n%s",
        role,
        _name_of(fn),
        type(exc).__name__,
        fallback,
        trace.rstrip(),
    )


def _name_of(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def notify(observer: Observer | None, event: FailoverEvent) -> Awaitable[object] | None:
    """Log the decision and hand it to the observer; an observer's failure stays contained.

    An ``async def`` observer's coroutine is returned, not run: the driver awaits it on
    an async path (:func:`aawait_observer`) or runs it to completion on a sync one
    (:func:`run_observer`).
    """
    log_event(event)
    if observer is None:
        return None
    try:
        result = observer(event)
    except Exception as exc:
        contained_failure("observer", observer, _without_provider_error(exc, event), "skipped")
        return None
    if inspect.isawaitable(result):
        return cast("Awaitable[object]", result)
    return None


def _without_provider_error(exc: BaseException, event: FailoverEvent) -> BaseException:
    """An observer that re-raises the event's own error would log the provider's text."""
    if exc is event.error:
        return RuntimeError(f"the observer re-raised the event's {type(exc).__name__}")
    return exc


async def aawait_observer(observer: object, pending: Awaitable[object]) -> None:
    """Await an async observer's coroutine on an async path; its failure stays contained."""
    try:
        await pending
    except Exception as exc:
        contained_failure("observer", observer, exc, "skipped")


def run_observer(observer: object, pending: Awaitable[object]) -> None:
    """Run an async observer's coroutine to completion on a sync path.

    With no event loop running in this thread it gets its own (``asyncio.run``); inside a
    running loop (a sync call made from async code) it cannot be awaited without blocking
    that loop, so it is skipped and logged once.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if inspect.iscoroutine(pending):
            pending.close()
        contained_failure(
            "observer",
            observer,
            RuntimeError("an async observer cannot run in a sync call inside a running loop"),
            "use the async API (ainvoke/astream) to have it awaited",
        )
        return
    try:
        asyncio.run(_await(pending))
    except Exception as exc:
        contained_failure("observer", observer, exc, "skipped")


async def _await(pending: Awaitable[object]) -> object:
    return await pending
