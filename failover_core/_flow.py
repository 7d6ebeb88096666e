"""The failover decision engine, sans-IO.

:class:`FailoverFlow` decides everything for one request: which entry to try, whether to
retry, how long to sleep, when to bench, which event to emit, when the chain is exhausted.
It performs no I/O and never sleeps: drivers (``_drivers.py``) carry out its commands, the
way tenacity's ``DoAttempt``/``DoSleep`` or httpx's ``auth_flow`` work. A driver calls

* :meth:`~FailoverFlow.start` once, then for each command it gets back:
* :class:`Attempt` — call the entry; report :meth:`~FailoverFlow.succeeded` or
  :meth:`~FailoverFlow.failed` (with an ``Exception``; anything else, such as
  ``asyncio.CancelledError`` or ``KeyboardInterrupt``, is the caller's cancellation and the
  driver lets it propagate: no failover, no bench, no event);
* :class:`Sleep` — sleep, then :meth:`~FailoverFlow.slept`;
* :class:`GiveUp` — raise its error.

A stream reports its first output with :meth:`~FailoverFlow.committed`, its end with
:meth:`~FailoverFlow.succeeded`, and a failure after its first chunk with
:meth:`~FailoverFlow.interrupted`; a caller's cancellation during an attempt (or a consumer
that stops a stream early) is reported with :meth:`~FailoverFlow.abandon`. After each
command, a driver awaits (async) or runs (sync) the coroutines of ``async def`` observers
(:meth:`~FailoverFlow.drain_observer_calls`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime

from . import _telemetry
from ._classify import ErrorKind, classify
from ._config import FailoverPolicy
from ._errors import AllModelsFailedError, AttemptTimeoutError, StreamInterruptedError
from ._events import FailoverEvent, logger, notify
from ._health import HealthRegistry

__all__ = ["Attempt", "Command", "FailoverFlow", "GiveUp", "Served", "Sleep"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """Call entry ``index`` (its ``number``-th attempt in this request)."""

    index: int
    key: str
    number: int


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before retrying ``key``; ``attempt`` failed with ``error``."""

    seconds: float
    key: str
    attempt: int
    error: BaseException


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Every entry failed: raise ``error``."""

    error: AllModelsFailedError


Command = Attempt | Sleep | GiveUp


@dataclass(frozen=True, slots=True)
class Served:
    """Which entry answered, and how many attempts failed before it did."""

    model: str
    index: int
    failed_attempts: int

    def as_dict(self) -> dict[str, object]:
        return {"model": self.model, "failed_attempts": self.failed_attempts}


class FailoverFlow:
    """The decisions for one request over a chain of entry keys."""

    def __init__(
        self,
        keys: Sequence[str],
        policy: FailoverPolicy,
        registry: HealthRegistry,
        request: object = None,
    ) -> None:
        if not keys:
            raise ValueError("a failover flow needs at least one entry")
        self._keys = tuple(keys)
        self._policy = policy
        self._registry = registry
        self._request = request
        self._live: list[int] = []
        self._best_effort = False
        self._pos = 0
        self._attempt = 0
        self._failed_attempts = 0
        self._failures: list[tuple[str, ErrorKind, Exception]] = []
        self._last: tuple[Exception, ErrorKind] | None = None
        self._pending: list[FailoverEvent] = []
        self._probing: set[str] = set()
        self._started = 0.0  # fleet time the current attempt started (health evidence)
        self._observer_calls: list[tuple[object, Awaitable[object]]] = []
        self._skipped: list[tuple[str, datetime | None]] = []  # benched, so not tried
        self._t0 = 0.0  # perf_counter at the current attempt's start (telemetry)
        self._ended = True  # the current attempt's end was reported (telemetry)
        self._attempts = 0  # attempts issued in this request, all entries together

    # -- commands -----------------------------------------------------------------------

    def start(self) -> Attempt:
        """Build the live set and return the first attempt."""
        benched = {key: self._registry.benched_until(key) for key in self._keys}
        self._live = [i for i, key in enumerate(self._keys) if benched[key] is None]
        if not self._live:  # everything benched: try them all, never fail on cooldowns alone
            self._live = list(range(len(self._keys)))
            self._best_effort = True
        else:
            self._skipped = [(k, until) for k, until in benched.items() if until is not None]
        self._pos = self._enter(-1) or 0
        self._attempt = 1
        return self._current_attempt()

    def succeeded(self) -> Served:
        """The current attempt worked: clear the entry's failures and say who served.

        Only failures recorded before the attempt started are cleared: a bench made while
        it was in flight (by another request, or by hand) stands.
        """
        key = self._key
        self._registry.record_success(key, started=self._started)
        if key in self._probing:
            self._probing.discard(key)
            self._tell("probe_ended", key, "recovered")
        self._answered(key)
        return Served(model=key, index=self._live[self._pos], failed_attempts=self._failed_attempts)

    def committed(self) -> Served:
        """A stream committed to the current entry (its first output is out): who serves.

        Nothing is recorded yet: the stream's end is the evidence (:meth:`succeeded`), so
        a model that fails every stream midway still collects its strikes.
        """
        self._answered(self._key)
        return Served(
            model=self._key, index=self._live[self._pos], failed_attempts=self._failed_attempts
        )

    def failed(self, error: Exception) -> Command:
        """The current attempt raised ``error``; decide what happens next."""
        self._failed_attempts += 1
        key, attempt, policy = self._key, self._attempt, self._policy
        kind = classify(error, policy.rules)
        self._last = (error, kind)
        self._attempt_ended("timeout" if isinstance(error, AttemptTimeoutError) else kind.value)
        if key in self._probing:
            self._tell(
                "probe_ended", key, "released" if kind is ErrorKind.REQUEST_SPECIFIC else "failed"
            )
        if kind is ErrorKind.REQUEST_SPECIFIC:
            if key in self._probing:  # says nothing of the model: let another request probe
                self._registry.release_probe(key)
                self._probing.discard(key)
            return self._move_on(error, kind, reason="request_specific")
        if kind is ErrorKind.AUTH_DEAD:
            benched = self._registry.bench_now(key, policy.cooldown)
            return self._move_on(error, kind, reason="auth_dead", until=benched)
        if isinstance(error, AttemptTimeoutError):
            return self._timed_out(error, kind)
        # A probe is one call: the model failed before its bench, so one more failure is
        # enough to bench it again (with a longer cooldown) and hand the request on.
        exhausted = attempt >= policy.max_retries or key in self._probing
        self._probing.discard(key)
        until = self._registry.record_failure(
            key, policy.cooldown, exhausted=exhausted, strike_limit=policy.max_retries
        )
        if exhausted:
            return self._move_on(error, kind, reason="exhausted", until=until)
        if until is not None and not self._best_effort:
            # Benched now by failures from other requests too: stop spending retries on it.
            return self._move_on(error, kind, reason="benched_elsewhere", until=until)
        return Sleep(policy.delay(attempt, error), key, attempt, error)

    def _timed_out(self, error: AttemptTimeoutError, kind: ErrorKind) -> Command:
        # A hung model is not retried within the request (it would cost another whole
        # deadline): move on at once. The timeout is a strike, so max_retries of them from
        # any requests bench it; a failed probe benches it again at once.
        key = self._key
        probing = key in self._probing
        self._probing.discard(key)
        until = self._registry.record_failure(
            key, self._policy.cooldown, exhausted=probing, strike_limit=self._policy.max_retries
        )
        return self._move_on(error, kind, reason="timeout", until=until)

    def slept(self) -> Command:
        """The backoff is over: retry, unless another request benched the entry meanwhile."""
        assert self._last is not None, "slept() before failed()"
        if not self._best_effort:
            until = self._registry.benched_until(self._key)
            if until is not None:
                error, kind = self._last
                return self._move_on(error, kind, reason="benched_elsewhere", until=until)
        self._attempt += 1
        return self._current_attempt()

    def interrupted(self, error: Exception, text: str, chunks: int) -> StreamInterruptedError:
        """A committed stream failed after ``chunks`` chunks: record it, never fail over.

        A transient failure counts as one strike, like any failed attempt: it benches the
        model only once ``max_retries`` strikes come in with no success between them.
        """
        key, policy = self._key, self._policy
        kind = classify(error, policy.rules)
        until: datetime | None = None
        probing = key in self._probing  # a probe is one call: its failure benches again
        self._probing.discard(key)
        if probing:
            self._tell(
                "probe_ended", key, "released" if kind is ErrorKind.REQUEST_SPECIFIC else "failed"
            )
        if kind is ErrorKind.AUTH_DEAD:
            until = self._registry.bench_now(key, policy.cooldown)
        elif kind is not ErrorKind.REQUEST_SPECIFIC:
            until = self._registry.record_failure(
                key, policy.cooldown, exhausted=probing, strike_limit=policy.max_retries
            )
        elif probing:
            self._registry.release_probe(key)
        self._emit(error, kind, until=until, next_model=None, reason="stream_interrupted")
        return StreamInterruptedError(key, kind, text, chunks)

    def abandon(self) -> None:
        """The caller cancelled during an attempt: give back any probe lease it holds, so
        another request can probe the model at once instead of after the lease."""
        if not self._ended:
            self._attempt_ended("cancelled")
            self._tell("request_ended", None, self._attempts)
        probing, self._probing = sorted(self._probing), set()
        for key in probing:
            self._tell("probe_ended", key, "released")
            try:
                self._registry.release_probe(key)
            except Exception:  # a bare shared store failing must not mask the cancellation
                logger.debug("failover: could not release the probe lease of %s", key)

    def drain_observer_calls(self) -> list[tuple[object, Awaitable[object]]]:
        """Coroutines of an ``async def`` observer, decided since the last drain: the async
        drivers await them, the sync ones run them. Each comes with its observer."""
        calls, self._observer_calls = self._observer_calls, []
        return calls

    def drain(self) -> list[FailoverEvent]:
        """Events decided since the last drain, for drivers that forward them elsewhere
        (framework callbacks). The policy's observer has already seen them."""
        events, self._pending = self._pending, []
        return events

    # -- internals ----------------------------------------------------------------------

    @property
    def _key(self) -> str:
        return self._keys[self._live[self._pos]]

    @staticmethod
    def _tell(method: str, *args: object) -> None:
        """Report a fact to the process's telemetry listeners (none by default: nil cost)."""
        if _telemetry.listeners():
            _telemetry.report(method, *args)

    def _attempt_ended(self, outcome: str) -> None:
        if not self._ended:
            self._ended = True
            self._tell("attempt_ended", self._key, outcome, time.perf_counter() - self._t0)

    def _answered(self, key: str) -> None:
        """The current attempt answered (a stream: its first output): once per request."""
        if not self._ended:
            self._attempt_ended("success")
            self._tell("request_ended", key, self._attempts)

    def _current_attempt(self) -> Attempt:
        self._started = self._registry.now()
        self._t0, self._ended = time.perf_counter(), False
        self._attempts += 1
        return Attempt(index=self._live[self._pos], key=self._key, number=self._attempt)

    def _enter(self, after: int) -> int | None:
        """The next entry to try after position ``after``, entered in the registry.

        Skips entries benched meanwhile and recovering ones another request is probing,
        unless every entry left is one of those (then the first of them, best effort).
        """
        rest = range(after + 1, len(self._live))
        if not rest:
            return None
        if not self._best_effort:
            for pos in rest:
                key = self._keys[self._live[pos]]
                entry = self._registry.enter(key)
                if entry == "probe":
                    self._probing.add(key)
                if entry != "closed":
                    return pos
                self._skipped.append((key, self._registry.benched_until(key)))
        return rest[0]

    def _move_on(
        self, error: Exception, kind: ErrorKind, *, reason: str, until: datetime | None = None
    ) -> Attempt | GiveUp:
        nxt = self._enter(self._pos)
        next_model = None if nxt is None else self._keys[self._live[nxt]]
        self._emit(error, kind, until=until, next_model=next_model, reason=reason)
        self._failures.append((self._key, kind, error))
        if nxt is None:
            self._tell("request_ended", None, self._attempts)
            return GiveUp(AllModelsFailedError(self._failures, skipped=self._skipped))
        self._pos, self._attempt = nxt, 1
        return self._current_attempt()

    def _emit(
        self,
        error: Exception,
        kind: ErrorKind,
        *,
        until: datetime | None,
        next_model: str | None,
        reason: str,
    ) -> None:
        benched = until is not None
        event = FailoverEvent(
            model=self._key,
            error=error,
            kind=kind,
            attempt=self._attempt,
            benched=benched,
            benched_for=self._policy.cooldown if benched else None,
            next_model=next_model,
            request=self._request,
            until=until,
            reason=reason,
        )
        self._tell("decided", event)
        pending = notify(self._policy.observer, event)
        if pending is not None:
            self._observer_calls.append((self._policy.observer, pending))
        self._pending.append(event)
