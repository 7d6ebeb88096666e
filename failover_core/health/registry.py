"""The health registry: which models are benched, and the rules that decide it.

The registry holds the rules (expiry, thresholds, cooldowns, probes, manual benches); a
:class:`~failover_core.health.records.HealthStore` only keeps records and applies updates
atomically, so a store shared by a fleet (Redis) can replace the in-memory one without
touching the flow. The process-wide registry, and which store backs it, is chosen in
:mod:`failover_core.health.default`.

Times are epoch seconds of the *store's* clock: a bench must mean the same instant to
every process that shares a store, whatever the hosts' clocks say. A store that offers a
``time()`` method (Redis: ``TIME``) sets the registry's clock offset; otherwise the
injectable local clock is used as is. Expiry is derived when read; nothing runs on a timer.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, MutableSequence, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Literal

from ..config.durations import MAX_DURATION, as_duration, describe_seconds
from .memory import MemoryHealthStore
from .records import BenchedModel, HealthRecord, HealthStore, Update, is_time, sane

if TYPE_CHECKING:
    from ..flow.hedging import FleetTally

__all__ = ["Clock", "Entry", "HealthRegistry", "Until", "check_key"]

Clock = Callable[[], float]
_STRIKE_TIMES = 32  # strike times kept per record (the count goes on beyond them)


def _to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


Until = datetime | timedelta | float | str
"""When a manual bench ends: an aware datetime, or a duration from now (seconds, a
timedelta, or a string such as ``"30m"``)."""


def _to_epoch(until: Until, now: float, local_now: float) -> float:
    if not isinstance(until, datetime):
        return now + as_duration(until, "until").total_seconds()
    if until.tzinfo is None or until.utcoffset() is None:
        raise ValueError(
            f"until must be timezone-aware (got naive {until.isoformat()}); "
            "use datetime.now(timezone.utc) + timedelta(...)"
        )
    # An instant is given in the host's clock; the store keeps the store's.
    ahead = until.timestamp() - local_now
    limit = MAX_DURATION.total_seconds()
    if ahead > limit:
        raise ValueError(
            f"until must be at most {describe_seconds(limit)} from now, "
            f"got {describe_seconds(ahead)} from now"
        )
    return now + ahead


def check_key(key: str) -> str:
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

    Over a store with its own clock (Redis), ``clock`` is only read between syncs: the
    store's clock is asked every ``time_sync`` seconds and every record is kept in it.
    """

    def __init__(
        self,
        store: HealthStore | None = None,
        clock: Clock = time.time,
        *,
        probe: bool = True,
        probe_lease: float | timedelta | str = 30.0,
        cooldown_growth: float = 2.0,
        max_cooldown: timedelta | float | str = timedelta(hours=1),
        time_sync: float = 60.0,
    ) -> None:
        if not (isinstance(cooldown_growth, (int, float)) and 1 <= cooldown_growth < math.inf):
            raise ValueError(f"cooldown_growth must be at least 1, got {cooldown_growth}")
        self.store: HealthStore = store if store is not None else MemoryHealthStore()
        self.clock = clock
        self.probe = probe
        self.probe_lease = as_duration(probe_lease, "probe_lease", positive=True).total_seconds()
        self.cooldown_growth = cooldown_growth
        self.max_cooldown = as_duration(max_cooldown, "max_cooldown").total_seconds()
        self.time_sync = time_sync
        self._offset = 0.0  # the store's clock minus ours
        self._synced_at: float | None = None

    @property
    def hedge_tally(self) -> FleetTally | None:
        """The store's fleet-wide hedge counts (a shared store's), else ``None``."""
        tally: FleetTally | None = getattr(self.store, "hedge_tally", None)
        return tally

    # -- time ---------------------------------------------------------------------------

    def now(self) -> float:
        """The current time in the store's clock (epoch seconds).

        A store with a ``time()`` method is asked for its clock at most once every
        ``time_sync`` seconds; between asks, and while it does not answer, the last offset
        is applied to the local clock. So a worker whose clock is minutes off still reads
        and writes benches in the same instants as every other worker.
        """
        return self._store_time(self.clock())

    def _store_time(self, local: float) -> float:
        """``local`` (a reading of our clock) in the store's clock."""
        store_time = getattr(self.store, "time", None)
        if store_time is None:
            return local
        synced = self._synced_at
        if synced is None or not (0 <= local - synced < self.time_sync):
            self._synced_at = local  # first, so a silent store is not asked on every call
            try:
                theirs = store_time()
            except Exception:  # a bare store failing: keep the last offset
                theirs = None
            if theirs is not None and is_time(theirs):
                self._offset = float(theirs) - (local + self.clock()) / 2
        return local + self._offset

    def _get(self, key: str) -> HealthRecord | None:
        return sane(key, self.store.get(key))

    # -- reading ------------------------------------------------------------------------

    def _live(self, key: str, now: float) -> HealthRecord | None:
        """The record if it is a bench in force. Without probing, prunes an expired bench."""
        record = self._get(key)
        if record is None or record.until is None:
            return None
        if record.benched_at(now):
            return record
        # Without probing an expired bench is forgotten at once (the seed's rule); with it,
        # the record is kept for the probe, and its cooldown remembered, for max_cooldown.
        if not self.probe or now > record.until + self.max_cooldown:

            def prune(current: HealthRecord | None) -> HealthRecord | None:
                current = sane(key, current)
                if current is not None and current.recovering_at(now):
                    return None
                return current

            self.store.update(key, prune)
        return None

    def is_benched(self, key: str) -> bool:
        """Whether ``key`` is benched now. An expired bench reads false."""
        return self._live(key, self.now()) is not None

    def bench_length(self, key: str) -> timedelta | None:
        """The length of the bench on ``key`` as it was applied (after any growth), or
        ``None`` when it is not benched."""
        record = self._live(key, self.now())
        if record is None or record.cooldown <= 0:
            return None
        return timedelta(seconds=record.cooldown)

    def benched_until(self, key: str) -> datetime | None:
        """When the bench on ``key`` ends, or ``None`` when it is not benched."""
        record = self._live(key, self.now())
        return None if record is None or record.until is None else _to_datetime(record.until)

    def list(self) -> list[BenchedModel]:
        """A snapshot of every benched model, sorted by key (expired benches left out)."""
        now = self.now()
        out: list[BenchedModel] = []
        for key, stored in self.store.items():
            record = sane(key, stored)
            if record is None or record.until is None or self._live(key, now) is None:
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

    def _claim(self, key: str, now: float, answer: MutableSequence[Entry]) -> Update:
        """The update that takes ``key``'s probe lease if it is free (noting the answer)."""

        def claim(current: HealthRecord | None) -> HealthRecord | None:
            current = sane(key, current)
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

        return claim

    def enter(self, key: str) -> Entry:
        """May a request call ``key`` now? ``"probe"`` means it is the one probing it.

        Atomic in the store, so across threads, processes and (with a shared store) hosts,
        one request at a time holds the probe lease of a recovering model. A store that
        must not wait (on an event loop) hands the claim to a thread and gives the lease to
        the next request that asks (:meth:`prepare` makes that the request about to start).
        """
        now = self.now()
        record = self._get(key)
        if record is None or record.until is None:
            return "open"
        if record.benched_at(now):
            return "closed"
        if not self.probe:
            self._live(key, now)
            return "open"
        answer: list[Entry] = []
        claim = self._claim(key, now, answer)
        claim_later = getattr(self.store, "claim_later", None)
        if claim_later is not None:  # on an event loop: claimed by the store's writer thread
            held = claim_later(key, claim)
            if held is not None:
                return "probe" if held else "closed"
        self.store.update(key, claim)
        return answer[-1] if answer else "open"  # the last run: a store may retry fn

    async def prepare(self, keys: Sequence[str]) -> None:
        """Async drivers await this before a request starts: the probe lease of a model
        whose bench has ended is claimed without blocking the loop (in the store's thread),
        so that this request, the next to :meth:`enter` it, is the one that probes. With a
        store that answers at once, or nothing recovering, it does nothing."""
        claim_ahead = getattr(self.store, "claim_ahead", None)
        if claim_ahead is None or not self.probe:
            return
        now = self.now()
        for key in keys:  # in the order the flow enters them: up to the first it would call
            record = self._get(key)
            if record is None or record.until is None:
                return  # open: the request starts there
            if record.benched_at(now):
                continue
            if await claim_ahead(key, self._claim(key, now, [])):
                return  # leased to this process: this request probes it
            # someone else is probing it: the request will pass it by

    # -- writing ------------------------------------------------------------------------

    def record_success(self, key: str, *, started: float | None = None) -> None:
        """A call that started at ``started`` (store time, default now) succeeded.

        It is evidence about the failures recorded before it started, so it clears those
        (a probe's success clears the model for all). It clears neither a bench made while
        it was in flight nor a manual bench in force, and with nothing to clear it writes
        nothing: the common case is one read.
        """
        now = self.now()
        since = now if started is None else started
        record = self._get(key)
        if record is None or _cleared(record, since, now) is record:
            return
        self.store.update(key, lambda current: _cleared(sane(key, current), since, now))

    def release_probe(self, key: str) -> None:
        """Give up a probe lease without a verdict (the error said nothing of the model,
        or the caller cancelled)."""
        now = self.now()

        def release(current: HealthRecord | None) -> HealthRecord | None:
            current = sane(key, current)
            if current is not None and current.recovering_at(now):
                return dataclasses.replace(current, probe_until=None)
            return current

        self.store.update(key, release)

    def _benched(
        self, record: HealthRecord, now: float, cooldown: timedelta, cap: timedelta | None
    ) -> HealthRecord:
        """``record`` benched again: a failed probe grows the cooldown (up to ``cap``, else
        ``max_cooldown``), a bench in force is never shortened, a manual bench in force
        stays manual."""
        in_force = record.benched_at(now)
        seconds = cooldown.total_seconds()
        if record.recovering_at(now) and record.cooldown > 0:
            limit = self.max_cooldown if cap is None else cap.total_seconds()
            limit = max(limit, seconds)
            seconds = min(max(seconds, record.cooldown * self.cooldown_growth), limit)
        until = now + seconds
        if in_force and record.until is not None:
            until = max(until, record.until)
        return HealthRecord(
            until=until,
            consecutive_fails=record.consecutive_fails + 1,
            manual=record.manual and in_force,
            strikes=0,
            cooldown=seconds,
            benched_since=now,
        )

    def record_failure(
        self,
        key: str,
        cooldown: timedelta,
        *,
        exhausted: bool,
        strike_limit: int,
        cap: timedelta | None = None,
    ) -> datetime | None:
        """A transient failure of one attempt; returns the bench's end if it benched.

        It benches when the caller has exhausted its retries (the seed's rule, threshold 1)
        or when ``strike_limit`` failed attempts from any requests came in with no success
        between them, so a burst of concurrent requests does not each spend its retries.
        A bench lasts ``cooldown``; after a failed probe, the last one times
        ``cooldown_growth``, up to ``cap`` (default ``max_cooldown``).
        """
        now = self.now()

        def fail(record: HealthRecord | None) -> HealthRecord:
            record = sane(key, record) or HealthRecord()
            if record.benched_at(now) and not exhausted:
                return record  # benched meanwhile by someone else: keep their bench
            strikes = record.strikes + 1
            if exhausted or strikes >= strike_limit:
                return self._benched(record, now, cooldown, cap)
            times = (*record.strike_times, now)[-_STRIKE_TIMES:]
            return dataclasses.replace(record, strikes=strikes, strike_times=times)

        new = self.store.update(key, fail)
        if new is not None and new.until is not None and new.benched_at(now):
            return _to_datetime(new.until)
        return None

    def bench_now(self, key: str, cooldown: timedelta, *, cap: timedelta | None = None) -> datetime:
        """Bench at once (auth/model-dead); returns when the bench ends."""
        now = self.now()
        new = self.store.update(
            key, lambda r: self._benched(sane(key, r) or HealthRecord(), now, cooldown, cap)
        )
        assert new is not None and new.until is not None
        return _to_datetime(new.until)

    def bench(self, key: str, until: Until) -> datetime:
        """Bench ``key`` by hand until ``until``: an aware datetime, or a duration from now
        (seconds, a timedelta, or a string such as ``"30m"``), at most ten years."""
        key = check_key(key)
        local = self.clock()
        now = self._store_time(local)
        end = _to_epoch(until, now, local)

        def bench(record: HealthRecord | None) -> HealthRecord:
            record = sane(key, record) or HealthRecord()
            return HealthRecord(
                until=end,
                consecutive_fails=record.consecutive_fails,
                manual=True,
                cooldown=record.cooldown,
                benched_since=now,
            )

        self.store.update(key, bench)
        return _to_datetime(end)

    def unbench(self, key: str) -> bool:
        """Clear ``key``'s state; says whether it was benched (an expired bench was not)."""
        now = self.now()
        was: list[bool] = []

        def clear(record: HealthRecord | None) -> None:
            record = sane(key, record)
            was.append(record is not None and record.benched_at(now))
            return None

        self.store.update(key, clear)
        return bool(was and was[-1])  # the last run: a store may retry fn

    def reset(self) -> None:
        """Forget everything (tests, or an operator starting over)."""
        self.store.clear()

    def __iter__(self) -> Iterator[BenchedModel]:
        return iter(self.list())


def _cleared(record: HealthRecord | None, started: float, now: float) -> HealthRecord | None:
    """``record`` after a success whose attempt started at ``started``: the failures
    recorded before that are gone; a later bench, a manual bench in force, and strikes
    that came in after it stay. Returns ``record`` itself when nothing changes."""
    if record is None:
        return None
    keep_bench = record.until is not None and (
        (record.benched_since is not None and record.benched_since > started)
        or (record.manual and record.benched_at(now))
    )
    newer = tuple(t for t in record.strike_times if t > started)
    strikes = len(newer) if len(newer) < len(record.strike_times) else record.strikes
    if keep_bench:
        if strikes == record.strikes:
            return record
        return dataclasses.replace(record, strikes=strikes, strike_times=newer)
    if strikes == 0:
        return None
    if record.until is None and strikes == record.strikes:
        return record
    return HealthRecord(strikes=strikes, strike_times=newer)
