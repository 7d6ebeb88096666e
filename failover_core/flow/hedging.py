"""Hedging policy, pure and synchronous: when to hedge, and how many hedges to allow.

A hedge starts the next healthy model beside an attempt that has produced no output after
a delay; the first to produce output wins. The delay is fixed (``hedge_after=0.8``) or
adaptive (``hedge_after="p95"``): a percentile of the model's own recent times to first
output, kept per model by a :class:`LatencyTracker`. A :class:`HedgeBudget` allows a
burst of hedges to a quiet process and caps a busy one at a share of its requests, so
hedging cannot double the load on a provider that is slow because it is overloaded. Both
are per process and read an injectable clock; the flow consults them, the drivers race.
With a fleet-wide health store (Redis), the budget also counts the rest of the fleet's
requests and hedges through the store's :class:`FleetTally`, so the share holds for the
fleet, not for each worker.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from ..config.durations import as_duration

__all__ = [
    "AdaptiveHedge",
    "FleetTally",
    "HedgeAfter",
    "HedgeBudget",
    "HedgeNotice",
    "Hedging",
    "LatencyTracker",
    "as_hedge_after",
    "get_hedge_budget",
    "get_hedging",
    "reset_hedging",
    "set_hedge_budget",
    "set_hedging",
]


@dataclass(frozen=True, slots=True)
class AdaptiveHedge:
    """Hedge after the ``percentile`` of the model's recent times to first output.

    Never sooner than ``floor`` seconds; no hedge at all until the model has
    ``min_samples`` recent samples (a cold model's percentile would be noise). ``"p95"``
    means ``AdaptiveHedge(95.0)``.
    """

    percentile: float = 95.0
    floor: float = 0.1
    min_samples: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.percentile < 100:
            raise ValueError(f"a hedge percentile must be in (0, 100), got {self.percentile}")
        if math.isnan(self.floor) or self.floor < 0:
            raise ValueError(f"a hedge floor must not be negative, got {self.floor}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")


HedgeAfter = float | AdaptiveHedge
"""A chain's hedge delay once validated: seconds, or adaptive."""

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def as_hedge_after(value: object) -> HedgeAfter | None:
    """Validate a ``hedge_after`` option: seconds, a timedelta, ``"p95"``-style, an
    :class:`AdaptiveHedge`, or ``None`` (no hedging)."""
    if value is None or isinstance(value, AdaptiveHedge):
        return value
    if isinstance(value, str):
        match = _PERCENTILE.match(value.strip().lower())
        if match is None:
            raise ValueError(f"hedge_after must look like 'p95' when a string, got {value!r}")
        return AdaptiveHedge(float(match.group(1)))
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
        raise TypeError(f"hedge_after must be seconds, a timedelta, 'p95' or None, got {value!r}")
    # The library's one duration rule: positive, finite, at most MAX_DURATION (an int
    # too large for a float, 10**400, is refused like any other, not an OverflowError).
    return as_duration(value, "hedge_after", positive=True).total_seconds()


class HedgeNotice(Exception):
    """Never raised: the ``error`` of a hedge's :class:`~failover_core.FailoverEvent`, saying
    why it happened (an attempt gave no output within the hedge delay)."""


class LatencyTracker:
    """Recent times to first output, per model key (a ring of ``size`` samples each).

    Calls and streams are kept apart: a call's first output is its whole answer.
    Thread-safe; a sample costs an append.
    """

    def __init__(self, size: int = 500) -> None:
        if size < 1:
            raise ValueError(f"a latency window needs at least one sample, got {size}")
        self.size = size
        self._lock = threading.Lock()
        self._samples: dict[tuple[str, bool], deque[float]] = {}

    def record(self, key: str, streamed: bool, seconds: float) -> None:
        with self._lock:
            ring = self._samples.get((key, streamed))
            if ring is None:
                ring = self._samples[(key, streamed)] = deque(maxlen=self.size)
            ring.append(seconds)

    def count(self, key: str, streamed: bool) -> int:
        with self._lock:
            return len(self._samples.get((key, streamed), ()))

    def percentile(self, key: str, streamed: bool, q: float, min_samples: int) -> float | None:
        """The ``q``-th percentile (nearest rank) of the samples, or ``None`` with fewer
        than ``min_samples``."""
        with self._lock:
            ring = self._samples.get((key, streamed))
            if ring is None or len(ring) < min_samples:
                return None
            ordered = sorted(ring)
        rank = max(math.ceil(q / 100 * len(ordered)), 1)
        return ordered[rank - 1]

    def delay(self, key: str, streamed: bool, hedge: AdaptiveHedge) -> float | None:
        """The adaptive hedge delay for ``key`` now, or ``None`` while it is cold."""
        value = self.percentile(key, streamed, hedge.percentile, hedge.min_samples)
        return None if value is None else max(value, hedge.floor)


class FleetTally(Protocol):
    """Where a shared health store keeps the fleet's hedge budget counts.

    Both methods answer from memory (they run on the request path, on event loops too);
    the store exchanges the counts with the rest of the fleet in the background.
    """

    def add(self, window: float, requests: int, hedges: int) -> None:
        """Count this process's requests and hedges for budgets of ``window`` seconds."""
        ...

    def others(self, window: float) -> tuple[int, int] | None:
        """The rest of the fleet's (requests, hedges) over the last ``window`` seconds as
        last heard, or ``None`` when that is too old to go by (the store is away)."""
        ...


class HedgeBudget:
    """Hedges allowed: a burst for a quiet process, at most ``share`` of requests when busy.

    Two rules, both must allow a hedge (each counts only requests that could hedge: their
    chain has ``hedge_after``):

    * a token bucket, as gRPC's retry throttling: it starts full with ``burst`` tokens,
      each request adds ``share`` of a token (never above ``burst``), each hedge takes one.
      A quiet process (a notebook, the first minute after a deploy) can hedge its first
      ``burst`` slow requests; over any stretch, hedges are at most ``burst`` plus ``share``
      of the requests;
    * a sliding window of ``window`` seconds: at most ``max(burst, share * requests)``
      hedges in it, so a busy process (or fleet) stays within ``share`` of its traffic.

    Given a :class:`FleetTally` (the flow passes the health store's), the window counts
    the whole fleet's requests and hedges, so the share (and the burst) hold for the fleet;
    while the tally has nothing recent, this process's alone. Counts live in ten buckets
    across the window: memory stays flat at any request rate.
    """

    BUCKETS = 10

    def __init__(
        self,
        share: float = 0.1,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        burst: float = 10.0,
    ) -> None:
        if not 0 <= share <= 1:
            raise ValueError(f"a hedge share must be in [0, 1], got {share}")
        if not window > 0:
            raise ValueError(f"a hedge window must be positive, got {window}")
        if not 0 <= burst < math.inf:
            raise ValueError(f"a hedge burst must be a finite number >= 0, got {burst}")
        self.share, self.window, self.clock, self.burst = share, window, clock, burst
        self._lock = threading.Lock()
        self._buckets: deque[list[float]] = deque()  # [start, requests, hedges]
        self._tokens = float(burst)

    def _bucket(self, now: float) -> list[float]:
        width = self.window / self.BUCKETS
        while self._buckets and self._buckets[0][0] <= now - self.window:
            self._buckets.popleft()
        if not self._buckets or self._buckets[-1][0] + width <= now:
            self._buckets.append([now - (now % width), 0, 0])
        return self._buckets[-1]

    def request(self, fleet: FleetTally | None = None) -> None:
        """A request that could hedge has started: it earns ``share`` of a token."""
        with self._lock:
            self._bucket(self.clock())[1] += 1
            self._tokens = min(self.burst, self._tokens + self.share)
        if fleet is not None:
            fleet.add(self.window, 1, 0)

    def try_hedge(self, fleet: FleetTally | None = None) -> bool:
        """Take a hedge from the budget; False when the bucket or the window's share is spent."""
        if self.share == 0:
            return False
        others = (0, 0) if fleet is None else fleet.others(self.window) or (0, 0)
        with self._lock:
            if self._tokens < 1 - 1e-9:  # tenths of a token add up to 0.999...
                return False
            bucket = self._bucket(self.clock())
            requests = sum(b[1] for b in self._buckets) + others[0]
            hedges = sum(b[2] for b in self._buckets) + others[1]
            if hedges >= max(self.burst, self.share * requests):
                return False
            bucket[2] += 1
            self._tokens = max(self._tokens - 1, 0.0)
        if fleet is not None:
            fleet.add(self.window, 0, 1)
        return True

    def tokens(self) -> float:
        """Hedges the bucket holds now (the window may allow fewer)."""
        with self._lock:
            return self._tokens

    def counts(self) -> tuple[int, int]:
        """(requests, hedges) in the current window."""
        with self._lock:
            self._bucket(self.clock())
            return (int(sum(b[1] for b in self._buckets)), int(sum(b[2] for b in self._buckets)))


@dataclass
class Hedging:
    """The process's hedging state: latencies per model, the budget, and the clock that
    times attempts (monotonic; injectable for tests)."""

    tracker: LatencyTracker
    budget: HedgeBudget
    clock: Callable[[], float] = time.monotonic


_lock = threading.Lock()
_hedging = Hedging(LatencyTracker(), HedgeBudget())


def get_hedging() -> Hedging:
    with _lock:
        return _hedging


def set_hedging(hedging: Hedging) -> Hedging:
    """Install ``hedging`` for the process (tests: a fake clock); returns the old one."""
    global _hedging
    if not isinstance(hedging, Hedging):
        raise TypeError(f"expected a Hedging, got {hedging!r}")
    with _lock:
        old, _hedging = _hedging, hedging
    return old


def get_hedge_budget() -> HedgeBudget:
    """The process-wide hedge budget."""
    return get_hedging().budget


def set_hedge_budget(budget: HedgeBudget) -> HedgeBudget:
    """Replace the process-wide hedge budget (e.g. ``HedgeBudget(share=0.05)``); returns
    the old one. With a fleet-wide health store (Redis), the share is the fleet's."""
    global _hedging
    if not isinstance(budget, HedgeBudget):
        raise TypeError(f"expected a HedgeBudget, got {budget!r}")
    with _lock:
        old = _hedging.budget
        _hedging = Hedging(_hedging.tracker, budget, _hedging.clock)
    return old


def reset_hedging() -> None:
    """Forget what hedging has learnt: every model's recent latencies (so ``"p95"`` learns
    again from its first 20 samples) and the budget's counts; the budget's share and window
    stay. For a fresh start between experiments in one process, e.g. in a notebook."""
    global _hedging
    with _lock:
        old = _hedging
        budget = HedgeBudget(old.budget.share, old.budget.window, old.budget.clock)
        _hedging = Hedging(LatencyTracker(old.tracker.size), budget, old.clock)
