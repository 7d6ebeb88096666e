"""The drivers: sync, async and streaming, with fake entries and a fake clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

import failover_core as fc
from tests.conftest import FakeClock
from tests.core.fakes import FakeEntry, FakeStreamEntry, HTTPError, events_of

SECRET_PROMPT = "my social security number is 078-05-1120"
API_KEY = "sk-live-THISISASECRETKEY"


def chain_of(
    entries: Sequence[Any], clock: FakeClock, registry: fc.HealthRegistry, **options: Any
) -> tuple[fc.FailoverChain[Any], list[fc.FailoverEvent]]:
    events: list[fc.FailoverEvent] = []
    options.setdefault("observer", events.append)
    options.setdefault("backoff", lambda n: 0.1 * n)
    policy = fc.FailoverPolicy.build(**options)
    return fc.FailoverChain(
        entries, policy, registry, sleep=clock.sleep, asleep=clock.asleep
    ), events


# -- request/response --------------------------------------------------------------------


def test_invoke_retries_then_fails_over_without_real_sleeping(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("a/1", [HTTPError(503)]), FakeEntry("b/2")
    chain, events = chain_of([a, b], clock, registry)
    result, served = chain.invoke(lambda e: e.call())
    assert result == "b/2:ok"
    assert served == fc.Served("b/2", 1, failed_attempts=3)
    assert (a.calls, b.calls) == (3, 1)
    assert clock.slept == [pytest.approx(0.1), pytest.approx(0.2)]
    assert events_of(events) == [("a/1", "transient", 3, True, "b/2")]


async def test_ainvoke_mirrors_invoke(clock: FakeClock, registry: fc.HealthRegistry) -> None:
    a, b = FakeEntry("a/1", [HTTPError(429), "ok"]), FakeEntry("b/2")
    chain, events = chain_of([a, b], clock, registry)
    result, served = await chain.ainvoke(lambda e: e.acall())
    assert (result, served.failed_attempts) == ("a/1:ok", 1)
    assert b.calls == 0 and events == []
    assert clock.slept == [pytest.approx(0.1)]


def test_on_retry_hook_sees_each_sleep(clock: FakeClock, registry: fc.HealthRegistry) -> None:
    a = FakeEntry("a/1", [HTTPError(503), HTTPError(503), "ok"])
    chain, _ = chain_of([a], clock, registry)
    seen: list[fc.Sleep] = []
    chain.invoke(lambda e: e.call(), on_retry=seen.append)
    assert [(s.key, s.attempt, s.seconds) for s in seen] == [
        ("a/1", 1, pytest.approx(0.1)),
        ("a/1", 2, pytest.approx(0.2)),
    ]


def test_all_failing_raises_one_group_naming_the_count(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("a/1", [HTTPError(401)]), FakeEntry("b/2", [HTTPError(503)])
    chain, _ = chain_of([a, b], clock, registry, max_retries=2)
    with pytest.raises(fc.AllModelsFailedError) as info:
        chain.invoke(lambda e: e.call())
    assert "all 2 models in chain failed" in str(info.value)
    assert [fc.status_of(e) for e in info.value.exceptions] == [401, 503]
    assert info.value.kinds == (fc.ErrorKind.AUTH_DEAD, fc.ErrorKind.TRANSIENT)


def test_second_request_skips_the_benched_model(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("a/1", [HTTPError(401)]), FakeEntry("b/2")
    chain, _ = chain_of([a, b], clock, registry)
    chain.invoke(lambda e: e.call())
    chain.invoke(lambda e: e.call())
    assert (a.calls, b.calls) == (1, 2)
    clock.advance(5 * 60 + 1)
    chain.invoke(lambda e: e.call())
    assert a.calls == 2, "after the cooldown the model is tried again"


def test_health_is_shared_by_every_chain_in_the_process(clock: FakeClock) -> None:
    shared = fc.HealthRegistry(clock=clock)
    fc.set_health_registry(shared)
    a1, b1 = FakeEntry("a/1", [HTTPError(403)]), FakeEntry("b/2")
    first = fc.FailoverChain([a1, b1], fc.FailoverPolicy.build(), sleep=clock.sleep)
    first.invoke(lambda e: e.call())
    a2, c2 = FakeEntry("a/1"), FakeEntry("c/3")
    other = fc.FailoverChain([a2, c2], fc.FailoverPolicy.build(), sleep=clock.sleep)
    assert other.invoke(lambda e: e.call())[1].model == "c/3"
    assert a2.calls == 0 and fc.is_benched("a/1")


# -- cancellation ------------------------------------------------------------------------


def test_keyboard_interrupt_mid_call_stops_everything(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("a/1", [KeyboardInterrupt()]), FakeEntry("b/2")
    chain, events = chain_of([a, b], clock, registry)
    with pytest.raises(KeyboardInterrupt):
        chain.invoke(lambda e: e.call())
    assert b.calls == 0 and events == [] and registry.list() == []


async def test_cancellation_mid_call_is_not_a_failure(registry: fc.HealthRegistry) -> None:
    started = asyncio.Event()
    b = FakeEntry("b/2")

    async def call(entry: Any) -> str:
        if entry.key == "a/1":
            started.set()
            await asyncio.Event().wait()  # a provider that never answers
        return str(entry.call())

    events: list[fc.FailoverEvent] = []
    chain = fc.FailoverChain(
        [FakeEntry("a/1"), b], fc.FailoverPolicy.build(observer=events.append), registry
    )
    task = asyncio.create_task(chain.ainvoke(call))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.calls == 0 and events == [] and registry.list() == []
    assert registry.store.items() == [], "not even a strike is recorded"


async def test_cancellation_mid_backoff_stops_at_once(registry: fc.HealthRegistry) -> None:
    sleeping = asyncio.Event()

    async def asleep(seconds: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()  # a backoff that would never end on its own

    a, b = FakeEntry("a/1", [HTTPError(503)]), FakeEntry("b/2")
    events: list[fc.FailoverEvent] = []
    policy = fc.FailoverPolicy.build(observer=events.append)
    chain = fc.FailoverChain([a, b], policy, registry, asleep=asleep)
    task = asyncio.create_task(chain.ainvoke(lambda e: e.acall()))
    await sleeping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (a.calls, b.calls) == (1, 0)
    assert events == [] and registry.list() == []


# -- observer and logs -------------------------------------------------------------------


def test_a_raising_observer_does_not_break_the_request(
    clock: FakeClock, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    def observer(event: fc.FailoverEvent) -> None:
        raise RuntimeError("observer bug")

    a, b = FakeEntry("a/1", [HTTPError(401)]), FakeEntry("b/2")
    chain, _ = chain_of([a, b], clock, registry, observer=observer)
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        assert chain.invoke(lambda e: e.call())[0] == "b/2:ok"
    assert "observer" in caplog.text and "observer bug" in caplog.text


def test_logs_carry_the_seed_fields_but_never_the_prompt_or_key(
    clock: FakeClock, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    leaky = f"Incorrect API key provided: {API_KEY}. Prompt was: {SECRET_PROMPT}"
    a = FakeEntry("a/1", [HTTPError(401, message=leaky)])
    b = FakeEntry("b/2", [HTTPError(400, code="context_length_exceeded", message=leaky)])
    c = FakeEntry("c/3", [HTTPError(503, message=leaky)])
    chain, _ = chain_of([a, b, c], clock, registry, max_retries=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(fc.AllModelsFailedError) as info:
        chain.invoke(lambda e: e.call(), request=[{"role": "user", "content": SECRET_PROMPT}])
    records = [r for r in caplog.records if r.name == "llm_failover"]
    assert len(records) == 3 and all(r.levelno == logging.WARNING for r in records)
    for field in (
        "model=a/1",
        "kind=auth_dead",
        "status=401",
        "attempt=1",
        "benched=True",
        "cooldown=300.0",
        "until=",
        "next=b/2",
    ):
        assert field in records[0].getMessage()
    assert records[0].failover["next"] == "b/2"  # type: ignore[attr-defined]
    everything = caplog.text + str(info.value)
    assert SECRET_PROMPT not in everything and API_KEY not in everything


# -- streaming ---------------------------------------------------------------------------


def test_stream_fails_over_before_the_first_chunk(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = FakeStreamEntry("a/1", open_error=HTTPError(401))
    b = FakeStreamEntry("b/2", chunks=["x", "y"])
    chain, events = chain_of([a, b], clock, registry)
    out = list(chain.stream(lambda e: e.stream(), str))
    assert [c for c, _ in out] == ["x", "y"]
    assert {s.model for _, s in out} == {"b/2"}
    assert events_of(events) == [("a/1", "auth_dead", 1, True, "b/2")]
    assert a.closed == 1, "the failed stream was closed"


def test_stream_retries_the_same_model_before_the_first_chunk(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = FakeStreamEntry("a/1", open_error=HTTPError(503), open_failures=2)
    chain, events = chain_of([a, FakeStreamEntry("b/2")], clock, registry)
    out = list(chain.stream(lambda e: e.stream(), str))
    assert [c for c, _ in out] == ["a", "b", "c"]
    assert out[0][1] == fc.Served("a/1", 0, failed_attempts=2)
    assert a.opens == 3 and events == []
    assert len(clock.slept) == 2


def test_stream_failure_after_output_raises_typed_error_without_replay(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = FakeStreamEntry("a/1", chunks=["Hel", "lo", "!"], fail_after=2, fail_with=HTTPError(503))
    b = FakeStreamEntry("b/2")
    chain, events = chain_of([a, b], clock, registry)
    got: list[str] = []
    with pytest.raises(fc.StreamInterruptedError) as info:  # noqa: PT012 - consuming is the act
        for chunk, _ in chain.stream(lambda e: e.stream(), str):
            got.append(chunk)
    assert got == ["Hel", "lo"]
    assert (info.value.text, info.value.model, info.value.chunks) == ("Hello", "a/1", 2)
    assert fc.status_of(info.value.__cause__) == 503  # type: ignore[arg-type]
    assert b.opens == 0, "no replay on another model"
    assert events_of(events) == [("a/1", "transient", 1, False, None)], "one strike"


def test_held_back_chunks_still_allow_failover(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = FakeStreamEntry("a/1", chunks=["", "", "late"], fail_after=2, fail_with=HTTPError(401))
    b = FakeStreamEntry("b/2", chunks=["", "ok"])
    chain, _ = chain_of([a, b], clock, registry)
    out = [c for c, _ in chain.stream(lambda e: e.stream(), str, commits=bool)]
    assert out == ["", "ok"], "the empty header chunk from a/1 never reached the caller"


def test_closing_the_stream_early_closes_the_child(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = FakeStreamEntry("a/1", chunks=["1", "2", "3"])
    chain, _ = chain_of([a], clock, registry)
    stream = chain.stream(lambda e: e.stream(), str)
    assert next(stream)[0] == "1"
    stream.close()  # type: ignore[attr-defined]
    assert a.closed == 1 and registry.list() == []


async def test_astream_mirrors_stream(clock: FakeClock, registry: fc.HealthRegistry) -> None:
    a = FakeStreamEntry("a/1", open_error=HTTPError(503))
    b = FakeStreamEntry("b/2", chunks=["p", "q"], fail_after=1, fail_with=HTTPError(500))
    chain, events = chain_of([a, b], clock, registry, max_retries=2)
    got: list[tuple[str, str]] = []
    with pytest.raises(fc.StreamInterruptedError) as info:  # noqa: PT012 - consuming is the act
        async for chunk, served in chain.astream(lambda e: e.astream(), str):
            got.append((chunk, served.model))
    assert got == [("p", "b/2")]
    assert info.value.text == "p"
    assert events_of(events) == [
        ("a/1", "transient", 2, True, "b/2"),
        ("b/2", "transient", 1, False, None),
    ]
    assert (a.closed, b.closed) == (2, 1)


async def test_astream_cancellation_before_output_benches_nothing(
    registry: fc.HealthRegistry,
) -> None:
    async def never(entry: Any) -> Any:
        await asyncio.Event().wait()
        yield "never"  # pragma: no cover

    chain = fc.FailoverChain([FakeEntry("a/1")], fc.FailoverPolicy.build(), registry)

    async def consume() -> None:
        async for _ in chain.astream(never, str):
            pass  # pragma: no cover

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry.store.items() == []


# -- the herd ----------------------------------------------------------------------------


async def test_a_herd_spends_at_most_one_call_each_on_a_dead_model(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("a/1", [HTTPError(503)]), FakeEntry("b/2")
    chain, _ = chain_of([a, b], clock, registry)

    async def asleep(seconds: float) -> None:
        await asyncio.sleep(0)

    chain.asleep = asleep
    results = await asyncio.gather(*(chain.ainvoke(lambda e: e.acall()) for _ in range(100)))
    assert all(served.model == "b/2" for _, served in results)
    assert a.calls <= 100, f"{a.calls} calls reached the dead model"
    before = a.calls
    await asyncio.gather(*(chain.ainvoke(lambda e: e.acall()) for _ in range(100)))
    assert a.calls == before, "once benched, nobody calls it"


# -- construction ------------------------------------------------------------------------


def test_empty_and_duplicate_chains_are_refused() -> None:
    policy = fc.FailoverPolicy.build()
    with pytest.raises(fc.ChainConfigError, match="at least one model"):
        fc.FailoverChain([], policy)
    with pytest.raises(fc.ChainConfigError, match=r"duplicate model key.*a/1"):
        fc.FailoverChain([FakeEntry("a/1"), FakeEntry("b/2"), FakeEntry("a/1")], policy)


def test_nested_chains_are_flattened_and_dicts_give_keys() -> None:
    inner = (FakeEntry("b/2"), FakeEntry("c/3"))
    options: dict[str, Any] = {
        "model_type": object,
        "what": "things",
        "key_of": lambda m: f"auto/{m}",
        "make": lambda key, m: FakeEntry(key),
        "nested": lambda m: inner if m == "chain" else None,
    }
    entries = fc.build_entries(["a", "chain", "d"], **options)
    assert [e.key for e in entries] == ["auto/a", "b/2", "c/3", "auto/d"]
    assert [e.key for e in fc.build_entries({" x ": "a"}, **options)] == ["x"]
    with pytest.raises(TypeError, match="a list or a dict of things"):
        fc.build_entries("a,b", **options)
    with pytest.raises(fc.ChainConfigError, match="non-empty string"):
        fc.build_entries({"": "a"}, **options)


def test_cooldown_given_in_seconds_or_timedelta(registry: fc.HealthRegistry) -> None:
    assert fc.FailoverPolicy.build(cooldown=90).cooldown == timedelta(seconds=90)
    assert fc.FailoverPolicy.build(cooldown=timedelta(minutes=2)).cooldown.seconds == 120


def test_on_event_forwards_each_decision_after_the_observer(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("a/1", [HTTPError(400)]), FakeEntry("b/2")
    chain, observed = chain_of([a, b], clock, registry)
    forwarded: list[fc.FailoverEvent] = []
    chain.invoke(lambda e: e.call(), on_event=forwarded.append)
    assert forwarded == observed and len(forwarded) == 1


async def test_async_drivers_await_coroutine_hooks(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = FakeStreamEntry("a/1", open_error=HTTPError(503))
    chain, _ = chain_of([a, FakeStreamEntry("b/2")], clock, registry, max_retries=2)
    seen: list[str] = []

    async def on_event(event: fc.FailoverEvent) -> None:
        await asyncio.sleep(0)
        seen.append(f"event:{event.model}")

    async def on_retry(command: fc.Sleep) -> None:
        seen.append(f"retry:{command.attempt}")

    out = [
        c
        async for c, _ in chain.astream(
            lambda e: e.astream(), str, on_retry=on_retry, on_event=on_event
        )
    ]
    assert out == ["a", "b", "c"]
    assert seen == ["retry:1", "event:a/1"]


async def test_after_a_cooldown_one_request_probes_while_the_others_fail_over(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("a/1", [HTTPError(503)]), FakeEntry("b/2")
    chain, _ = chain_of([a, b], clock, registry, cooldown=300, max_retries=1)
    registry.bench_now("a/1", timedelta(seconds=60))
    clock.advance(61)  # the bench is over; a/1 still fails
    results = await asyncio.gather(*(chain.ainvoke(lambda e: e.acall()) for _ in range(50)))
    assert a.calls == 1, "exactly one probe"
    assert all(served.model == "b/2" for _, served in results)
    until = registry.benched_until("a/1")
    assert until is not None and until.timestamp() == clock.now + 120, "cooldown doubled"


def test_a_successful_probe_brings_the_model_back_for_everyone(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("a/1"), FakeEntry("b/2")
    chain, _ = chain_of([a, b], clock, registry)
    registry.bench_now("a/1", timedelta(seconds=60))
    clock.advance(61)
    assert [chain.invoke(lambda e: e.call())[1].model for _ in range(3)] == ["a/1"] * 3


def test_a_request_specific_error_on_a_probe_frees_the_lease(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = FakeEntry("a/1", [HTTPError(400, code="context_length_exceeded"), "ok"])
    chain, _ = chain_of([a, FakeEntry("b/2")], clock, registry)
    registry.bench_now("a/1", timedelta(seconds=60))
    clock.advance(61)
    assert chain.invoke(lambda e: e.call())[1].model == "b/2"
    assert chain.invoke(lambda e: e.call())[1].model == "a/1", "the next request probes"


def test_a_probe_is_a_single_call(clock: FakeClock, registry: fc.HealthRegistry) -> None:
    a, b = FakeEntry("a/1", [HTTPError(503)]), FakeEntry("b/2")
    chain, events = chain_of([a, b], clock, registry, max_retries=3)
    registry.bench_now("a/1", timedelta(seconds=60))
    clock.advance(61)
    assert chain.invoke(lambda e: e.call())[1].model == "b/2"
    assert a.calls == 1 and clock.slept == [], "no retries, no backoff on a failed probe"
    assert events[0].benched and events[0].attempt == 1


def test_a_registry_that_is_not_one_is_refused() -> None:
    with pytest.raises(TypeError, match="registry must be a HealthRegistry"):
        fc.FailoverChain([FakeEntry("a/1")], fc.FailoverPolicy.build(), registry="redis")  # type: ignore[arg-type]
