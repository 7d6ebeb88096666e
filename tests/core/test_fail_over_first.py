"""``on_transient="next"``: a transient error sends the request on at once, strikes add up."""

from __future__ import annotations

import pytest

import failover_core as fc
from failover_core import Attempt
from tests.conftest import FakeClock
from tests.core.fakes import FakeEntry, HTTPError, events_of


def chain(
    registry: fc.HealthRegistry, clock: FakeClock, *entries: FakeEntry, **options: object
) -> fc.FailoverChain[FakeEntry]:
    policy = fc.FailoverPolicy.build(**options)  # type: ignore[arg-type]
    return fc.FailoverChain(list(entries), policy, registry, sleep=clock.sleep)


def test_a_transient_error_moves_on_at_once_with_a_strike(registry: fc.HealthRegistry) -> None:
    events: list[fc.FailoverEvent] = []
    policy = fc.FailoverPolicy.build(on_transient="next", observer=events.append)
    flow = fc.FailoverFlow(("a/1", "b/2"), policy, registry)
    flow.start()
    assert flow.failed(HTTPError(503)) == Attempt(index=1, key="b/2", number=1)
    assert events_of(events) == [("a/1", "transient", 1, False, "b/2")]
    assert events[0].reason == "transient_next"
    assert registry.store.get("a/1").strikes == 1  # type: ignore[union-attr]
    assert not registry.is_benched("a/1")


def test_strikes_add_up_across_requests_then_bench_then_one_probe(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    primary = FakeEntry("a/1", [HTTPError(503)])
    backup = FakeEntry("b/2")
    failover = chain(registry, clock, primary, backup, on_transient="next", cooldown=60)
    for n in range(1, 4):
        result, served = failover.invoke(FakeEntry.call)
        assert (result, served.model, served.failed_attempts) == ("b/2:ok", "b/2", 1)
        assert primary.calls == n, "one call of the failed model per request"
    assert registry.is_benched("a/1"), "benched after max_retries (3) strikes"
    assert clock.slept == [], "never a backoff"

    failover.invoke(FakeEntry.call)
    assert primary.calls == 3, "benched: not called"
    clock.advance(3600)  # past any cooldown: one request probes it
    primary.outcomes = ["ok"]
    assert failover.invoke(FakeEntry.call)[1].model == "a/1"
    assert primary.calls == 4
    assert not registry.is_benched("a/1")
    assert registry.store.get("a/1") is None


def test_a_failed_probe_benches_again_at_once(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    primary = FakeEntry("a/1", [HTTPError(503)])
    failover = chain(registry, clock, primary, FakeEntry("b/2"), on_transient="next")
    for _ in range(3):
        failover.invoke(FakeEntry.call)
    clock.advance(3600)
    failover.invoke(FakeEntry.call)
    assert primary.calls == 4 and registry.is_benched("a/1")


def test_retry_stays_the_default(registry: fc.HealthRegistry, clock: FakeClock) -> None:
    primary = FakeEntry("a/1", [HTTPError(503)])
    failover = chain(registry, clock, primary, FakeEntry("b/2"), backoff=lambda n: 0.5)
    assert failover.policy.on_transient == "retry"
    failover.invoke(FakeEntry.call)
    assert primary.calls == 3 and clock.slept == [0.5, 0.5]


@pytest.mark.parametrize("bad", ["Next", "skip", None, 1])
def test_a_bad_value_is_refused_naming_both(bad: object) -> None:
    with pytest.raises(ValueError, match="'retry' or 'next'"):
        fc.FailoverPolicy.build(on_transient=bad if bad is not None else "")  # type: ignore[arg-type]


def test_the_process_default(registry: fc.HealthRegistry) -> None:
    old = fc.set_failover_defaults(on_transient="next")
    assert old.on_transient == "retry"
    assert fc.FailoverPolicy.build().on_transient == "next"
    assert fc.FailoverPolicy.build(on_transient="retry").on_transient == "retry"
    with pytest.raises(ValueError, match="'retry' or 'next'"):
        fc.set_failover_defaults(on_transient="later")  # type: ignore[arg-type]
    assert fc.get_failover_defaults().on_transient == "next"
