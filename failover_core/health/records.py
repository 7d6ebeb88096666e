"""Health records and the store contract every backend implements.

A :class:`HealthStore` only keeps records and applies updates atomically; the rules live
in :class:`~failover_core.health.registry.HealthRegistry`. Records are untrusted input
(any process, or a person with a Redis client, can write them): a record that is not well
formed is logged once and treated as absent.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..telemetry.events import logger
from ..telemetry.printable import printable

__all__ = [
    "BenchedModel",
    "HealthRecord",
    "HealthStore",
    "Update",
    "is_time",
    "record_problem",
    "report_bad_record",
    "sane",
]


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """What a store keeps per model key.

    ``until`` is the epoch second the bench ends (``None``: failing but not benched); once
    it has passed, the model is *recovering* until one request proves it (see
    :meth:`HealthRegistry.enter`). ``consecutive_fails`` counts benching failures since the
    last success, like the seed. ``strikes`` counts failed attempts since the last success
    or bench, from any request: enough of them bench the model even while every request is
    still within its retries. ``cooldown`` is the last cooldown applied, in seconds (it
    grows when a probe fails); ``probe_until`` is the lease of the request probing it.
    ``benched_since`` is when the bench was made and ``strike_times`` when the latest
    strikes came in: a success clears only the failures older than its attempt.
    """

    until: float | None = None
    consecutive_fails: int = 0
    manual: bool = False
    strikes: int = 0
    cooldown: float = 0.0
    probe_until: float | None = None
    benched_since: float | None = None
    strike_times: tuple[float, ...] = ()

    def benched_at(self, now: float) -> bool:
        # The seed's rule: benched while not now.After(until), so the exact instant counts.
        return self.until is not None and now <= self.until

    def recovering_at(self, now: float) -> bool:
        return self.until is not None and now > self.until


_EPOCH_LIMIT = 32503680000.0  # the year 3000: any sane time, well inside datetime's range


def is_time(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= _EPOCH_LIMIT
    )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def record_problem(record: object) -> str | None:
    """What is wrong with ``record`` (read from a store), or ``None`` when it is sound."""
    if not isinstance(record, HealthRecord):
        return f"not a health record but {type(record).__name__}"
    for name in ("until", "probe_until", "benched_since"):
        value = getattr(record, name)
        if value is not None and not is_time(value):
            return f"{name} is not a time: {value!r:.40}"
    for name in ("consecutive_fails", "strikes"):
        if not _is_count(getattr(record, name)):
            return f"{name} is not a count: {getattr(record, name)!r:.40}"
    if not isinstance(record.manual, bool):
        return f"manual is not a boolean: {record.manual!r:.40}"
    if not is_time(record.cooldown) or record.cooldown < 0:
        return f"cooldown is not a duration: {record.cooldown!r:.40}"
    if not isinstance(record.strike_times, tuple) or not all(
        is_time(t) for t in record.strike_times
    ):
        return "strike_times is not a list of times"
    return None


_reported_lock = threading.Lock()
_reported: set[tuple[str, str]] = set()


def report_bad_record(key: str, problem: str) -> None:
    """Log a malformed record once per key and problem (it is then treated as absent)."""
    with _reported_lock:
        if (key, problem) in _reported:
            return
        if len(_reported) < 1024:
            _reported.add((key, problem))
    logger.warning(
        "failover: ignoring a malformed health record for %s (%s); treated as absent",
        printable(key),
        problem,
    )


def sane(key: str, record: HealthRecord | None) -> HealthRecord | None:
    """``record`` if it is well formed; otherwise ``None``, logged once."""
    if record is None:
        return None
    problem = record_problem(record)
    if problem is None:
        return record
    report_bad_record(key, problem)
    return None


@dataclass(frozen=True, slots=True)
class BenchedModel:
    """A snapshot of one benched model."""

    model: str
    until: datetime
    consecutive_fails: int
    manual: bool


Update = Callable[["HealthRecord | None"], "HealthRecord | None"]


class HealthStore(Protocol):
    """Where health records live. Every method is atomic with respect to the others.

    A shared store may also offer ``time() -> float | None``, its own clock in epoch
    seconds: the registry then keeps every record in that clock, so all hosts agree.
    """

    def get(self, key: str) -> HealthRecord | None: ...

    def update(self, key: str, fn: Update) -> HealthRecord | None:
        """Replace the record with ``fn(record)`` atomically (``None`` deletes); return it.

        ``fn`` may run more than once (an optimistic store retries it on a conflict), so it
        must be pure apart from noting its latest answer.
        """
        ...

    def items(self) -> list[tuple[str, HealthRecord]]: ...

    def clear(self) -> None: ...
