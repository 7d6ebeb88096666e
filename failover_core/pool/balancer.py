"""Which member of a pool serves a request: the pure policy, no I/O, no sleeping.

Power-of-two-choices over a peak-EWMA, as Finagle, Linkerd and Envoy balance: each
member's cost is its latency estimate times one plus its requests in flight; a request
draws two members at random and takes the cheaper one. The estimate jumps up to a slow
sample at once (the peak) and decays toward faster ones over ``decay`` seconds; an idle
member's estimate decays toward zero, so a member that was slow is tried again now and
then and is forgiven once it is fast. Streams are timed to their first output.

Rate limits, before the 429: a member whose last response said it has no requests or
tokens left (or a 429 asked to retry after a while) is not chosen until the reset; one
whose remaining budget is below a fifth of its limit costs more, the closer it is to
zero. Requests sent since the last response count against the remaining requests, so
eight requests at once do not all go to a member that had three left.

The state is per member key and in-process (the health registry, which benches, is
fleet-wide on Redis); time comes from an injectable monotonic clock, randomness from an
injectable ``random.Random``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .ratelimits import RateLimits, read_rate_limits

__all__ = ["MemberSnapshot", "PoolBalancer", "get_pool_balancer", "set_pool_balancer"]

_FLOOR = 1e-3  # seconds: a member never measured costs this (times its load)
_COLD = 1e3  # cost of a never-measured member with requests in flight (Finagle's penalty)
_FAILED = 1.0  # seconds: the least a failed attempt counts as, however fast it failed
_NEAR = 0.2  # below this fraction of its limit left, a member costs more
_BLOCK = 1.0  # seconds a 429 with no hint keeps a member out
_STALE = 60.0  # seconds a reading without a reset time is believed


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    """One member as the balancer sees it now (for docs, tests and dashboards)."""

    key: str
    latency: float
    in_flight: int
    cost: float
    blocked_for: float
    headroom: float | None


@dataclass
class _Member:
    ewma: float = 0.0
    stamp: float = 0.0
    in_flight: int = 0
    blocked_until: float = 0.0
    headroom: float | None = None
    remaining: int | None = None
    reading_until: float = 0.0  # when the last reading's budget refills


class PoolBalancer:
    """Orders a pool's members for one request; learns from each attempt's end.

    Thread-safe. ``clock``: monotonic seconds; ``wall``: wall-clock seconds (Anthropic's
    resets are instants); ``rng``: the draws; ``decay``: the EWMA's time constant.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        decay: float = 10.0,
    ) -> None:
        if decay <= 0:
            raise ValueError(f"decay must be positive, got {decay!r}")
        self.clock = clock
        self.wall = wall
        self._rng = rng or random.Random()
        self._decay = decay
        self._lock = threading.Lock()
        self._members: dict[str, _Member] = {}

    # -- choosing -----------------------------------------------------------------------

    def rank(self, keys: Sequence[str]) -> tuple[list[str], list[str]]:
        """``keys`` in the order to try them, and those out of budget until a reset
        (soonest first), which are not to be tried.

        The first is the power-of-two-choices pick; the rest follow by cost, so a failed
        member is followed by the next best.
        """
        with self._lock:
            now = self.clock()
            members = {key: self._member(key) for key in keys}
            blocked = [k for k in keys if members[k].blocked_until > now]
            open_ = [k for k in keys if members[k].blocked_until <= now]
            costs = {k: self._cost(members[k], now) for k in open_}
            first: list[str] = []
            if len(open_) >= 2:
                a, b = self._rng.sample(open_, 2)
                first = [b if costs[b] < costs[a] else a]
            rest = sorted((k for k in open_ if k not in first), key=lambda k: costs[k])
            blocked.sort(key=lambda k: members[k].blocked_until)
            return first + rest, blocked

    def started(self, key: str) -> float:
        """An attempt on ``key`` starts: count it in flight (and against the requests
        the member has left); returns the start, for :meth:`ended`."""
        with self._lock:
            now = self.clock()
            member = self._member(key)
            member.in_flight += 1
            if member.remaining is not None and now < member.reading_until:
                member.remaining -= 1
                if member.remaining <= 0:
                    member.blocked_until = max(member.blocked_until, member.reading_until)
            return now

    def ended(self, key: str, outcome: str, started: float) -> None:
        """The attempt on ``key`` begun at ``started`` ended with ``outcome`` (the
        telemetry outcome: success, transient, unknown, auth_dead, timeout, cancelled,
        request_specific)."""
        with self._lock:
            now = self.clock()
            member = self._member(key)
            member.in_flight = max(0, member.in_flight - 1)
            elapsed = max(0.0, now - started)
            current = self._decayed(member, now)
            if outcome == "success":
                sample = elapsed
            elif outcome == "cancelled":  # it took at least this long: keep the peak only
                if elapsed <= current:
                    return
                sample = elapsed
            elif outcome == "request_specific":  # the request's fault, not the member's
                return
            else:
                sample = max(elapsed, 2 * current, _FAILED)
            self._observe(member, sample, now)

    def observe(
        self, key: str, headers: Mapping[str, Any] | None, *, limited: bool = False
    ) -> None:
        """Headers of a response (or of an error) from ``key``; ``limited``: it was a 429,
        so the member is kept out for the hinted time (or a second) even without headers."""
        reading = read_rate_limits(headers, self.wall()) if headers else None
        if reading is None and not limited:
            return
        with self._lock:
            self._read(self._member(key), reading, limited, self.clock())

    # -- introspection ------------------------------------------------------------------

    def snapshot(self, keys: Sequence[str] | None = None) -> list[MemberSnapshot]:
        with self._lock:
            now = self.clock()
            chosen = list(self._members) if keys is None else list(keys)
            out = []
            for key in chosen:
                member = self._member(key)
                out.append(
                    MemberSnapshot(
                        key=key,
                        latency=self._decayed(member, now),
                        in_flight=member.in_flight,
                        cost=self._cost(member, now),
                        blocked_for=max(0.0, member.blocked_until - now),
                        headroom=member.headroom if now < member.reading_until else None,
                    )
                )
            return out

    def forget(self) -> None:
        """Drop everything learnt (tests; a new deployment behind the same keys)."""
        with self._lock:
            self._members.clear()

    # -- internals (under the lock) -----------------------------------------------------

    def _member(self, key: str) -> _Member:
        member = self._members.get(key)
        if member is None:
            member = self._members[key] = _Member(stamp=self.clock())
        return member

    def _decayed(self, member: _Member, now: float) -> float:
        return member.ewma * math.exp(-max(0.0, now - member.stamp) / self._decay)

    def _observe(self, member: _Member, sample: float, now: float) -> None:
        if sample > member.ewma:  # the peak: slower news is believed at once
            member.ewma = sample
        else:
            w = math.exp(-max(0.0, now - member.stamp) / self._decay)
            member.ewma = member.ewma * w + sample * (1 - w)
        member.stamp = now

    def _cost(self, member: _Member, now: float) -> float:
        latency = self._decayed(member, now)
        if member.ewma == 0.0 and member.in_flight:  # never measured, already busy
            return _COLD + member.in_flight
        cost = max(latency, _FLOOR) * (member.in_flight + 1)
        headroom = member.headroom if now < member.reading_until else None
        if headroom is not None and headroom < _NEAR:
            cost *= _NEAR / max(headroom, 0.01)
        return cost

    def _read(self, member: _Member, reading: RateLimits | None, limited: bool, now: float) -> None:
        if reading is not None:
            reset = reading.reset_in
            member.reading_until = now + (reset if reset is not None else _STALE)
            member.headroom = reading.headroom
            member.remaining = None
            if reading.remaining_requests is not None:
                # Requests still in flight may have been counted after this answer: count
                # them against it, the safe side.
                member.remaining = reading.remaining_requests - max(0, member.in_flight - 1)
            if reading.exhausted or (member.remaining is not None and member.remaining <= 0):
                hold = reset if reset is not None else (reading.retry_after or _BLOCK)
                member.blocked_until = max(member.blocked_until, now + hold)
        hint = reading.retry_after if reading is not None else None
        if limited:
            wait = hint if hint is not None else (reading.reset_in if reading else None)
            member.blocked_until = max(member.blocked_until, now + (wait or _BLOCK))
        elif hint is not None:
            member.blocked_until = max(member.blocked_until, now + hint)


_lock = threading.Lock()
_default = PoolBalancer()


def get_pool_balancer() -> PoolBalancer:
    """The process-wide balancer that pools use unless given their own."""
    return _default


def set_pool_balancer(balancer: PoolBalancer) -> PoolBalancer:
    """Install ``balancer`` as the process-wide one; returns the previous one (tests)."""
    global _default
    if not isinstance(balancer, PoolBalancer):
        raise TypeError(f"expected a PoolBalancer, got {balancer!r}")
    with _lock:
        old, _default = _default, balancer
    return old
