"""Reliability (issue 12) without Redis: exact health evidence, contained user callables,
async observers, bounded durations, one-strike stream failures, probe leases on cancel."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import failover_core as fc
from tests.conftest import FakeClock
from tests.core.fakes import FakeEntry, FakeStreamEntry, HTTPError

COOL = timedelta(minutes=5)
PROVIDER_TEXT = "prompt echo: my key is sk-live-SECRETSECRET"


def chain_of(
    entries: Sequence[Any], clock: FakeClock, registry: fc.HealthRegistry, **options: Any
) -> fc.FailoverChain[Any]:
    options.setdefault("backoff", lambda n: 0.1)
    policy = fc.FailoverPolicy.build(**options)
    return fc.FailoverChain(entries, policy, registry, sleep=clock.sleep, asleep=clock.asleep)


class CountingStore(fc.MemoryHealthStore):
    """The in-process store, counting writes."""

    def __init__(self) -> None:
        super().__init__()
        self.updates = 0

    def update(self, key: str, fn: Any) -> fc.HealthRecord | None:
        self.updates += 1
        return super().update(key, fn)


# -- 1. a success clears only the failures it has evidence about ---------------------------


def test_a_manual_bench_made_while_a_request_is_in_flight_survives_its_success(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    def call(entry: FakeEntry) -> str:
        clock.advance(1)  # the request is in flight...
        fc.bench_model("a/1", timedelta(minutes=30))  # ...when an operator benches the model
        clock.advance(1)
        return entry.call()

    chain = chain_of([FakeEntry("a/1"), FakeEntry("b/2")], clock, registry)
    assert chain.invoke(call)[1].model == "a/1"
    assert fc.is_benched("a/1"), "the operator's bench stands"
    [bench] = fc.list_benched()
    assert bench.manual


def test_an_automatic_bench_made_during_the_attempt_is_not_erased(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    def call(entry: FakeEntry) -> str:
        clock.advance(1)
        registry.bench_now("a/1", COOL)  # another request found it dead meanwhile
        return entry.call()

    chain_of([FakeEntry("a/1")], clock, registry).invoke(call)
    assert registry.is_benched("a/1")


def test_a_manual_bench_in_force_is_not_cleared_even_by_a_best_effort_success(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    fc.bench_model("a/1", timedelta(minutes=30))
    clock.advance(1)
    chain = chain_of([FakeEntry("a/1")], clock, registry)
    assert chain.invoke(lambda e: e.call())[1].model == "a/1", "all benched: tried anyway"
    assert fc.is_benched("a/1")


def test_a_success_clears_failures_older_than_its_attempt_and_keeps_newer_strikes(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    registry.record_failure("a/1", COOL, exhausted=False, strike_limit=3)
    clock.advance(1)
    started = registry.now()
    clock.advance(1)
    registry.record_failure("a/1", COOL, exhausted=False, strike_limit=3)
    registry.record_success("a/1", started=started)
    record = registry.store.get("a/1")
    assert record is not None and record.strikes == 1, "the strike after it started stays"
    registry.record_success("a/1", started=registry.now())
    assert registry.store.get("a/1") is None


def test_a_success_with_nothing_to_clear_writes_nothing(clock: FakeClock) -> None:
    store = CountingStore()
    registry = fc.HealthRegistry(store, clock=clock)
    chain = chain_of([FakeEntry("a/1")], clock, registry)
    for _ in range(10):
        chain.invoke(lambda e: e.call())
    assert store.updates == 0


# -- 4. durations past what datetime holds are refused up front ----------------------------


@pytest.mark.parametrize(
    "cooldown", [timedelta.max, 10**20, float("inf"), "3000000d", 99999999999999]
)
def test_a_cooldown_past_the_limit_is_refused_at_construction(cooldown: Any) -> None:
    with pytest.raises(ValueError, match=r"cooldown must be at most 3650 days \(315360000 s\)"):
        fc.FailoverPolicy.build(cooldown=cooldown)
    with pytest.raises(ValueError, match="at most 3650 days"):
        fc.set_failover_defaults(cooldown=cooldown)


def test_the_longest_cooldown_accepted_benches_without_error(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    longest = timedelta(days=3650)
    policy = fc.FailoverPolicy.build(cooldown=longest, transient_cooldown=longest, max_retries=1)
    chain = fc.FailoverChain([FakeEntry("a/1", [HTTPError(503)]), FakeEntry("b/2")], policy)
    assert chain.invoke(lambda e: e.call())[1].model == "b/2"
    [bench] = fc.list_benched()
    assert bench.until.year >= 2036


def test_a_manual_bench_past_the_limit_is_refused(registry: fc.HealthRegistry) -> None:
    with pytest.raises(ValueError, match="at most 3650 days"):
        fc.bench_model("a/1", timedelta(days=3_000_000))
    far = datetime(9999, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="at most 3650 days from now"):
        fc.bench_model("a/1", far)
    assert fc.list_benched() == [], "nothing stored"


# -- issue 15: one duration parser, one message style --------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(10, 10), (2.5, 2.5), (timedelta(minutes=2), 120), ("90s", 90), ("5m", 300),
     ("1h", 3600), ("2d", 172800), ("1h30m", 5400), (" 45 ", 45)],
)  # fmt: skip
def test_every_option_takes_the_same_durations(
    value: Any, seconds: float, registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    assert fc.FailoverPolicy.build(cooldown=value).cooldown.total_seconds() == seconds
    fc.set_failover_defaults(cooldown=value)
    assert fc.get_failover_defaults().cooldown.total_seconds() == seconds
    until = fc.bench_model("a/b", value)
    assert until.timestamp() == pytest.approx(clock.now + seconds)


@pytest.mark.parametrize("value", [-5, timedelta(seconds=-5), "-5s"])
def test_a_negative_duration_says_so_in_seconds(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^cooldown must not be negative, got -5 s$"):
        fc.FailoverPolicy.build(cooldown=value)


def test_a_duration_that_is_not_one_is_refused_plainly() -> None:
    with pytest.raises(ValueError, match=r"cooldown must be seconds or a duration such as"):
        fc.FailoverPolicy.build(cooldown="5 minutes")
    with pytest.raises(TypeError, match="cooldown must be seconds, a timedelta or a string"):
        fc.FailoverPolicy.build(cooldown=True)
    with pytest.raises(ValueError, match="cooldown must be a number of seconds, got NaN"):
        fc.FailoverPolicy.build(cooldown=math.nan)


# -- 5. a backoff that breaks falls back to the default -------------------------------------


def _boom(attempt: int) -> float:
    raise ZeroDivisionError("backoff bug")


@pytest.mark.parametrize(
    "backoff",
    [_boom, lambda n: math.nan, lambda n: math.inf, lambda n: None, lambda n: -1.0,
     lambda n: "soon"],
)  # fmt: skip
def test_a_backoff_that_raises_or_answers_nonsense_falls_back_to_the_default(
    backoff: Any, clock: FakeClock, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    a = FakeEntry("a/1", [HTTPError(503), HTTPError(503), "ok"])
    chain = chain_of([a], clock, registry, backoff=backoff)
    with caplog.at_level(logging.DEBUG, logger="llm_failover"):
        assert chain.invoke(lambda e: e.call())[0] == "a/1:ok"
    assert len(clock.slept) == 2
    assert all(0 <= s <= 0.4 for s in clock.slept), "the default backoff's range"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "logged once"
    assert "backoff" in errors[0].getMessage() and "default backoff" in errors[0].getMessage()


# -- 6. async observers are awaited on async paths ------------------------------------------


async def test_an_async_observer_is_awaited_on_every_async_path(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    seen: list[tuple[str, str]] = []

    async def observer(event: fc.FailoverEvent) -> None:
        await asyncio.sleep(0)
        seen.append((event.model, event.reason))

    a = FakeEntry("a/1", [HTTPError(401)])
    chain = chain_of([a, FakeEntry("b/2")], clock, registry, observer=observer)
    await chain.ainvoke(lambda e: e.acall())
    s = FakeStreamEntry("s/1", chunks=["x", "y"], fail_after=1, fail_with=HTTPError(503))
    stream_chain = chain_of([s], clock, registry, observer=observer)
    with pytest.raises(fc.StreamInterruptedError):
        async for _ in stream_chain.astream(lambda e: e.astream(), str):
            pass
    assert seen == [("a/1", "auth_dead"), ("s/1", "stream_interrupted")]


def test_an_async_observer_runs_to_completion_on_a_sync_path(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    seen: list[str] = []

    async def observer(event: fc.FailoverEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.model)

    chain = chain_of([FakeEntry("a/1", [HTTPError(401)]), FakeEntry("b/2")], clock, registry)
    chain.policy = fc.FailoverPolicy.build(observer=observer)
    chain.invoke(lambda e: e.call())
    assert seen == ["a/1"]


async def test_an_async_observer_that_raises_is_contained(
    clock: FakeClock, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    async def observer(event: fc.FailoverEvent) -> None:
        raise RuntimeError("async observer bug")

    chain = chain_of(
        [FakeEntry("a/1", [HTTPError(401)]), FakeEntry("b/2")], clock, registry, observer=observer
    )
    assert (await chain.ainvoke(lambda e: e.acall()))[0] == "b/2:ok"
    assert "async observer bug" in caplog.text


# -- 7. an observer's failure is logged without the provider's error text -------------------


def test_an_observer_failure_is_logged_without_the_chained_provider_error(
    clock: FakeClock, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    def observer(event: fc.FailoverEvent) -> None:
        raise KeyError("observer bug")

    def reraises(event: fc.FailoverEvent) -> None:
        raise event.error

    for hook in (observer, reraises):
        a = FakeEntry("a/1", [HTTPError(401, message=PROVIDER_TEXT)])
        chain = chain_of([a, FakeEntry("b/2")], clock, registry, observer=hook)
        with caplog.at_level(logging.DEBUG, logger="llm_failover"):
            assert chain.invoke(lambda e: e.call())[0] == "b/2:ok"
        registry.reset()
    assert "observer bug" in caplog.text and "reraises" in caplog.text
    assert "sk-live-SECRETSECRET" not in caplog.text
    assert "prompt echo" not in caplog.text


def test_a_broken_observer_is_logged_once_not_per_event(
    clock: FakeClock, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    def observer(event: fc.FailoverEvent) -> None:
        raise RuntimeError("observer bug")

    chain = chain_of([FakeEntry("a/1", [HTTPError(401)]), FakeEntry("b/2")], clock, registry)
    chain.policy = fc.FailoverPolicy.build(observer=observer)
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        for _ in range(5):
            registry.reset()
            chain.invoke(lambda e: e.call())
    assert sum("observer bug" in r.getMessage() for r in caplog.records) == 1


# -- 9. one mid-stream failure is one strike ------------------------------------------------


def test_one_mid_stream_failure_is_one_strike_not_a_bench(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    def stream_once() -> None:
        s = FakeStreamEntry("s/1", chunks=["x", "y"], fail_after=1, fail_with=HTTPError(503))
        chain = chain_of([s], clock, registry, max_retries=3)
        with pytest.raises(fc.StreamInterruptedError):  # noqa: PT012 - consuming is the act
            for _ in chain.stream(lambda e: e.stream(), str):
                clock.advance(1)  # output arrives after the attempt started

    stream_once()
    assert not registry.is_benched("s/1")
    stream_once()
    assert not registry.is_benched("s/1")
    stream_once()
    assert registry.is_benched("s/1"), "max_retries strikes in a row bench it"


# -- 10. a cancelled probe gives its lease back ---------------------------------------------


def _recovering(registry: fc.HealthRegistry, clock: FakeClock) -> None:
    registry.bench_now("a/1", timedelta(seconds=60))
    clock.advance(61)  # the bench is over: the next request probes it


async def test_a_cancelled_probe_releases_its_lease(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    _recovering(registry, clock)
    started = asyncio.Event()

    async def hang(entry: FakeEntry) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    chain = chain_of([FakeEntry("a/1"), FakeEntry("b/2")], clock, registry)
    task = asyncio.create_task(chain.ainvoke(hang))
    await started.wait()
    assert registry.enter("a/1") == "closed", "the lease is held while it probes"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry.enter("a/1") == "probe", "released: the next request probes at once"


async def test_a_cancelled_streaming_probe_releases_its_lease(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    _recovering(registry, clock)

    async def hang(entry: FakeStreamEntry) -> Any:
        await asyncio.Event().wait()
        yield "never"

    chain = chain_of([FakeStreamEntry("a/1"), FakeStreamEntry("b/2")], clock, registry)

    async def consume() -> None:
        async for _ in chain.astream(hang, str):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry.enter("a/1") == "probe"


def test_a_streaming_probe_stopped_early_by_its_consumer_releases_its_lease(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    _recovering(registry, clock)
    chain = chain_of([FakeStreamEntry("a/1"), FakeStreamEntry("b/2")], clock, registry)
    stream = chain.stream(lambda e: e.stream(), str)
    assert next(stream)[1].model == "a/1"  # the probe is streaming
    assert registry.enter("a/1") == "closed"
    stream.close()  # type: ignore[attr-defined]  # the consumer stops: no verdict either way
    assert registry.enter("a/1") == "probe"


def test_an_interrupted_sync_probe_releases_its_lease(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    _recovering(registry, clock)
    chain = chain_of([FakeEntry("a/1", [KeyboardInterrupt()]), FakeEntry("b/2")], clock, registry)
    with pytest.raises(KeyboardInterrupt):
        chain.invoke(lambda e: e.call())
    assert registry.enter("a/1") == "probe"


# -- 3. a store that hands back garbage never breaks a request ------------------------------


class GarbageStore(fc.MemoryHealthStore):
    """A custom store whose records were written by someone else, badly."""

    def get(self, key: str) -> fc.HealthRecord | None:
        return fc.HealthRecord(until="abc")  # type: ignore[arg-type]

    def items(self) -> list[tuple[str, fc.HealthRecord]]:
        return [("a/1", fc.HealthRecord(until=math.inf)), ("b/2", fc.HealthRecord(until=1e300))]


def test_malformed_records_from_any_store_read_as_absent_and_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = fc.HealthRegistry(GarbageStore())
    chain = fc.FailoverChain([FakeEntry("a/1")], fc.FailoverPolicy.build(), registry)
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        for _ in range(3):
            assert chain.invoke(lambda e: e.call())[0] == "a/1:ok"
        assert registry.list() == []
        assert registry.list() == []
    bad = [r for r in caplog.records if "malformed health record" in r.getMessage()]
    assert len(bad) == 3, "one line per key and problem: until 'abc', inf, 1e300"


def test_both_adapters_take_duration_strings_and_say_the_same_thing_about_bad_ones() -> None:
    pytest.importorskip("langchain_failover")
    pytest.importorskip("llamaindex_failover")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from llama_index.core.llms import MockLLM

    from langchain_failover import FailoverChatModel
    from llamaindex_failover import FailoverLLM

    chat = FailoverChatModel(models={"a/b": FakeListChatModel(responses=["x"])}, cooldown="5m")
    assert chat.invoke("hi").content == "x"
    llm = FailoverLLM(llms={"a/b": MockLLM()}, cooldown="90s")
    assert llm.complete("hi").text
    with pytest.raises(ValueError, match="cooldown must not be negative, got -5 s"):
        FailoverChatModel(models={"a/b": FakeListChatModel(responses=["x"])}, cooldown=-5)
    with pytest.raises(ValueError, match="cooldown must be at most 3650 days"):
        FailoverLLM(llms={"a/b": MockLLM()}, cooldown="3000000d")


async def test_an_async_observer_on_a_sync_call_inside_a_running_loop_is_skipped_and_logged(
    clock: FakeClock, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    async def observer(event: fc.FailoverEvent) -> None:
        raise AssertionError("cannot be awaited here")

    chain = chain_of(
        [FakeEntry("a/1", [HTTPError(401)]), FakeEntry("b/2")], clock, registry, observer=observer
    )
    with caplog.at_level(logging.ERROR, logger="llm_failover"):
        assert chain.invoke(lambda e: e.call())[0] == "b/2:ok"  # a sync call from async code
    assert "use the async API" in caplog.text
