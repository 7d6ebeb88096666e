"""The failover decision engine, sans-IO.

:class:`FailoverFlow` decides everything for one request: which entry to try, whether to
retry, how long to sleep, when to bench, which event to emit, when the chain is exhausted.
It performs no I/O and never sleeps: drivers (``failover_core/drivers``) carry out its commands, the
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

Hedging (``hedge_after``): before an attempt, :meth:`~FailoverFlow.hedge_delay` says how
long to wait for its output; past that, :meth:`~FailoverFlow.hedge` gives the attempt to
race beside it (or none). The driver reports the race's end with
:meth:`~FailoverFlow.race_won`, or a racer's failure while the other runs on with
:meth:`~FailoverFlow.race_failed`; a lone survivor then goes on as the current attempt.

Resumed streams (``resume_streams``): a committed stream that fails asks
:meth:`~FailoverFlow.resume` first; an :class:`Attempt` is the model to continue the text
on (the driver opens the adapter's continuation; it commits as usual), ``None`` means
report :meth:`~FailoverFlow.interrupted` as before.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .._errors import (
    AllModelsFailedError,
    AttemptTimeoutError,
    ResumeNotice,
    StreamInterruptedError,
)
from ..classification.classifier import ErrorKind, classify, status_of
from ..classification.content_filter import is_content_filter
from ..classification.origin import caller_raised
from ..config.policy import FailoverPolicy
from ..health.registry import HealthRegistry
from ..pool.pool import PoolGroup
from ..pool.ratelimits import headers_of
from ..telemetry import listeners as _telemetry
from ..telemetry.events import FailoverEvent, logger, notify
from ..telemetry.printable import printable
from .hedging import AdaptiveHedge, HedgeNotice, Hedging, get_hedging

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
    """Raise ``error``: every entry failed (an :class:`AllModelsFailedError`), a content
    filter's own error, or the caller's own code raised it during the attempt (re-raised
    as it is)."""

    error: Exception


Command = Attempt | Sleep | GiveUp


@dataclass(frozen=True, slots=True)
class Served:
    """Which entry answered, and how many attempts failed before it did.

    ``hedged``: the answer came from a hedge, started beside a slower attempt.
    ``resumed_from``: the answer continues a stream of that model, which failed after
    ``resumed_after`` characters of text (``resume_streams``).
    """

    model: str
    index: int
    failed_attempts: int
    hedged: bool = False
    resumed_from: str | None = None
    resumed_after: int = 0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"model": self.model, "failed_attempts": self.failed_attempts}
        if self.hedged:
            out["hedged"] = True
        if self.resumed_from is not None:
            out["resumed_from"] = self.resumed_from
            out["resumed_after"] = self.resumed_after
        return out


class FailoverFlow:
    """The decisions for one request over a chain of entry keys."""

    def __init__(
        self,
        keys: Sequence[str],
        policy: FailoverPolicy,
        registry: HealthRegistry,
        request: object = None,
        *,
        pools: Sequence[PoolGroup] = (),
    ) -> None:
        if not keys:
            raise ValueError("a failover flow needs at least one entry")
        # Pools: each member key's pool, and the balancer's start of each open attempt.
        self._pool_of = {key: group for group in pools for key in group.keys}
        self._pool_open: dict[str, float] = {}
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
        # Hedging: the process's tracker and budget when this chain hedges, the current
        # attempt's start on its clock, the hedge racing it (live position and its starts:
        # the hedging clock's, the registry's, perf_counter's), whether one was used.
        self._hedging: Hedging | None = None if policy.hedge_after is None else get_hedging()
        self._streamed: bool | None = None
        self._began = 0.0
        self._hedge: tuple[int, float, float, float] | None = None
        self._hedge_used = False
        self._no_hedge = False
        self._by_hedge = False
        self._resumed: tuple[str, int] | None = None  # (model, characters) continued
        self._broken_kind = ErrorKind.UNKNOWN  # the kind of the failure being continued
        self._request_told = False  # request_ended reported (once per request)

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
        if self._pool_of:
            self._live = self._arranged(self._live)
        if self._hedging is not None:
            self._hedging.budget.request(self._registry.hedge_tally)
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
        return self._served()

    def committed(self) -> Served:
        """A stream committed to the current entry (its first output is out): who serves.

        Nothing is recorded yet: the stream's end is the evidence (:meth:`succeeded`), so
        a model that fails every stream midway still collects its strikes.
        """
        self._answered(self._key)
        return self._served()

    def _served(self) -> Served:
        resumed_from, resumed_after = self._resumed or (None, 0)
        return Served(
            model=self._key,
            index=self._live[self._pos],
            failed_attempts=self._failed_attempts,
            hedged=self._by_hedge,
            resumed_from=resumed_from,
            resumed_after=resumed_after,
        )

    def failed(self, error: Exception) -> Command:
        """The current attempt raised ``error``; decide what happens next.

        An error the caller's own code raised (a callback handler, see
        :func:`~failover_core.classification.origin.caller_raised`) is given back as it
        is: no bench, no event, no other model.
        """
        if caller_raised(error):
            self.abandon()
            return GiveUp(error)
        self._failed_attempts += 1
        key, attempt, policy = self._key, self._attempt, self._policy
        kind = classify(error, policy.rules)
        self._last = (error, kind)
        self._pool_heard(key, error)
        self._attempt_ended(_outcome(error, kind))
        if kind is ErrorKind.AUTH_DEAD and is_content_filter(error):
            kind = ErrorKind.REQUEST_SPECIFIC  # a moderation 403: the request's, not the key's
        if key in self._probing:
            self._probe_failed(key, kind)
        if kind is ErrorKind.REQUEST_SPECIFIC:
            self._no_hedge = True  # deterministic: ordinary failover, no duplicate requests
            if key in self._probing:  # says nothing of the model: let another request probe
                self._registry.release_probe(key)
                self._probing.discard(key)
            if is_content_filter(error):
                return self._filtered(error, kind)
            # The pool's other members serve the same model: the request would fail there too.
            return self._move_on(error, kind, reason="request_specific", after=self._pool_last())
        if kind is ErrorKind.AUTH_DEAD:
            benched = self._bench_dead(key)
            return self._move_on(error, kind, reason="auth_dead", until=benched)
        if isinstance(error, AttemptTimeoutError):
            return self._timed_out(error, kind)
        if policy.on_transient == "next":  # fail over first: a strike, and the next model
            return self._timed_out(error, kind, reason="transient_next")
        # A probe is one call: the model failed before its bench, so one more failure is
        # enough to bench it again (with a longer cooldown) and hand the request on.
        exhausted = attempt >= policy.max_retries or key in self._probing
        self._probing.discard(key)
        until = self._strike_transient(key, exhausted=exhausted)
        if exhausted:
            return self._move_on(error, kind, reason="exhausted", until=until)
        if self._pool_has_next():  # another member of its pool: at once, no backoff
            return self._move_on(error, kind, reason="pool_next", until=until)
        if until is not None and not self._best_effort:
            # Benched now by failures from other requests too: stop spending retries on it.
            return self._move_on(error, kind, reason="benched_elsewhere", until=until)
        return Sleep(policy.delay(attempt, error), key, attempt, error)

    def _filtered(self, error: Exception, kind: ErrorKind) -> Command:
        """A content filter refused the request: nothing is benched. With
        ``on_content_filter="raise"`` the provider's own error goes to the caller at once
        (no other model is asked); with ``"next"`` the next model is tried."""
        if self._policy.on_content_filter == "next":
            return self._move_on(error, kind, reason="content_filter")
        self._emit(error, kind, until=None, next_model=None, reason="content_filter")
        self._failures.append((self._key, kind, error))
        self._request_ended(None)
        return GiveUp(error)

    def _timed_out(self, error: Exception, kind: ErrorKind, reason: str = "timeout") -> Command:
        # A hung model is not retried within the request (it would cost another whole
        # deadline): move on at once. The timeout is a strike, so max_retries of them from
        # any requests bench it; a failed probe benches it again at once.
        key = self._key
        probing = key in self._probing
        self._probing.discard(key)
        until = self._strike_transient(key, exhausted=probing)
        return self._move_on(error, kind, reason=reason, until=until)

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

    def interrupted(self, error: Exception, text: str, chunks: int) -> Exception:
        """A committed stream failed after ``chunks`` chunks: record it, never fail over.

        A transient failure counts as one strike, like any failed attempt: it benches the
        model only once ``max_retries`` strikes come in with no success between them.
        Returns the error to raise: a :class:`StreamInterruptedError`, or ``error`` itself
        when the caller's own code raised it (nothing recorded).
        """
        if caller_raised(error):
            self.abandon()
            return error
        kind = classify(error, self._policy.rules)
        until = self._strike(error, kind)
        self._emit(error, kind, until=until, next_model=None, reason="stream_interrupted")
        return StreamInterruptedError(self._key, kind, text, chunks)

    def restarted(self, error: Exception) -> Attempt | GiveUp:
        """A committed stream failed and cannot be continued, but its caller takes only a
        whole answer (``invoke`` under a streaming callback): the next model answers from
        scratch and the partial text is dropped.

        The failed model gets its strike, as an interrupted stream does, and is not tried
        again in this request: a retry would show its partial text a second time.
        """
        kind = classify(error, self._policy.rules)
        until = self._strike(error, kind)
        self._failed_attempts += 1
        self._resumed = None
        return self._move_on(error, kind, reason="stream_restarted", until=until)

    def resume(
        self, error: Exception, text: str, can_continue: Callable[[int], bool]
    ) -> Attempt | None:
        """A committed stream failed after ``text``: the attempt to continue it on, or ``None``
        (then report :meth:`interrupted`).

        Only with ``resume_streams``, only when the driver saw plain text alone (it asks
        only then) and the error says nothing of the request itself (a content filter is
        not dodged by another model). The next live entry after the current one for which
        ``can_continue(index)`` holds takes over; the failed model gets its strike, as an
        interrupted stream does, and the new attempt is counted like any other.
        """
        if not self._policy.resume_streams or caller_raised(error):
            return None
        kind = classify(error, self._policy.rules)
        if kind is ErrorKind.REQUEST_SPECIFIC:
            return None
        pos = self._continuer(can_continue)
        if pos is None:
            return None
        key = self._key
        until = self._strike(error, kind)
        self._failed_attempts += 1
        self._broken_kind = kind
        next_key = self._keys[self._live[pos]]
        notice = ResumeNotice(key, next_key, len(text), error)
        self._emit(notice, kind, until=until, next_model=next_key, reason="stream_resumed")
        self._resumed = (key, len(text))
        self._pos, self._attempt = pos, 1
        return self._current_attempt()

    def continuation_failed(
        self, error: Exception, text: str, chunks: int, can_continue: Callable[[int], bool]
    ) -> Attempt | StreamInterruptedError:
        """The continuation opened on the current model failed before its first output:
        the next model able to continue the text, or (none left) the interruption of the
        stream being continued, to raise from its own cause.

        A request-specific failure (a 400: the server does not take an assistant prefill)
        says nothing of the model's health: no strike. Any other is a strike as usual.
        """
        kind = classify(error, self._policy.rules)
        key = self._key
        until: datetime | None = None
        if kind is ErrorKind.REQUEST_SPECIFIC:
            self._attempt_ended(_outcome(error, kind))
            if key in self._probing:
                self._probing.discard(key)
                self._registry.release_probe(key)
        else:
            until = self._strike(error, kind)
        self._failed_attempts += 1
        self._failures.append((key, kind, error))
        pos = self._continuer(can_continue)
        next_key = None if pos is None else self._keys[self._live[pos]]
        self._emit(error, kind, until=until, next_model=next_key, reason="resume_failed")
        if pos is None:
            broken, _ = self._resumed or (key, 0)
            self._request_ended(None)
            return StreamInterruptedError(broken, self._broken_kind, text, chunks)
        self._pos, self._attempt = pos, 1
        return self._current_attempt()

    def _continuer(self, can_continue: Callable[[int], bool]) -> int | None:
        """The live position after the current one that continues the stream: able, and
        entered in the registry (a recovering model is probed by it). A model benched
        meanwhile, or probed by another request, is passed over, never tried as a last
        resort: the stream would break once more (with everything benched from the start,
        best effort, the first able one)."""
        for pos in range(self._pos + 1, len(self._live)):
            if not can_continue(self._live[pos]):
                continue
            if self._best_effort:
                return pos
            if self._admitted(self._keys[self._live[pos]]):
                return pos
        return None

    def _strike(self, error: Exception, kind: ErrorKind) -> datetime | None:
        """Record a committed stream's failure: one strike (an auth error benches)."""
        key = self._key
        self._attempt_ended(_outcome(error, kind))
        until: datetime | None = None
        probing = key in self._probing  # a probe is one call: its failure benches again
        self._probing.discard(key)
        if probing:
            self._probe_failed(key, kind)
        if kind is ErrorKind.AUTH_DEAD:
            until = self._bench_dead(key)
        elif kind is not ErrorKind.REQUEST_SPECIFIC:
            until = self._strike_transient(key, exhausted=probing)
        elif probing:
            self._registry.release_probe(key)
        return until

    def abandon(self) -> None:
        """The caller cancelled during an attempt: give back any probe lease it holds, so
        another request can probe the model at once instead of after the lease."""
        if not self._ended:
            self._attempt_ended("cancelled")
            self._request_ended(None)
        for key in list(self._pool_open):
            self._pool_stop(key, "cancelled")
        probing, self._probing = sorted(self._probing), set()
        for key in probing:
            self._tell("probe_ended", key, "released")
            try:
                self._registry.release_probe(key)
            except Exception:  # a bare shared store failing must not mask the cancellation
                logger.debug("failover: could not release the probe lease of %s", printable(key))

    def drain_observer_calls(self) -> list[tuple[object, Awaitable[object]]]:
        """Coroutines of an ``async def`` observer, decided since the last drain: the async
        drivers await them, the sync ones run them. Each comes with its observer."""
        calls, self._observer_calls = self._observer_calls, []
        return calls

    # -- hedging ------------------------------------------------------------------------

    def hedge_delay(self, streamed: bool) -> float | None:
        """Seconds to wait for the current attempt's first output before hedging it, or
        ``None``: no hedging (off, already hedged once, after a request-specific error,
        nothing after it, every model benched, or an adaptive delay still cold)."""
        self._streamed = streamed
        hedging, after = self._hedging, self._policy.hedge_after
        if hedging is None or after is None or self._hedge_used or self._no_hedge:
            return None
        if self._best_effort or self._pos + 1 >= len(self._live):
            return None
        if isinstance(after, AdaptiveHedge):
            return hedging.tracker.delay(self._key, streamed, after)
        return after

    def hedge(self) -> Attempt | None:
        """The current attempt gave no output in time: the attempt to race beside it.

        ``None`` when no model after it is healthy (a benched model, or one recovering
        behind another request's probe, is never hedged to) or the budget is spent.
        """
        hedging = self._hedging
        if hedging is None or self._hedge_used:
            return None
        pos = next((p for p in range(self._pos + 1, len(self._live)) if self._healthy(p)), None)
        if pos is None or not hedging.budget.try_hedge(self._registry.hedge_tally):
            return None
        now = hedging.clock()
        self._hedge_used = True
        self._hedge = (pos, now, self._registry.now(), time.perf_counter())
        self._attempts += 1
        key = self._keys[self._live[pos]]
        self._pool_start(key)
        waited = now - self._began
        notice = HedgeNotice(f"no output from {self._key} after {waited:.3f} s; racing {key}")
        self._emit(notice, ErrorKind.TRANSIENT, until=None, next_model=key, reason="hedge_started")
        return Attempt(index=self._live[pos], key=key, number=1)

    def race_won(self, hedge: bool) -> None:
        """The race ended: the hedge (``hedge``) or the attempt it raced gave output first.
        The loser is cancelled by the driver; it benches nothing and is not a failure."""
        assert self._hedge is not None and self._hedging is not None, "race_won() with no race"
        (pos, *started), self._hedge = self._hedge, None
        key = self._keys[self._live[pos]]
        outcome = "hedge_won" if hedge else "hedge_lost"
        notice = HedgeNotice(f"{outcome}: {key if hedge else self._key} answered first")
        self._emit(notice, ErrorKind.TRANSIENT, until=None, next_model=key, reason=outcome)
        if not hedge:  # the hedge is cancelled
            self._tell("attempt_ended", key, "cancelled", time.perf_counter() - started[2])
            self._pool_stop(key, "cancelled")
        if hedge:
            loser = self._key
            self._attempt_ended("cancelled")
            if self._streamed is not None:  # the loser's time is at least this: keep the tail
                self._hedging.tracker.record(
                    loser, self._streamed, self._hedging.clock() - self._began
                )
            if loser in self._probing:  # cancelled: no verdict; let another request probe
                self._registry.release_probe(loser)
                self._probing.discard(loser)
            self._switch_to_hedge(pos, *started)

    def race_failed(self, error: Exception, hedge: bool) -> None:
        """A racer failed while the other runs on: record the failure (a strike, as for a
        timeout; an auth error benches); the other goes on as the current attempt."""
        assert self._hedge is not None, "race_failed() with no race"
        (pos, *started), self._hedge = self._hedge, None
        hedge_key = self._keys[self._live[pos]]
        key = hedge_key if hedge else self._key
        if caller_raised(error):  # the caller's own error says nothing of the model
            if hedge:
                self._pool_stop(key, "cancelled")
            else:
                self._attempt_ended("cancelled")
                self._switch_to_hedge(pos, *started)
            return
        kind = classify(error, self._policy.rules)
        outcome = _outcome(error, kind)
        self._pool_heard(key, error)
        if hedge:
            self._tell("attempt_ended", key, outcome, time.perf_counter() - started[2])
            self._pool_stop(key, outcome)
        else:
            self._attempt_ended(outcome)
        if key in self._probing:
            self._probe_failed(key, kind)
        self._failed_attempts += 1
        until: datetime | None = None
        probing = key in self._probing
        self._probing.discard(key)
        if kind is ErrorKind.AUTH_DEAD:
            until = self._bench_dead(key)
        elif kind is ErrorKind.REQUEST_SPECIFIC:
            self._no_hedge = True
            if probing:
                self._registry.release_probe(key)
        else:
            until = self._strike_transient(key, exhausted=probing)
        survivor = self._key if hedge else hedge_key
        self._emit(
            error,
            kind,
            until=until,
            next_model=survivor,
            reason="failed_in_race",
            model=key,
            attempt=1 if hedge else self._attempt,
        )
        self._failures.append((key, kind, error))
        if not hedge:
            self._switch_to_hedge(pos, *started)

    def _first_output(self, key: str) -> None:
        """The current attempt produced its first output: time it, for adaptive delays."""
        if self._hedging is not None and self._streamed is not None:
            elapsed = self._hedging.clock() - self._began
            self._hedging.tracker.record(key, self._streamed, elapsed)

    def _switch_to_hedge(self, pos: int, began: float, started: float, t0: float) -> None:
        """The hedge goes on as the current attempt, with its own start times."""
        self._pos, self._attempt, self._began, self._by_hedge = pos, 1, began, True
        self._started, self._t0, self._ended = started, t0, False

    def _healthy(self, pos: int) -> bool:
        """Neither benched nor recovering (whose one probe belongs to another request)."""
        key = self._keys[self._live[pos]]
        if self._registry.is_benched(key):
            return False
        record = self._registry.store.get(key)
        return record is None or record.until is None

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

    def _bench_dead(self, key: str) -> datetime:
        """Bench ``key`` at once (auth/model-dead): ``dead_cooldown``, up to ``cooldown``."""
        policy = self._policy
        return self._registry.bench_now(key, policy.bench_length(dead=True), cap=policy.cooldown)

    def _strike_transient(self, key: str, *, exhausted: bool) -> datetime | None:
        """One transient strike on ``key``; a bench starts at ``transient_cooldown`` and a
        failed probe doubles the last one, up to ``cooldown`` (the longest a model is out)."""
        policy = self._policy
        return self._registry.record_failure(
            key,
            policy.bench_length(dead=False),
            exhausted=exhausted,
            strike_limit=policy.max_retries,
            cap=policy.cooldown,
        )

    def _probe_failed(self, key: str, kind: ErrorKind) -> None:
        """A probe's call failed: a verdict on the model, unless the error was the
        request's (then the lease is handed back without one)."""
        released = kind is ErrorKind.REQUEST_SPECIFIC
        self._tell("probe_ended", key, "released" if released else "failed")

    def _attempt_ended(self, outcome: str) -> None:
        if not self._ended:
            self._ended = True
            self._pool_stop(self._key, outcome)
            self._tell("attempt_ended", self._key, outcome, time.perf_counter() - self._t0)

    def _request_ended(self, served: str | None) -> None:
        # Once per request: a resumed stream answers twice (its first and its last model).
        if not self._request_told:
            self._request_told = True
            self._tell("request_ended", served, self._attempts)

    def _answered(self, key: str) -> None:
        """The current attempt answered (a stream: its first output): once per request."""
        if not self._ended:
            self._first_output(key)
            self._attempt_ended("success")
            self._request_ended(key)

    def _current_attempt(self) -> Attempt:
        self._started = self._registry.now()
        self._t0, self._ended = time.perf_counter(), False
        self._attempts += 1
        if self._hedging is not None:
            self._began = self._hedging.clock()
        self._by_hedge = False
        self._pool_start(self._key)
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
                if self._admitted(key):
                    return pos
                self._skipped.append((key, self._registry.benched_until(key)))
        return rest[0]

    def _admitted(self, key: str) -> bool:
        """Whether the registry lets a request call ``key`` now (noting a probe it takes)."""
        entry = self._registry.enter(key)
        if entry == "probe":
            self._probing.add(key)
        return entry != "closed"

    # -- pools --------------------------------------------------------------------------

    def _arranged(self, live: list[int]) -> list[int]:
        """``live`` with each pool's members in its balancer's order for this request;
        members out of rate limit go to the very end, tried only if all else fails."""
        out: list[int] = []
        limited: list[int] = []
        i = 0
        while i < len(live):
            group = self._pool_of.get(self._keys[live[i]])
            if group is None:
                out.append(live[i])
                i += 1
                continue
            j = i
            while j < len(live) and self._pool_of.get(self._keys[live[j]]) is group:
                j += 1
            at = {self._keys[p]: p for p in live[i:j]}
            order, blocked = group.balancer.rank(list(at))
            out.extend(at[k] for k in order)
            limited.extend(at[k] for k in blocked)
            i = j
        return out + limited

    def _pool_has_next(self) -> bool:
        """The live position after the current one is a member of the current's pool."""
        group = self._pool_of.get(self._key)
        nxt = self._pos + 1
        return (
            group is not None
            and nxt < len(self._live)
            and self._pool_of.get(self._keys[self._live[nxt]]) is group
        )

    def _pool_last(self) -> int | None:
        """The last consecutive live position in the current entry's pool (``None``: not
        in a pool)."""
        group = self._pool_of.get(self._key)
        if group is None:
            return None
        pos = self._pos
        while (
            pos + 1 < len(self._live)
            and self._pool_of.get(self._keys[self._live[pos + 1]]) is group
        ):
            pos += 1
        return pos

    def _pool_start(self, key: str) -> None:
        group = self._pool_of.get(key)
        if group is not None and key not in self._pool_open:
            self._pool_open[key] = group.balancer.started(key)

    def _pool_stop(self, key: str, outcome: str) -> None:
        started = self._pool_open.pop(key, None)
        if started is not None:
            self._pool_of[key].balancer.ended(key, outcome, started)

    def _pool_heard(self, key: str, error: Exception) -> None:
        """A pool member failed: what its error's headers say of its rate limits."""
        group = self._pool_of.get(key)
        if group is not None:
            status = status_of(error)
            group.balancer.observe(key, headers_of(error), limited=status == 429)

    def _move_on(
        self,
        error: Exception,
        kind: ErrorKind,
        *,
        reason: str,
        until: datetime | None = None,
        after: int | None = None,
    ) -> Attempt | GiveUp:
        nxt = self._enter(self._pos if after is None else after)
        next_model = None if nxt is None else self._keys[self._live[nxt]]
        self._emit(error, kind, until=until, next_model=next_model, reason=reason)
        self._failures.append((self._key, kind, error))
        if nxt is None:
            self._request_ended(None)
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
        model: str | None = None,
        attempt: int | None = None,
    ) -> None:
        benched = until is not None
        applied = None
        if benched:  # the bench as applied (grown after a failed probe), not the base
            applied = self._registry.bench_length(self._key if model is None else model)
        event = FailoverEvent(
            model=self._key if model is None else model,
            error=error,
            kind=kind,
            attempt=self._attempt if attempt is None else attempt,
            benched=benched,
            benched_for=(applied or self._policy.cooldown) if benched else None,
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


def _outcome(error: Exception, kind: ErrorKind) -> str:
    """How a failed attempt ended, for telemetry: a deadline, or the error's kind."""
    return "timeout" if isinstance(error, AttemptTimeoutError) else kind.value
