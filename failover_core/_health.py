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
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, Protocol

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
    "set_health_store",
    "unbench_model",
]

Clock = Callable[[], float]


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
    """

    until: float | None = None
    consecutive_fails: int = 0
    manual: bool = False
    strikes: int = 0
    cooldown: float = 0.0
    probe_until: float | None = None

    def benched_at(self, now: float) -> bool:
        # The seed's rule: benched while not now.After(until), so the exact instant counts.
        return self.until is not None and now <= self.until

    def recovering_at(self, now: float) -> bool:
        return self.until is not None and now > self.until


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
        """Replace the record with ``fn(record)`` atomically (``None`` deletes); return it.

        ``fn`` may run more than once (an optimistic store retries it on a conflict), so it
        must be pure apart from noting its latest answer.
        """
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


Entry = Literal["open", "probe", "closed"]
"""What :meth:`HealthRegistry.enter` answers: call it; call it as the one probe; skip it."""


class HealthRegistry:
    """Bench state for model keys, over a store, with an injectable clock.

    When a bench ends, the model is not thrown back to every request at once: the first
    request to reach it takes a probe lease (``probe_lease`` seconds) and is the only one
    to call it, while the others keep using the next models. Success clears the model for
    everyone; failure benches it again for ``cooldown_growth`` times the last cooldown, up
    to ``max_cooldown``. ``probe=False`` restores the seed's behaviour (an expired bench is
    simply forgotten); ``cooldown_growth=1`` keeps every bench at the chain's cooldown.
    """

    def __init__(
        self,
        store: HealthStore | None = None,
        clock: Clock = time.time,
        *,
        probe: bool = True,
        probe_lease: float = 30.0,
        cooldown_growth: float = 2.0,
        max_cooldown: timedelta = timedelta(hours=1),
    ) -> None:
        if probe_lease <= 0:
            raise ValueError(f"probe_lease must be positive, got {probe_lease}")
        if cooldown_growth < 1:
            raise ValueError(f"cooldown_growth must be at least 1, got {cooldown_growth}")
        self.store: HealthStore = store if store is not None else MemoryHealthStore()
        self.clock = clock
        self.probe = probe
        self.probe_lease = probe_lease
        self.cooldown_growth = cooldown_growth
        self.max_cooldown = max_cooldown.total_seconds()

    # -- reading ------------------------------------------------------------------------

    def _live(self, key: str, now: float) -> HealthRecord | None:
        """The record if it is a bench in force. Without probing, prunes an expired bench."""
        record = self.store.get(key)
        if record is None or record.until is None:
            return None
        if record.benched_at(now):
            return record
        # Without probing an expired bench is forgotten at once (the seed's rule); with it,
        # the record is kept for the probe, and its cooldown remembered, for max_cooldown.
        if not self.probe or now > record.until + self.max_cooldown:

            def prune(current: HealthRecord | None) -> HealthRecord | None:
                if current is not None and current.recovering_at(now):
                    return None
                return current

            self.store.update(key, prune)
        return None

    def is_benched(self, key: str) -> bool:
        """Whether ``key`` is benched now. An expired bench reads false."""
        return self._live(key, self.clock()) is not None

    def benched_until(self, key: str) -> datetime | None:
        """When the bench on ``key`` ends, or ``None`` when it is not benched."""
        record = self._live(key, self.clock())
        return None if record is None or record.until is None else _to_datetime(record.until)

    def list(self) -> list[BenchedModel]:
        """A snapshot of every benched model, sorted by key (expired benches left out)."""
        now = self.clock()
        out: list[BenchedModel] = []
        for key, record in self.store.items():
            if record.until is None or self._live(key, now) is None:
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

    def enter(self, key: str) -> Entry:
        """May a request call ``key`` now? ``"probe"`` means it is the one probing it.

        Atomic in the store, so across threads, processes and (with a shared store) hosts,
        one request at a time holds the probe lease of a recovering model.
        """
        now = self.clock()
        record = self.store.get(key)
        if record is None or record.until is None:
            return "open"
        if record.benched_at(now):
            return "closed"
        if not self.probe:
            self._live(key, now)
            return "open"
        answer: list[Entry] = []

        def claim(current: HealthRecord | None) -> HealthRecord | None:
            if current is None or current.until is None:
                answer.append("open")
                return current
            if current.benched_at(now):
                answer.append("closed")
                return current
            if current.probe_until is not None and now <= current.probe_until:
                answer.append("closed")  # someone else is probing it
                return current
            answer.append("probe")
            return dataclasses.replace(current, probe_until=now + self.probe_lease)

        self.store.update(key, claim)
        return answer[-1] if answer else "open"  # the last run: a store may retry fn

    # -- writing ------------------------------------------------------------------------

    def record_success(self, key: str) -> None:
        """A call succeeded: forget every failure of ``key`` (a probe clears it for all)."""
        self.store.update(key, lambda _: None)

    def release_probe(self, key: str) -> None:
        """Give up a probe lease without a verdict (the error said nothing of the model)."""
        now = self.clock()

        def release(current: HealthRecord | None) -> HealthRecord | None:
            if current is not None and current.recovering_at(now):
                return dataclasses.replace(current, probe_until=None)
            return current

        self.store.update(key, release)

    def _benched(self, record: HealthRecord, now: float, cooldown: timedelta) -> HealthRecord:
        """``record`` benched again: a failed probe grows the cooldown, a bench in force is
        never shortened, a manual bench in force stays manual."""
        in_force = record.benched_at(now)
        seconds = cooldown.total_seconds()
        if record.recovering_at(now) and record.cooldown > 0:
            cap = max(self.max_cooldown, seconds)
            seconds = min(max(seconds, record.cooldown * self.cooldown_growth), cap)
        until = now + seconds
        if in_force and record.until is not None:
            until = max(until, record.until)
        return HealthRecord(
            until=until,
            consecutive_fails=record.consecutive_fails + 1,
            manual=record.manual and in_force,
            strikes=0,
            cooldown=seconds,
        )

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
            if record.benched_at(now) and not exhausted:
                return record  # benched meanwhile by someone else: keep their bench
            strikes = record.strikes + 1
            if exhausted or strikes >= strike_limit:
                return self._benched(record, now, cooldown)
            return dataclasses.replace(record, strikes=strikes)

        new = self.store.update(key, fail)
        if new is not None and new.until is not None and new.benched_at(now):
            return _to_datetime(new.until)
        return None

    def bench_now(self, key: str, cooldown: timedelta) -> datetime:
        """Bench at once (auth/model-dead); returns when the bench ends."""
        now = self.clock()
        new = self.store.update(key, lambda r: self._benched(r or HealthRecord(), now, cooldown))
        assert new is not None and new.until is not None
        return _to_datetime(new.until)

    def bench(self, key: str, until: datetime | timedelta) -> datetime:
        """Bench ``key`` by hand until ``until`` (an aware datetime, or a duration from now)."""
        key = _check_key(key)
        now = self.clock()
        end = _to_epoch(until, now)

        def bench(record: HealthRecord | None) -> HealthRecord:
            record = record or HealthRecord()
            return HealthRecord(
                until=end,
                consecutive_fails=record.consecutive_fails,
                manual=True,
                cooldown=record.cooldown,
            )

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
        return bool(was and was[-1])  # the last run: a store may retry fn

    def reset(self) -> None:
        """Forget everything (tests, or an operator starting over)."""
        self.store.clear()

    def __iter__(self) -> Iterator[BenchedModel]:
        return iter(self.list())


REDIS_URL_ENV = "LLM_FAILOVER_REDIS_URL"
"""When set, the process-wide registry keeps its health in that Redis (fail-open)."""

_registry_lock = threading.Lock()
_registry: HealthRegistry | None = None


def _from_environment() -> HealthRegistry:
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return HealthRegistry()
    try:
        from ._failopen import FailOpenStore
        from .redis_store import RedisHealthStore
    except ImportError:
        warnings.warn(
            f"{REDIS_URL_ENV} is set but the redis package is missing "
            "(pip install 'llm-failover[redis]'); health stays in-process",
            RuntimeWarning,
            stacklevel=3,
        )
        return HealthRegistry()
    try:
        store = RedisHealthStore.from_url(url)
    except Exception as exc:  # a malformed URL must not fail every request
        warnings.warn(
            f"{REDIS_URL_ENV} could not be used ({type(exc).__name__}: {exc}); "
            "health stays in-process",
            RuntimeWarning,
            stacklevel=3,
        )
        return HealthRegistry()
    return HealthRegistry(FailOpenStore(store))


def get_health_registry() -> HealthRegistry:
    """The process-wide registry every chain uses unless given its own.

    Built on first use: in-process, or on Redis when ``LLM_FAILOVER_REDIS_URL`` is set.
    """
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = _from_environment()
        return _registry


def set_health_registry(registry: HealthRegistry) -> HealthRegistry:
    """Replace the process-wide registry (e.g. one over a shared store); returns the old one."""
    global _registry
    if not isinstance(registry, HealthRegistry):
        raise TypeError(f"expected a HealthRegistry, got {type(registry).__name__}")
    old = get_health_registry()
    with _registry_lock:
        _registry = registry
    return old


def set_health_store(store: HealthStore, *, fail_open: bool = True) -> HealthRegistry:
    """Keep the process-wide health in ``store`` (a Redis store, for a fleet).

    With ``fail_open`` (the default) the store is wrapped in a
    :class:`~failover_core.FailOpenStore`, so its outages never reach a request. Returns
    the new registry.
    """
    if fail_open:
        from ._failopen import FailOpenStore

        store = FailOpenStore(store)
    registry = HealthRegistry(store)
    set_health_registry(registry)
    return registry


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
