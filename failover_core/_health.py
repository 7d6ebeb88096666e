"""The health registry: which models are benched, shared by every chain in the process.

State lives in a :class:`HealthStore`. The registry holds the rules (expiry, thresholds,
manual benches) and the store only keeps records and applies updates atomically, so a
store shared by a fleet (Redis) can replace the in-memory one without touching the flow.

Times are wall-clock epoch seconds from an injectable clock: a bench must mean the same
instant to every process that shares a store. Expiry is derived when read; nothing runs on
a timer.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = [
    "BenchedModel",
    "HealthRecord",
    "HealthRegistry",
    "HealthStore",
    "MemoryHealthStore",
    "bench_model",
    "get_health_registry",
    "is_benched",
    "list_benched",
    "set_health_registry",
    "unbench_model",
]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """What a store keeps per model key.

    ``until`` is the epoch second the bench ends (``None``: failing but not benched).
    ``consecutive_fails`` counts benching failures since the last success, like the seed.
    ``strikes`` counts failed attempts since the last success or bench, from any request:
    enough of them bench the model even while every request is still within its retries.
    """

    until: float | None = None
    consecutive_fails: int = 0
    manual: bool = False
    strikes: int = 0

    def benched_at(self, now: float) -> bool:
        # The seed's rule: benched while not now.After(until), so the exact instant counts.
        return self.until is not None and now <= self.until


@dataclass(frozen=True, slots=True)
class BenchedModel:
    """A snapshot of one benched model."""

    model: str
    until: datetime
    consecutive_fails: int
    manual: bool


Update = Callable[["HealthRecord | None"], "HealthRecord | None"]


class HealthStore(Protocol):
    """Where health records live. Every method is atomic with respect to the others."""

    def get(self, key: str) -> HealthRecord | None: ...

    def update(self, key: str, fn: Update) -> HealthRecord | None:
        """Replace the record with ``fn(record)`` atomically (``None`` deletes); return it."""
        ...

    def items(self) -> list[tuple[str, HealthRecord]]: ...

    def clear(self) -> None: ...


class MemoryHealthStore:
    """The in-process store: a dict behind a lock, never held across a model call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, HealthRecord] = {}

    def get(self, key: str) -> HealthRecord | None:
        with self._lock:
            return self._records.get(key)

    def update(self, key: str, fn: Update) -> HealthRecord | None:
        with self._lock:
            new = fn(self._records.get(key))
            if new is None:
                self._records.pop(key, None)
            else:
                self._records[key] = new
            return new

    def items(self) -> list[tuple[str, HealthRecord]]:
        with self._lock:
            return list(self._records.items())

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def _to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _to_epoch(until: datetime | timedelta, now: float) -> float:
    if isinstance(until, timedelta):
        return now + until.total_seconds()
    if not isinstance(until, datetime):
        raise TypeError(f"until must be a datetime or timedelta, got {type(until).__name__}")
    if until.tzinfo is None or until.utcoffset() is None:
        raise ValueError(
            f"until must be timezone-aware (got naive {until.isoformat()}); "
            "use datetime.now(timezone.utc) + timedelta(...)"
        )
    return until.timestamp()


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"a model key must be a non-empty string, got {key!r}")
    return key.strip()


class HealthRegistry:
    """Bench state for model keys, over a store, with an injectable clock."""

    def __init__(self, store: HealthStore | None = None, clock: Clock = time.time) -> None:
        self.store: HealthStore = store if store is not None else MemoryHealthStore()
        self.clock = clock

    # -- reading ------------------------------------------------------------------------

    def _live(self, key: str, now: float) -> HealthRecord | None:
        """The record if it is a bench in force; prunes an expired bench."""
        record = self.store.get(key)
        if record is None or record.until is None:
            return None
        if record.benched_at(now):
            return record

        def prune(current: HealthRecord | None) -> HealthRecord | None:
            if current is not None and current.until is not None and not current.benched_at(now):
                return None
            return current

        self.store.update(key, prune)
        return None

    def is_benched(self, key: str) -> bool:
        """Whether ``key`` is benched now. An expired bench reads false and is pruned."""
        return self._live(key, self.clock()) is not None

    def benched_until(self, key: str) -> datetime | None:
        """When the bench on ``key`` ends, or ``None`` when it is not benched."""
        record = self._live(key, self.clock())
        return None if record is None or record.until is None else _to_datetime(record.until)

    def list(self) -> list[BenchedModel]:
        """A snapshot of every benched model, sorted by key; expired benches are pruned."""
        now = self.clock()
        out: list[BenchedModel] = []
        for key, record in self.store.items():
            if record.until is None:
                continue
            if self._live(key, now) is None:
                continue
            out.append(
                BenchedModel(
                    model=key,
                    until=_to_datetime(record.until),
                    consecutive_fails=record.consecutive_fails,
                    manual=record.manual,
                )
            )
        return sorted(out, key=lambda b: b.model)

    # -- writing ------------------------------------------------------------------------

    def record_success(self, key: str) -> None:
        """A call succeeded: forget every failure of ``key``."""
        self.store.update(key, lambda _: None)

    def record_failure(
        self, key: str, cooldown: timedelta, *, exhausted: bool, strike_limit: int
    ) -> datetime | None:
        """A transient failure of one attempt; returns the bench's end if it benched.

        It benches when the caller has exhausted its retries (the seed's rule, threshold 1)
        or when ``strike_limit`` failed attempts from any requests came in with no success
        between them, so a burst of concurrent requests does not each spend its retries.
        """
        now = self.clock()

        def fail(record: HealthRecord | None) -> HealthRecord:
            record = record or HealthRecord()
            benched = record.benched_at(now)
            if benched and not exhausted:
                return record  # benched meanwhile by someone else: keep their bench
            strikes = record.strikes + 1
            if exhausted or strikes >= strike_limit:
                until = now + cooldown.total_seconds()
                if benched and record.until is not None:
                    until = max(until, record.until)  # never shorten a bench in force
                return HealthRecord(
                    until=until,
                    consecutive_fails=record.consecutive_fails + 1,
                    manual=record.manual and benched,
                    strikes=0,
                )
            return dataclasses.replace(record, until=None, strikes=strikes)

        new = self.store.update(key, fail)
        if new is not None and new.until is not None and new.benched_at(now):
            return _to_datetime(new.until)
        return None

    def bench_now(self, key: str, cooldown: timedelta) -> datetime:
        """Bench at once (auth/model-dead); returns when the bench ends."""
        now = self.clock()
        until = now + cooldown.total_seconds()

        def bench(record: HealthRecord | None) -> HealthRecord:
            record = record or HealthRecord()
            if record.manual and record.benched_at(now) and record.until is not None:
                until_kept = max(record.until, until)
                return dataclasses.replace(record, until=until_kept)
            return HealthRecord(
                until=until, consecutive_fails=record.consecutive_fails + 1, manual=False
            )

        new = self.store.update(key, bench)
        assert new is not None and new.until is not None
        return _to_datetime(new.until)

    def bench(self, key: str, until: datetime | timedelta) -> datetime:
        """Bench ``key`` by hand until ``until`` (an aware datetime, or a duration from now)."""
        key = _check_key(key)
        now = self.clock()
        end = _to_epoch(until, now)

        def bench(record: HealthRecord | None) -> HealthRecord:
            fails = record.consecutive_fails if record is not None else 0
            return HealthRecord(until=end, consecutive_fails=fails, manual=True)

        self.store.update(key, bench)
        return _to_datetime(end)

    def unbench(self, key: str) -> bool:
        """Clear ``key``'s state; says whether it was benched (an expired bench was not)."""
        now = self.clock()
        was: list[bool] = []

        def clear(record: HealthRecord | None) -> None:
            was.append(record is not None and record.benched_at(now))
            return None

        self.store.update(key, clear)
        return bool(was and was[0])

    def reset(self) -> None:
        """Forget everything (tests, or an operator starting over)."""
        self.store.clear()

    def __iter__(self) -> Iterator[BenchedModel]:
        return iter(self.list())


_registry_lock = threading.Lock()
_registry = HealthRegistry()


def get_health_registry() -> HealthRegistry:
    """The process-wide registry every chain uses unless given its own."""
    with _registry_lock:
        return _registry


def set_health_registry(registry: HealthRegistry) -> HealthRegistry:
    """Replace the process-wide registry (e.g. one over a shared store); returns the old one."""
    global _registry
    if not isinstance(registry, HealthRegistry):
        raise TypeError(f"expected a HealthRegistry, got {type(registry).__name__}")
    with _registry_lock:
        old, _registry = _registry, registry
    return old


def list_benched() -> list[BenchedModel]:
    """Every model benched in this process right now."""
    return get_health_registry().list()


def bench_model(spec: str, until: datetime | timedelta) -> datetime:
    """Bench a model by hand (an operator's incident switch); returns the end."""
    return get_health_registry().bench(spec, until)


def unbench_model(spec: str) -> bool:
    """Bring a model back early; says whether it was benched."""
    return get_health_registry().unbench(_check_key(spec))


def is_benched(spec: str) -> bool:
    """Whether a model is benched right now (expired benches read false)."""
    return get_health_registry().is_benched(spec)
