"""The hedge budget's counts, shared by every process on one Redis."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

import redis

from ...flow.hedging import HedgeBudget

__all__ = ["HedgeTally"]


class HedgeTally:
    """The hedge budget's counts, shared by every process on one Redis (a FleetTally).

    Requests and hedges are counted in the process (a lock and a dict: no I/O on the
    request path, loops included) by bucket of the store's clock, ten to a budget's window.
    Every ``every`` seconds the store's writer thread adds them to Redis (``HINCRBY`` of
    this process's own fields in a hash per bucket, ``prefix + "<width ms>:<bucket>"``,
    expiring after the window) and reads every process's fields back in the same round
    trip. A budget asks :meth:`others`: the rest of the fleet's counts in its window as last
    read, or ``None`` when the last reading is more than ``stale_after`` seconds old (Redis
    away): the budget then goes by this process alone. Counts a restarted Redis lost are
    simply gone: nothing is subtracted that is no longer there.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        clock: Callable[[], float],
        *,
        every: float = 1.0,
        stale_after: float = 5.0,
    ) -> None:
        self.client, self.prefix, self.clock = client, prefix, clock
        self.every, self.stale_after = every, stale_after
        self._lock = threading.Lock()
        self._windows: dict[float, float] = {}  # window -> when last used (monotonic)
        self._me = os.urandom(6).hex()  # this process's fields (a new one after a fork)
        self._pending: dict[tuple[float, int], list[int]] = {}  # not sent yet
        self._fleet: dict[tuple[float, int], tuple[int, int]] = {}  # the others', last read
        self._read_at: float | None = None  # when (monotonic)
        self._read: set[float] = set()  # the windows it read
        self._due = 0.0

    def _in_window(self, window: float) -> range:
        """The buckets of the last ``window`` seconds, by the store's clock."""
        last = math.floor(self.clock() / (window / HedgeBudget.BUCKETS))
        return range(last - HedgeBudget.BUCKETS + 1, last + 1)

    def add(self, window: float, requests: int, hedges: int) -> None:
        bucket = self._in_window(window)[-1]
        with self._lock:
            self._windows[window] = time.monotonic()
            self._count((window, bucket), requests, hedges)

    def _count(self, key: tuple[float, int], requests: int, hedges: int) -> None:
        """Add to the counts not sent yet (under the lock)."""
        counts = self._pending.setdefault(key, [0, 0])
        counts[0] += requests
        counts[1] += hedges

    def others(self, window: float) -> tuple[int, int] | None:
        buckets = self._in_window(window)
        with self._lock:
            self._windows[window] = time.monotonic()  # read from the next exchange on
            read_at = self._read_at
            if window not in self._read or read_at is None:
                return None  # not read yet, for this window
            if time.monotonic() - read_at > self.stale_after:
                return None
            requests = hedges = 0
            for bucket in buckets:
                theirs = self._fleet.get((window, bucket), (0, 0))
                requests += theirs[0]
                hedges += theirs[1]
            return requests, hedges

    def _name(self, window: float, bucket: int) -> str:
        return f"{self.prefix}{round(window * 1000)}:{bucket}"

    def _theirs(self, fields: dict[bytes, bytes]) -> tuple[int, int]:
        """The other processes' (requests, hedges) in one bucket's hash."""
        counts = {"r": 0, "h": 0}
        for name, value in fields.items():
            kind, _, who = name.decode(errors="replace").partition(":")
            if kind in counts and who != self._me and value.isdigit():
                counts[kind] += int(value)
        return counts["r"], counts["h"]

    def due(self) -> bool:
        """Whether a budget uses the tally and the last exchange is ``every`` seconds old."""
        return bool(self._windows) and time.monotonic() >= self._due

    def exchange(self) -> None:
        """Send this process's new counts and read the fleet's, in one round trip."""
        now = time.monotonic()
        self._due = now + self.every
        with self._lock:
            for window, used in list(self._windows.items()):
                if now - used > 2 * window:  # no budget of that window asked lately
                    del self._windows[window]
            windows = list(self._windows)
            sent, self._pending = self._pending, {}
        current = {window: self._in_window(window) for window in windows}
        sent = {(w, b): c for (w, b), c in sent.items() if w in current and b in current[w]}
        pipe = self.client.pipeline(transaction=False)
        for (window, bucket), (requests, hedges) in sent.items():
            name = self._name(window, bucket)
            pipe.hincrby(name, "r:" + self._me, requests)
            pipe.hincrby(name, "h:" + self._me, hedges)
            pipe.expire(name, math.ceil(window * 2))
        reads = [(window, bucket) for window, buckets in current.items() for bucket in buckets]
        for window, bucket in reads:
            pipe.hgetall(self._name(window, bucket))
        try:
            replies = pipe.execute()
        except Exception:
            with self._lock:  # not sent: counted again next time
                for key, (requests, hedges) in sent.items():
                    self._count(key, requests, hedges)
            raise
        fleet = {
            key: self._theirs(fields)
            for key, fields in zip(reads, replies[len(replies) - len(reads) :], strict=True)
        }
        with self._lock:
            self._fleet = fleet
            self._read_at = time.monotonic()
            self._read = set(windows)
