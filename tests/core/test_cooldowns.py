"""Cooldowns that come back: a transient bench starts short and grows only on failed
probes up to ``cooldown``; an auth/model-dead bench starts long; events say what applied."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

import failover_core as fc
from tests.conftest import T0, FakeClock
from tests.core.fakes import FakeEntry, HTTPError


class Outage:
    """A model that answers 503 until ``heals_at`` (fake-clock time), then serves."""

    def __init__(self, key: str, clock: FakeClock, heals_at: float) -> None:
        self.key, self.clock, self.heals_at = key, clock, heals_at
        self.calls: list[float] = []

    def call(self) -> str:
        self.calls.append(self.clock.now)
        if self.clock.now < self.heals_at:
            raise HTTPError(503)
        return self.key

    async def acall(self) -> str:
        return self.call()


def chain_of(
    entries: list[Any], clock: FakeClock, registry: fc.HealthRegistry, **options: Any
) -> tuple[fc.FailoverChain[Any], list[fc.FailoverEvent]]:
    events: list[fc.FailoverEvent] = []
    options.setdefault("observer", events.append)
    policy = fc.FailoverPolicy.build(**options)
    chain = fc.FailoverChain(entries, policy, registry, sleep=clock.sleep, asleep=clock.asleep)
    return chain, events


def test_a_primary_down_for_a_minute_serves_again_within_30_s_of_recovering(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    primary = Outage("p/1", clock, heals_at=T0 + 60)
    chain, _ = chain_of([primary, FakeEntry("b/2")], clock, registry)  # the defaults
    served: list[tuple[float, str]] = []
    for n in range(20):  # one request every 4 s
        clock.now = max(clock.now, T0 + 4 * n)
        started = clock.now
        served.append((started, chain.invoke(lambda e: e.call())[1].model))
    back = [t for t, model in served if model == "p/1"]
    assert back and back[0] - (T0 + 60) <= 30, f"back on the primary at {back[0] - T0:.0f} s"
    assert all(model == "p/1" for t, model in served if t >= back[0]), "and stays there"
    first_bench = T0 + 4  # the first request spends its retries; after it, one call per window
    windows = [int((t - T0) // 4) for t in primary.calls if first_bench <= t < T0 + 60]
    assert len(windows) == len(set(windows)), f"more than one call in a window: {windows}"
    assert len(windows) <= 3, "a few probes, not a call per request"


async def test_a_herd_during_the_outage_sends_the_primary_one_probe_per_window(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    primary = Outage("p/1", clock, heals_at=T0 + 60)
    chain, _ = chain_of([primary, FakeEntry("b/2")], clock, registry)
    recovered_at = None
    for n in range(25):
        clock.now = max(clock.now, T0 + 4 * n)
        before = len(primary.calls)
        results = await asyncio.gather(*(chain.ainvoke(lambda e: e.acall()) for _ in range(30)))
        if n and clock.now < T0 + 60:
            assert len(primary.calls) - before <= 1, f"a herd at {clock.now - T0:.0f} s"
        if recovered_at is None and any(s.model == "p/1" for _, s in results):
            recovered_at = clock.now
    assert recovered_at is not None and recovered_at - (T0 + 60) <= 30


def test_a_transient_bench_starts_short_and_doubles_on_failed_probes_up_to_cooldown(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    primary = Outage("p/1", clock, heals_at=float("inf"))
    chain, events = chain_of(
        [primary, FakeEntry("b/2")], clock, registry, max_retries=1, cooldown=120
    )
    lengths = []
    for _ in range(6):
        chain.invoke(lambda e: e.call())
        [bench] = [e for e in events[-1:] if e.benched]
        lengths.append(bench.benched_for)
        until = registry.benched_until("p/1")
        assert until is not None
        clock.now = until.timestamp() + 1  # the next request probes it
    assert lengths == [timedelta(seconds=s) for s in (8, 16, 32, 64, 120, 120)]


def test_a_dead_model_is_benched_for_the_whole_cooldown(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    dead = FakeEntry("d/1", [HTTPError(401)])
    chain, events = chain_of([dead, FakeEntry("b/2")], clock, registry)
    assert chain.invoke(lambda e: e.call())[1].model == "b/2"
    assert events[0].benched_for == timedelta(minutes=5)
    until = registry.benched_until("d/1")
    assert until is not None and until.timestamp() == clock.now + 300


def test_both_starts_are_options(clock: FakeClock, registry: fc.HealthRegistry) -> None:
    chain, events = chain_of(
        [FakeEntry("d/1", [HTTPError(401)]), FakeEntry("t/2", [HTTPError(503)]), FakeEntry("b/3")],
        clock,
        registry,
        max_retries=1,
        transient_cooldown="3s",
        dead_cooldown=timedelta(minutes=2),
    )
    chain.invoke(lambda e: e.call())
    assert [e.benched_for for e in events] == [timedelta(minutes=2), timedelta(seconds=3)]


def test_a_start_longer_than_the_cooldown_is_the_cooldown(registry: fc.HealthRegistry) -> None:
    policy = fc.FailoverPolicy.build(cooldown=5, transient_cooldown=30, dead_cooldown=60)
    assert policy.bench_length(dead=False) == policy.bench_length(dead=True) == timedelta(seconds=5)


def test_the_log_line_names_the_bench_applied_after_a_failed_probe(
    clock: FakeClock, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    primary = Outage("p/1", clock, heals_at=float("inf"))
    chain, _ = chain_of([primary, FakeEntry("b/2")], clock, registry, max_retries=1)
    chain.invoke(lambda e: e.call())
    clock.advance(9)
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        chain.invoke(lambda e: e.call())
    assert "cooldown=16.0" in caplog.text, caplog.text


def test_cooldown_options_are_process_defaults_too(registry: fc.HealthRegistry) -> None:
    fc.set_failover_defaults(transient_cooldown="15s", dead_cooldown="1h", cooldown="2h")
    policy = fc.FailoverPolicy.build()
    assert policy.bench_length(dead=False) == timedelta(seconds=15)
    assert policy.bench_length(dead=True) == timedelta(hours=1)
    with pytest.raises(ValueError, match="transient_cooldown must not be negative"):
        fc.FailoverPolicy.build(transient_cooldown=-1)
    with pytest.raises(TypeError, match="dead_cooldown must be seconds"):
        fc.FailoverPolicy.build(dead_cooldown=[1])  # type: ignore[arg-type]
