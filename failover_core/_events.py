"""Failover decisions: the event an observer receives and the log line written for it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ._classify import ErrorKind, status_of

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
    """Receives every failover decision. An observer that raises is logged, not fatal."""

    def __call__(self, event: FailoverEvent, /) -> object: ...


_MESSAGES = {
    "request_specific": "failover: request-specific error, trying next model",
    "auth_dead": "failover: auth/model-dead error, benching model",
    "exhausted": "failover: transient error, retries exhausted",
    "timeout": "failover: attempt passed its deadline, abandoned, trying next model",
    "benched_elsewhere": "failover: model benched by another request, trying next model",
    "stream_interrupted": "failover: stream failed after output, not failing over",
    "hedge_started": "failover: no output yet, hedging with the next model",
    "hedge_won": "failover: the hedge answered first, the slower attempt cancelled",
    "hedge_lost": "failover: the hedged attempt answered first, the hedge cancelled",
    "failed_in_race": "failover: an attempt failed while its hedge race went on",
}


def log_event(event: FailoverEvent) -> None:
    """A warning with the seed's fields. Never the request, never the error's message."""
    fields = event.as_dict()
    text = " ".join(f"{k}={v}" for k, v in fields.items() if k != "reason")
    # A hedge is routine (a few percent of requests), not a failure: info, not a warning.
    logger.log(
        logging.INFO if event.reason.startswith("hedge_") else logging.WARNING,
        "%s %s",
        _MESSAGES.get(event.reason, "failover decision"),
        text,
        extra={"failover": fields},
    )


def notify(observer: Observer | None, event: FailoverEvent) -> None:
    """Log the decision and hand it to the observer; an observer's failure stays contained."""
    log_event(event)
    if observer is None:
        return
    try:
        observer(event)
    except Exception:
        logger.exception("failover: observer %r raised; the request goes on", observer)
