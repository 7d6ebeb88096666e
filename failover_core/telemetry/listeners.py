"""Process-wide listeners for what the flow sees: attempts, decisions, probes, requests.

The flow reports to every listener added here; with none (the default) each report is
one check of an empty tuple, so metrics cost nothing unless someone asks for them
(``failover_core.otel.instrument_metrics``). Listeners get facts, never the request or the
provider's error text, and a listener that raises is logged once and never breaks a request.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal, Protocol

from .events import FailoverEvent

__all__ = [
    "Listener",
    "Outcome",
    "ProbeResult",
    "add_listener",
    "listeners",
    "remove_listener",
    "report",
]

logger = logging.getLogger("llm_failover")

Outcome = Literal[
    "success", "transient", "unknown", "auth_dead", "request_specific", "timeout", "cancelled"
]
"""How one attempt ended."""

ProbeResult = Literal["recovered", "failed", "released"]
"""How a probe of a recovering model ended: it answered, it failed (benched again), or the
error said nothing of the model (the lease was handed back)."""


class Listener(Protocol):
    """Receives the flow's facts. Every method must be cheap and must not block."""

    def attempt_ended(self, model: str, outcome: Outcome, seconds: float) -> None:
        """One attempt ended; ``seconds`` from its start to its answer (a stream: its first
        output) or its failure."""

    def decided(self, event: FailoverEvent) -> None:
        """A failover decision (the observer's event)."""

    def probe_ended(self, model: str, result: ProbeResult) -> None:
        """A probe of a recovering model ended."""

    def request_ended(self, served: str | None, attempts: int) -> None:
        """A request ended: served by ``served`` (``None``: every model failed, or the
        caller cancelled) after ``attempts`` attempts in all."""


_lock = threading.Lock()
_listeners: tuple[Listener, ...] = ()
_failed: set[int] = set()  # ids of listeners whose failure was logged


def listeners() -> tuple[Listener, ...]:
    """The listeners now (a tuple: reading it needs no lock)."""
    return _listeners


def add_listener(listener: Listener) -> None:
    """Report to ``listener`` from now on, in every chain of the process."""
    global _listeners
    with _lock:
        if listener not in _listeners:
            _listeners = (*_listeners, listener)


def remove_listener(listener: Listener) -> bool:
    """Stop reporting to ``listener``; says whether it was there."""
    global _listeners
    with _lock:
        if listener not in _listeners:
            return False
        _listeners = tuple(x for x in _listeners if x is not listener)
        return True


def report(method: str, *args: object) -> None:
    """Call ``method`` on every listener; one that raises is logged once and skipped."""
    for listener in _listeners:
        try:
            getattr(listener, method)(*args)
        except Exception:
            _failed_once(listener, method)


def _failed_once(listener: Listener, method: str) -> None:
    with _lock:
        if id(listener) in _failed:
            return
        _failed.add(id(listener))
    logger.warning(
        "failover: telemetry listener %s.%s raised; the request goes on (logged once)",
        type(listener).__name__,
        method,
        exc_info=False,
    )
