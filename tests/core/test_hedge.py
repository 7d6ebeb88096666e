"""Hedged requests in the core: the policy (fake clock), the flow, the drivers' races."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

import failover_core as fc
from failover_core.drivers import race as _race
from failover_core.flow import hedging as _hedge
from failover_core.flow.engine import FailoverFlow
from failover_core.flow.hedging import Hedging, LatencyTracker

from ..conftest import FakeClock
from .fakes import HTTPError

HEDGE = 0.1  # seconds a racing test waits before hedging; the slow model takes far longer
SLOW = 3.0  # how long a slow model would take if nobody stopped listening
SLACK = 0.25  # scheduling slack on a busy two-core machine


@pytest.fixture
def hedging(clock: FakeClock) -> Hedging:
    """A fresh tracker and budget on the fake clock, installed for the process."""
    state = Hedging(LatencyTracker(), fc.HedgeBudget(clock=clock), clock=clock)
    _hedge.set_hedging(state)
    return state


def _flow(
    registry: fc.HealthRegistry,
    keys: tuple[str, ...] = ("a", "b", "c"),
    events: list[fc.FailoverEvent] | None = None,
    **options: Any,
) -> FailoverFlow:
    sink = events if events is not None else []
    policy = fc.FailoverPolicy.build(backoff=lambda n: 0.0, observer=sink.append, **options)
    return FailoverFlow(keys, policy, registry)


# -- options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, 0.5),
        (2, 2.0),
        (timedelta(milliseconds=250), 0.25),
        ("p95", fc.AdaptiveHedge(95.0)),
        (" P99.5 ", fc.AdaptiveHedge(99.5)),
        (fc.AdaptiveHedge(90, floor=0.5), fc.AdaptiveHedge(90, floor=0.5)),
        (None, None),
    ],
)
def test_hedge_after_takes_seconds_a_timedelta_or_a_percentile(value: Any, expected: Any) -> None:
    assert fc.FailoverPolicy.build(hedge_after=value).hedge_after == expected


@pytest.mark.parametrize("value", ["fast", "p100", "p0", "95", 0, -1.0, float("nan"), True])
def test_a_bad_hedge_after_is_refused_when_the_model_is_built(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        fc.FailoverPolicy.build(hedge_after=value)


def test_hedging_is_off_by_default_and_a_process_default_reaches_new_chains() -> None:
    assert fc.FailoverPolicy.build().hedge_after is None
    fc.set_failover_defaults(hedge_after="p90")
    assert fc.FailoverPolicy.build().hedge_after == fc.AdaptiveHedge(90.0)
    assert fc.FailoverPolicy.build(hedge_after=None).hedge_after is None
    fc.set_failover_defaults(hedge_after=None)
    assert fc.FailoverPolicy.build().hedge_after is None


# -- the policy objects ---------------------------------------------------------------


def test_the_adaptive_delay_waits_for_enough_samples_then_follows_the_percentile() -> None:
    tracker = LatencyTracker(size=100)
    adaptive = fc.AdaptiveHedge(95, floor=0.05, min_samples=20)
    for i in range(19):
        tracker.record("a", False, 0.1 + i / 1000)
    assert tracker.delay("a", False, adaptive) is None  # cold: never a guess
    for i in range(81):
        tracker.record("a", False, 0.1 if i < 76 else 2.0)  # 5 slow in 100
    assert tracker.delay("a", False, adaptive) == pytest.approx(0.118)
    tracker.record("a", False, 2.0)  # the oldest sample leaves the window
    assert tracker.delay("a", False, adaptive) == 2.0
    assert tracker.delay("a", True, adaptive) is None  # streams are timed apart from calls
    assert tracker.delay("b", False, adaptive) is None  # per model


def test_the_adaptive_delay_never_goes_below_its_floor() -> None:
    tracker = LatencyTracker()
    for _ in range(30):
        tracker.record("a", True, 0.001)
    assert tracker.delay("a", True, fc.AdaptiveHedge(95, floor=0.2)) == 0.2


def test_a_quiet_process_hedges_a_burst_of_slow_requests(clock: FakeClock) -> None:
    """Five slow requests in a row in a fresh process: five hedges (the bucket starts full)."""
    budget = fc.HedgeBudget(share=0.1, window=60.0, clock=clock, burst=10)
    hedged = 0
    for _ in range(5):
        budget.request()
        hedged += budget.try_hedge()
        clock.advance(1)
    assert hedged == 5
    assert budget.tokens() == pytest.approx(5.4)  # the first request found it full


def test_the_bucket_refills_with_a_share_of_requests(clock: FakeClock) -> None:
    budget = fc.HedgeBudget(share=0.1, window=60.0, clock=clock, burst=2)
    assert budget.try_hedge() and budget.try_hedge()
    assert not budget.try_hedge(), "the burst is spent"
    clock.advance(3600)  # time alone earns nothing: only requests refill it
    assert not budget.try_hedge()
    for _ in range(9):
        budget.request()
    assert not budget.try_hedge(), "nine tenths of a token"
    budget.request()
    assert budget.try_hedge(), "ten requests earn one hedge"
    assert not budget.try_hedge()


def test_a_busy_process_stays_within_the_share(clock: FakeClock) -> None:
    """At high traffic the long-run cap is the share: 10% of requests, burst included."""
    budget = fc.HedgeBudget(share=0.1, window=60.0, clock=clock, burst=10)
    hedged = 0
    for _ in range(60 * 100):  # 100 requests a second for a minute, every one slow
        budget.request()
        hedged += budget.try_hedge()
        clock.advance(0.01)
    assert hedged <= 600 and hedged >= 590
    assert budget.counts()[1] <= 0.1 * budget.counts()[0]


def test_the_window_holds_a_burst_per_window(clock: FakeClock) -> None:
    budget = fc.HedgeBudget(share=0.1, window=60.0, clock=clock, burst=3)
    for _ in range(30):
        budget.request()
    assert [budget.try_hedge() for _ in range(4)] == [True, True, True, False]
    assert budget.counts() == (30, 3)
    clock.advance(61)  # the window slid past all of it
    assert budget.counts() == (0, 0)
    assert not budget.try_hedge(), "the bucket is empty: only requests refill it"
    for _ in range(10):
        budget.request()
    assert budget.try_hedge()


@pytest.mark.parametrize("burst", [-1, float("inf"), float("nan")])
def test_a_bad_burst_is_refused(burst: float) -> None:
    with pytest.raises(ValueError, match="burst"):
        fc.HedgeBudget(burst=burst)


def test_a_zero_share_budget_never_hedges(clock: FakeClock) -> None:
    budget = fc.HedgeBudget(share=0.0, clock=clock)
    budget.request()
    assert not budget.try_hedge()


# -- the flow's decisions -------------------------------------------------------------


def test_a_won_hedge_serves_the_answer_and_benches_nobody(
    registry: fc.HealthRegistry, hedging: Hedging, clock: FakeClock
) -> None:
    events: list[fc.FailoverEvent] = []
    flow = _flow(registry, events=events, hedge_after=0.5)
    first = flow.start()
    assert flow.hedge_delay(streamed=False) == 0.5
    clock.advance(0.5)
    hedge = flow.hedge()
    assert hedge is not None and (hedge.key, hedge.number) == ("b", 1)
    clock.advance(0.2)
    flow.race_won(hedge=True)
    served = flow.succeeded()
    assert (served.model, served.hedged, served.failed_attempts) == ("b", True, 0)
    assert served.as_dict() == {"model": "b", "failed_attempts": 0, "hedged": True}
    assert [(e.reason, e.model, e.next_model) for e in events] == [
        ("hedge_started", first.key, "b"),
        ("hedge_won", "a", "b"),
    ]
    assert all(not e.benched and isinstance(e.error, fc.HedgeNotice) for e in events)
    assert registry.list() == [] and registry.store.items() == []
    # the slow loser's time counts (at least 0.7 s), the winner's own time from its start
    assert hedging.tracker.percentile("a", False, 50, 1) == pytest.approx(0.7)
    assert hedging.tracker.percentile("b", False, 50, 1) == pytest.approx(0.2)


def test_a_lost_hedge_leaves_the_answer_to_the_first_model_and_says_nothing_in_it(
    registry: fc.HealthRegistry, hedging: Hedging
) -> None:
    events: list[fc.FailoverEvent] = []
    flow = _flow(registry, events=events, hedge_after=0.5)
    flow.start()
    flow.hedge_delay(streamed=True)
    assert flow.hedge() is not None
    flow.race_won(hedge=False)
    served = flow.succeeded()
    assert (served.model, served.hedged) == ("a", False)
    assert served.as_dict() == {"model": "a", "failed_attempts": 0}
    assert [e.reason for e in events] == ["hedge_started", "hedge_lost"]
    assert registry.store.items() == []


def test_hedge_events_are_logged_at_info_not_as_warnings(
    registry: fc.HealthRegistry, hedging: Hedging, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="llm_failover")
    flow = _flow(registry, hedge_after=0.5)
    flow.start()
    flow.hedge_delay(streamed=False)
    flow.hedge()
    flow.race_won(hedge=False)
    assert [(r.levelname, r.failover["reason"]) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("INFO", "hedge_started"),
        ("INFO", "hedge_lost"),
    ]


def test_one_hedge_per_request(registry: fc.HealthRegistry, hedging: Hedging) -> None:
    flow = _flow(registry, hedge_after=0.5)
    flow.start()
    flow.hedge_delay(streamed=False)
    assert flow.hedge() is not None
    flow.race_failed(HTTPError(503), hedge=True)  # the hedge died; the first goes on
    assert flow.hedge() is None
    command = flow.failed(HTTPError(503))  # then the first fails too: retried, unhedged
    assert isinstance(command, fc.Sleep)
    assert isinstance(flow.slept(), fc.Attempt)
    assert flow.hedge_delay(streamed=False) is None


def test_no_hedge_to_a_benched_model_nor_to_one_another_request_is_probing(
    registry: fc.HealthRegistry, hedging: Hedging, clock: FakeClock
) -> None:
    registry.bench("b", timedelta(minutes=5))
    registry.bench("c", timedelta(seconds=1))
    clock.advance(2)  # c's bench is over: it is recovering, and its one probe is not ours
    flow = _flow(registry, keys=("a", "b", "c", "d"), hedge_after=0.5)
    flow.start()
    assert flow.hedge_delay(streamed=False) == 0.5
    hedge = flow.hedge()
    assert hedge is not None and hedge.key == "d"
    assert registry.store.get("c") is not None and registry.store.get("c").probe_until is None  # type: ignore[union-attr]


def test_no_hedge_when_every_later_model_is_benched(
    registry: fc.HealthRegistry, hedging: Hedging
) -> None:
    registry.bench("b", timedelta(minutes=5))
    flow = _flow(registry, keys=("a", "b"), hedge_after=0.5)
    flow.start()
    assert flow.hedge_delay(streamed=False) is None  # b is out of the live set
    flow2 = _flow(registry, keys=("a", "c"), hedge_after=0.5)
    flow2.start()
    registry.bench("c", timedelta(minutes=5))  # benched after the request started
    assert flow2.hedge_delay(streamed=False) == 0.5
    assert flow2.hedge() is None
    assert hedging.budget.counts()[1] == 0  # a hedge not started costs no budget


def test_no_hedge_after_a_request_specific_error(
    registry: fc.HealthRegistry, hedging: Hedging
) -> None:
    flow = _flow(registry, hedge_after=0.5)
    flow.start()
    command = flow.failed(HTTPError(400, "context_length_exceeded"))
    assert isinstance(command, fc.Attempt) and command.key == "b"
    assert flow.hedge_delay(streamed=False) is None


def test_no_hedge_from_the_last_model(registry: fc.HealthRegistry, hedging: Hedging) -> None:
    flow = _flow(registry, keys=("a",), hedge_after=0.5)
    flow.start()
    assert flow.hedge_delay(streamed=False) is None


def test_a_spent_budget_means_no_hedge(registry: fc.HealthRegistry, hedging: Hedging) -> None:
    _hedge.set_hedge_budget(fc.HedgeBudget(share=0.1, clock=hedging.clock, burst=1))
    served_hedges = 0
    for _ in range(20):
        flow = _flow(registry, hedge_after=0.5)
        flow.start()
        flow.hedge_delay(streamed=False)
        if flow.hedge() is not None:
            served_hedges += 1
            flow.race_won(hedge=False)
        flow.succeeded()
    assert served_hedges == 2  # 10% of 20 requests
    assert fc.get_hedge_budget().counts() == (20, 2)


def test_adaptive_hedging_waits_for_samples_of_the_model(
    registry: fc.HealthRegistry, hedging: Hedging, clock: FakeClock
) -> None:
    for i in range(25):
        flow = _flow(registry, hedge_after=fc.AdaptiveHedge(80, floor=0.01, min_samples=20))
        flow.start()
        delay = flow.hedge_delay(streamed=True)
        assert (delay is None) == (i < 20)
        clock.advance(1.0 if i % 5 == 0 else 0.1)
        flow.succeeded()
    assert delay == pytest.approx(1.0)  # 5 of 25 took a second: the 80th percentile


def test_a_failure_during_the_race_is_a_strike_and_the_hedge_carries_the_request(
    registry: fc.HealthRegistry, hedging: Hedging
) -> None:
    events: list[fc.FailoverEvent] = []
    flow = _flow(registry, events=events, hedge_after=0.5, max_retries=2)
    flow.start()
    flow.hedge_delay(streamed=False)
    flow.hedge()
    flow.race_failed(HTTPError(503), hedge=False)
    served = flow.succeeded()
    assert (served.model, served.hedged, served.failed_attempts) == ("b", True, 1)
    record = registry.store.get("a")
    assert record is not None and record.strikes == 1 and record.until is None
    assert [(e.reason, e.model, e.next_model) for e in events] == [
        ("hedge_started", "a", "b"),
        ("failed_in_race", "a", "b"),
    ]


def test_when_both_racers_fail_the_request_fails_over_past_them(
    registry: fc.HealthRegistry, hedging: Hedging
) -> None:
    flow = _flow(registry, hedge_after=0.5, max_retries=1)
    flow.start()
    flow.hedge_delay(streamed=False)
    flow.hedge()
    flow.race_failed(HTTPError(401), hedge=False)  # the first: auth-dead, benched now
    command = flow.failed(HTTPError(503))  # then the hedge, its last attempt
    assert isinstance(command, fc.Attempt) and command.key == "c"
    assert registry.is_benched("a") and registry.is_benched("b")


# -- the drivers ----------------------------------------------------------------------


@dataclass
class Slow:
    """A child that takes ``seconds`` (0: answers at once). Records calls, cancellations,
    closed streams, and ``done`` when its call or stream step returned."""

    key: str
    seconds: float = 0.0
    calls: int = 0
    cancelled: int = 0
    closed: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    fail: Exception | None = None

    def call(self) -> str:
        self.calls += 1
        time.sleep(self.seconds)
        self.done.set()
        if self.fail is not None:
            raise self.fail
        return f"{self.key}:ok"

    async def acall(self) -> str:
        self.calls += 1
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail is not None:
            raise self.fail
        return f"{self.key}:ok"

    def stream(self) -> Iterator[str]:
        self.calls += 1
        try:
            time.sleep(self.seconds)
            self.done.set()
            if self.fail is not None:
                raise self.fail
            yield from ("", f"{self.key}:", "x", "y")
        finally:
            self.closed += 1

    async def astream(self) -> AsyncIterator[str]:
        self.calls += 1
        try:
            await asyncio.sleep(self.seconds)
            if self.fail is not None:
                raise self.fail
            for chunk in ("", f"{self.key}:", "x", "y"):
                yield chunk
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.closed += 1


def _chain(
    *children: Slow, events: list[fc.FailoverEvent] | None = None, **options: Any
) -> fc.FailoverChain[Slow]:
    sink = events if events is not None else []
    options.setdefault("hedge_after", HEDGE)
    policy = fc.FailoverPolicy.build(backoff=lambda n: 0.0, observer=sink.append, **options)
    return fc.FailoverChain(list(children), policy)


async def _run(chain: fc.FailoverChain[Slow], path: str) -> tuple[str, fc.Served]:
    """One request on ``path``: the answer (a stream's text joined) and who served it."""
    if path == "invoke":
        return chain.invoke(lambda c: c.call())
    if path == "ainvoke":
        return await chain.ainvoke(lambda c: c.acall())
    if path == "stream":
        pairs = list(chain.stream(lambda c: c.stream(), str, commits=bool))
    else:
        pairs = [p async for p in chain.astream(lambda c: c.astream(), str, commits=bool)]
    return "".join(chunk for chunk, _ in pairs), pairs[0][1]


PATHS = ["invoke", "ainvoke", "stream", "astream"]
ANSWER = {"invoke": "b:ok", "ainvoke": "b:ok", "stream": "b:xy", "astream": "b:xy"}


@pytest.mark.parametrize("path", PATHS)
async def test_a_slow_first_model_is_raced_and_the_hedge_answers(
    registry: fc.HealthRegistry, path: str
) -> None:
    slow, fast = Slow("a", SLOW), Slow("b")
    events: list[fc.FailoverEvent] = []
    started = time.perf_counter()
    answer, served = await _run(_chain(slow, fast, events=events), path)
    assert HEDGE <= time.perf_counter() - started < HEDGE + SLACK
    assert answer == ANSWER[path]
    assert (served.model, served.hedged) == ("b", True)
    assert (slow.calls, fast.calls) == (1, 1)
    assert [e.reason for e in events] == ["hedge_started", "hedge_won"]
    assert registry.store.items() == []  # slower is not a failure: nobody benched


@pytest.mark.parametrize("path", ["ainvoke", "astream"])
async def test_the_async_loser_is_cancelled(registry: fc.HealthRegistry, path: str) -> None:
    slow, fast = Slow("a", SLOW), Slow("b")
    await _run(_chain(slow, fast), path)
    assert slow.cancelled == 1
    if path == "astream":
        assert slow.closed == 1


def test_the_sync_loser_stream_is_closed_when_its_step_returns(
    registry: fc.HealthRegistry,
) -> None:
    slow, fast = Slow("a", 0.4), Slow("b")
    chain = _chain(slow, fast, first_token_timeout=None)
    answer = "".join(chunk for chunk, _ in chain.stream(lambda c: c.stream(), str, commits=bool))
    assert answer == "b:xy" and slow.closed == 0  # abandoned, still waiting for its first byte
    assert slow.done.wait(2)
    deadline = time.monotonic() + 2
    while slow.closed == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slow.closed == 1


@pytest.mark.parametrize("path", PATHS)
async def test_a_first_model_faster_than_the_delay_is_never_hedged(
    registry: fc.HealthRegistry, path: str
) -> None:
    first, second = Slow("a"), Slow("b")
    events: list[fc.FailoverEvent] = []
    answer, served = await _run(_chain(first, second, events=events, hedge_after=0.5), path)
    assert answer.startswith("a:") and not served.hedged
    assert (first.calls, second.calls) == (1, 0) and events == []


@pytest.mark.parametrize("path", PATHS)
async def test_the_first_model_still_wins_when_it_answers_before_the_hedge(
    registry: fc.HealthRegistry, path: str
) -> None:
    first, hedge = Slow("a", HEDGE + 0.1), Slow("b", SLOW)
    events: list[fc.FailoverEvent] = []
    answer, served = await _run(_chain(first, hedge, events=events), path)
    assert answer.startswith("a:") and (served.model, served.hedged) == ("a", False)
    assert [e.reason for e in events] == ["hedge_started", "hedge_lost"]
    assert registry.store.items() == []
    if path.startswith("a"):
        assert hedge.cancelled == 1


@pytest.mark.parametrize("path", PATHS)
async def test_a_racer_failing_leaves_the_other_to_answer(
    registry: fc.HealthRegistry, path: str
) -> None:
    first, hedge = Slow("a", HEDGE + 0.15), Slow("b", HEDGE * 3, fail=HTTPError(503))
    first.fail = None
    hedge.seconds = 0.0  # the hedge fails at once; the first answers a little later
    events: list[fc.FailoverEvent] = []
    answer, served = await _run(_chain(first, hedge, events=events), path)
    assert answer.startswith("a:") and served.model == "a"
    assert [e.reason for e in events] == ["hedge_started", "failed_in_race"]
    assert events[1].model == "b" and events[1].next_model == "a"


@pytest.mark.parametrize("path", PATHS)
async def test_an_early_failure_is_ordinary_failover_not_a_hedge(
    registry: fc.HealthRegistry, path: str
) -> None:
    first, second = Slow("a", fail=HTTPError(401)), Slow("b")
    events: list[fc.FailoverEvent] = []
    answer, served = await _run(_chain(first, second, events=events), path)
    assert answer.startswith("b:") and not served.hedged
    assert [e.reason for e in events] == ["auth_dead"]


@pytest.mark.parametrize("path", ["invoke", "ainvoke"])
async def test_each_racer_keeps_its_own_timeout(registry: fc.HealthRegistry, path: str) -> None:
    first, hedge, third = Slow("a", SLOW), Slow("b", SLOW), Slow("c")
    events: list[fc.FailoverEvent] = []
    chain = _chain(first, hedge, third, events=events, timeout=HEDGE * 3)
    answer, _ = await _run(chain, path)
    assert answer == "c:ok"
    assert [e.reason for e in events] == ["hedge_started", "failed_in_race", "timeout"]


async def test_caller_cancellation_cancels_both_racers(registry: fc.HealthRegistry) -> None:
    slow, slower = Slow("a", SLOW), Slow("b", SLOW)
    chain = _chain(slow, slower)
    task = asyncio.ensure_future(chain.ainvoke(lambda c: c.acall()))
    await asyncio.sleep(HEDGE + 0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (slow.cancelled, slower.cancelled) == (1, 1)
    assert registry.store.items() == []


@dataclass
class Tied:
    """A racer that ends together with the other: the first answers as the hedge fails
    (in the same loop tick on an event loop; just before it, in threads)."""

    key: str
    hedge: bool
    gate: dict[str, Any]
    calls: int = 0

    def _wait(self) -> None:
        if self.hedge:
            self.gate["hedged"].set()
            assert self.gate["answered"].wait(2)
            time.sleep(0.02)  # the answer is queued first
            raise HTTPError(401)
        assert self.gate["hedged"].wait(2)
        self.gate["answered"].set()

    async def _await(self) -> None:
        if "future" not in self.gate:
            self.gate["future"] = asyncio.get_running_loop().create_future()
        if self.hedge:
            await asyncio.sleep(0)
            self.gate["future"].set_result(None)  # the first wakes in this same tick
            raise HTTPError(401)
        await self.gate["future"]

    def call(self) -> str:
        self.calls += 1
        self._wait()
        return f"{self.key}:ok"

    async def acall(self) -> str:
        self.calls += 1
        await self._await()
        return f"{self.key}:ok"

    def stream(self) -> Iterator[str]:
        self.calls += 1
        self._wait()
        yield from (f"{self.key}:", "x")

    async def astream(self) -> AsyncIterator[str]:
        self.calls += 1
        await self._await()
        for chunk in (f"{self.key}:", "x"):
            yield chunk


class _DriverLooksLate(queue.SimpleQueue):  # type: ignore[type-arg]
    """The sync driver's results queue, handing over a result only once the other racer's
    is queued too (once a hedge runs): the driver was busy while both finished."""

    hedged: threading.Event

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        if self.hedged.is_set() and threading.current_thread() is threading.main_thread():
            deadline = time.monotonic() + 2
            while self.qsize() < 1 and time.monotonic() < deadline:
                time.sleep(0.005)  # the other racer's result is queued behind this one
        return item


@pytest.mark.parametrize("path", PATHS)
async def test_a_racers_failure_in_the_same_tick_as_the_answer_is_acted_on(
    registry: fc.HealthRegistry, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both racers finish before the driver looks again: the hedge's 401 still benches
    its model and is reported, and the first model's answer is served."""
    gate: dict[str, Any] = {"hedged": threading.Event(), "answered": threading.Event()}
    _DriverLooksLate.hedged = gate["hedged"]
    monkeypatch.setattr(_race.queue, "SimpleQueue", _DriverLooksLate)
    first, hedge = Tied("a", False, gate), Tied("b", True, gate)
    events: list[fc.FailoverEvent] = []
    policy = fc.FailoverPolicy.build(
        backoff=lambda n: 0.0, observer=events.append, hedge_after=HEDGE
    )
    answer, served = await _run(fc.FailoverChain([first, hedge], policy), path)  # type: ignore[arg-type]
    assert answer.startswith("a:") and served.model == "a"
    assert registry.is_benched("b"), [(e.reason, e.model) for e in events]
    assert [e.reason for e in events] == ["hedge_started", "failed_in_race"]
    assert events[1].model == "b" and events[1].benched
