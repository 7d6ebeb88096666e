"""The decision engine driven step by step, with no I/O and no sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
import tenacity

import failover_core as fc
from failover_core import Attempt, GiveUp, Sleep
from tests.conftest import FakeClock
from tests.core.fakes import HTTPError, events_of


def make_flow(
    registry: fc.HealthRegistry, keys: tuple[str, ...] = ("a/1", "b/2"), **options: object
) -> tuple[fc.FailoverFlow, list[fc.FailoverEvent]]:
    events: list[fc.FailoverEvent] = []
    options.setdefault("observer", events.append)
    policy = fc.FailoverPolicy.build(**options)  # type: ignore[arg-type]
    return fc.FailoverFlow(keys, policy, registry, request="the request"), events


def test_first_attempt_success_reports_who_served(registry: fc.HealthRegistry) -> None:
    flow, events = make_flow(registry)
    assert flow.start() == Attempt(index=0, key="a/1", number=1)
    assert flow.succeeded() == fc.Served(model="a/1", index=0, failed_attempts=0)
    assert events == []


def test_transient_error_sleeps_the_backoff_then_retries_the_same_entry(
    registry: fc.HealthRegistry,
) -> None:
    flow, events = make_flow(registry, backoff=lambda n: 0.25 * n)
    flow.start()
    command = flow.failed(HTTPError(503))
    assert isinstance(command, Sleep)
    assert (command.seconds, command.key, command.attempt) == (0.25, "a/1", 1)
    assert flow.slept() == Attempt(index=0, key="a/1", number=2)
    assert flow.succeeded() == fc.Served("a/1", 0, failed_attempts=1)
    assert not registry.is_benched("a/1")
    assert events == [], "a retry is not a failover decision, as in the seed"


def test_exhausted_retries_bench_the_entry_and_move_on(registry: fc.HealthRegistry) -> None:
    flow, events = make_flow(registry, max_retries=3, backoff=lambda n: 0)
    flow.start()
    for _ in range(2):
        assert isinstance(flow.failed(HTTPError(503)), Sleep)
        flow.slept()
    assert flow.failed(HTTPError(503)) == Attempt(index=1, key="b/2", number=1)
    assert registry.is_benched("a/1")
    assert events_of(events) == [("a/1", "transient", 3, True, "b/2")]
    assert events[0].benched_for == timedelta(seconds=8)  # a transient bench starts short
    assert events[0].request == "the request"


def test_request_specific_error_moves_on_without_bench(registry: fc.HealthRegistry) -> None:
    flow, events = make_flow(registry)
    flow.start()
    error = HTTPError(400, code="context_length_exceeded")
    assert flow.failed(error) == Attempt(index=1, key="b/2", number=1)
    assert not registry.is_benched("a/1")
    assert events_of(events) == [("a/1", "request_specific", 1, False, "b/2")]
    assert events[0].error is error


def test_auth_dead_error_benches_at_once(registry: fc.HealthRegistry) -> None:
    flow, events = make_flow(registry, cooldown=60)
    flow.start()
    assert flow.failed(HTTPError(401)) == Attempt(index=1, key="b/2", number=1)
    assert registry.is_benched("a/1")
    assert events_of(events) == [("a/1", "auth_dead", 1, True, "b/2")]
    assert events[0].benched_for == timedelta(seconds=60)


def test_unknown_errors_are_retried_like_transient(registry: fc.HealthRegistry) -> None:
    unknown = [lambda exc: fc.ErrorKind.UNKNOWN]  # only a rule says "unknown" now
    flow, events = make_flow(registry, max_retries=2, backoff=lambda n: 0, rules=unknown)
    flow.start()
    assert isinstance(flow.failed(RuntimeError("?")), Sleep)
    flow.slept()
    flow.failed(RuntimeError("?"))
    assert events_of(events) == [("a/1", "unknown", 2, True, "b/2")]


def test_all_failed_gives_up_with_every_cause(registry: fc.HealthRegistry) -> None:
    flow, events = make_flow(registry, max_retries=1)
    flow.start()
    first, second = HTTPError(401), HTTPError(400)
    flow.failed(first)
    command = flow.failed(second)
    assert isinstance(command, GiveUp)
    error = command.error
    assert isinstance(error, ExceptionGroup)  # noqa: F821 - the tests run on 3.11+
    assert error.exceptions == (first, second)
    assert error.models == ("a/1", "b/2")
    assert "all 2 models in chain failed" in str(error)
    assert events[-1].next_model is None


def test_benched_entries_are_skipped(registry: fc.HealthRegistry) -> None:
    registry.bench_now("a/1", timedelta(minutes=1))
    flow, _ = make_flow(registry)
    assert flow.start() == Attempt(index=1, key="b/2", number=1)


def test_all_benched_means_try_all_anyway(registry: fc.HealthRegistry) -> None:
    registry.bench_now("a/1", timedelta(minutes=1))
    registry.bench_now("b/2", timedelta(minutes=1))
    flow, _ = make_flow(registry, max_retries=2, backoff=lambda n: 0)
    assert flow.start() == Attempt(index=0, key="a/1", number=1)
    assert isinstance(flow.failed(HTTPError(503)), Sleep), "retries still apply"
    assert flow.slept() == Attempt(index=0, key="a/1", number=2)
    assert flow.succeeded().model == "a/1"
    assert not registry.is_benched("a/1"), "success clears the bench"


def test_bench_by_another_request_during_backoff_stops_the_retries(
    registry: fc.HealthRegistry,
) -> None:
    flow, events = make_flow(registry, backoff=lambda n: 0)
    flow.start()
    assert isinstance(flow.failed(HTTPError(503)), Sleep)
    registry.bench_now("a/1", timedelta(minutes=1))  # another request saw a 401
    assert flow.slept() == Attempt(index=1, key="b/2", number=1)
    assert events_of(events) == [("a/1", "transient", 1, True, "b/2")]
    assert events[0].reason == "benched_elsewhere"


def test_failures_from_concurrent_requests_add_up_to_a_bench(
    registry: fc.HealthRegistry,
) -> None:
    flows = [make_flow(registry, max_retries=3, backoff=lambda n: 0)[0] for _ in range(3)]
    for flow in flows:
        flow.start()
    assert isinstance(flows[0].failed(HTTPError(503)), Sleep)
    assert isinstance(flows[1].failed(HTTPError(503)), Sleep)
    assert flows[2].failed(HTTPError(503)) == Attempt(1, "b/2", 1), "third strike benches"
    assert registry.is_benched("a/1")
    assert flows[0].slept() == Attempt(1, "b/2", 1)
    assert flows[1].slept() == Attempt(1, "b/2", 1)


def test_next_entry_benched_meanwhile_is_skipped(registry: fc.HealthRegistry) -> None:
    flow, events = make_flow(registry, keys=("a/1", "b/2", "c/3"))
    flow.start()
    registry.bench_now("b/2", timedelta(minutes=1))
    assert flow.failed(HTTPError(400)) == Attempt(index=2, key="c/3", number=1)
    assert events[0].next_model == "c/3"


def test_remaining_entries_all_benched_are_still_tried(registry: fc.HealthRegistry) -> None:
    flow, _ = make_flow(registry)
    flow.start()
    registry.bench_now("b/2", timedelta(minutes=1))
    assert flow.failed(HTTPError(400)) == Attempt(index=1, key="b/2", number=1)


def test_max_retries_below_one_means_one(registry: fc.HealthRegistry) -> None:
    flow, _ = make_flow(registry, max_retries=0)
    flow.start()
    assert flow.failed(HTTPError(503)) == Attempt(index=1, key="b/2", number=1)


def test_stream_interrupted_after_output_is_typed_and_not_failed_over(
    registry: fc.HealthRegistry,
) -> None:
    flow, events = make_flow(registry)
    flow.start()
    flow.succeeded()
    error = flow.interrupted(HTTPError(503), "partial text", chunks=2)
    assert isinstance(error, fc.StreamInterruptedError)
    assert (error.model, error.text, error.chunks, error.kind) == (
        "a/1",
        "partial text",
        2,
        fc.ErrorKind.TRANSIENT,
    )
    assert not registry.is_benched("a/1"), "one strike, like any failed attempt"
    assert events_of(events) == [("a/1", "transient", 1, False, None)]


def test_chain_rules_override_the_table(registry: fc.HealthRegistry) -> None:
    def teapot(exc: BaseException) -> fc.ErrorKind | None:
        return fc.ErrorKind.AUTH_DEAD if "teapot" in str(exc) else None

    flow, _ = make_flow(registry, rules=[teapot])
    flow.start()
    flow.failed(HTTPError(503, message="I am a teapot"))
    assert registry.is_benched("a/1")


def test_default_backoff_is_full_jitter_doubling_and_capped() -> None:
    for attempt, cap in [(1, 0.2), (2, 0.4), (3, 0.8), (7, 10.0), (12, 10.0)]:
        delays = [fc.default_backoff(attempt) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2, "spread over the whole range"


def test_default_backoff_honours_retry_after_up_to_the_cap() -> None:
    assert fc.default_backoff(1, HTTPError(429, headers={"retry-after": "2"})) == 2.0
    assert fc.default_backoff(1, HTTPError(429, headers={"retry-after": "60"})) == 10.0
    assert fc.default_backoff(1, HTTPError(429, headers={"retry-after-ms": "150"})) == 0.15
    assert fc.default_backoff(1, HTTPError(400, headers={"retry-after": "5"})) <= 0.2


def test_backoff_takes_timedeltas_and_tenacity_waits(registry: fc.HealthRegistry) -> None:
    policy = fc.FailoverPolicy.build(backoff=lambda n: timedelta(milliseconds=100 * n))
    assert policy.delay(3, HTTPError(503)) == pytest.approx(0.3)
    policy = fc.FailoverPolicy.build(backoff=tenacity.wait_exponential(multiplier=1, max=5))
    assert [policy.delay(n, HTTPError(503)) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    policy = fc.FailoverPolicy.build(backoff=tenacity.wait_fixed(0.5) + tenacity.wait_fixed(1))
    assert policy.delay(1, HTTPError(503)) == 1.5


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(TypeError, match="backoff must be callable"):
        fc.FailoverPolicy.build(backoff=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="observer must be callable"):
        fc.FailoverPolicy.build(observer="print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_retries must be an int"):
        fc.FailoverPolicy.build(max_retries="3")  # type: ignore[arg-type]


def test_fake_clock_drives_expiry_between_requests(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    flow, _ = make_flow(registry, cooldown=30)
    flow.start()
    flow.failed(HTTPError(401))
    assert make_flow(registry)[0].start().key == "b/2"
    clock.advance(31)
    assert make_flow(registry)[0].start().key == "a/1"
