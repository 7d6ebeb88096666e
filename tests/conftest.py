"""Shared fixtures: a fake clock, a fresh registry, and the provider simulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import failover_core as fc
from failover_core.classification import classifier as _classify
from failover_core.flow import hedging as _hedge
from failover_core.telemetry import listeners as _telemetry

pytest_plugins = ["failover_core.simulator.pytest_plugin"]

T0 = 1_800_000_000.0  # a fixed wall-clock instant (2027-01-15)


@dataclass
class FakeClock:
    """Wall-clock seconds that move only when told; ``sleep`` records and advances."""

    now: float = T0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> Iterator[fc.HealthRegistry]:
    """A fresh registry on the fake clock, installed as the process-wide one."""
    reg = fc.HealthRegistry(clock=clock)
    old = fc.set_health_registry(reg)
    yield reg
    fc.set_health_registry(old)


@pytest.fixture(autouse=True)
def _isolated_globals() -> Iterator[None]:
    """Defaults, global classifier rules, the global registry and telemetry listeners
    (metrics turned on by a README block) never leak between tests."""
    defaults = fc.get_failover_defaults()
    rules = _classify._global_rules
    listeners = _telemetry._listeners
    old_registry = fc.set_health_registry(fc.HealthRegistry())
    old_hedging = _hedge.set_hedging(_hedge.Hedging(_hedge.LatencyTracker(), fc.HedgeBudget()))
    yield
    fc.set_failover_defaults(
        defaults.max_retries,
        defaults.cooldown,
        timeout=defaults.timeout,
        first_token_timeout=defaults.first_token_timeout,
        idle_timeout=defaults.idle_timeout,
        hedge_after=defaults.hedge_after,
        on_transient=defaults.on_transient,
    )
    _classify._global_rules = rules
    _telemetry._listeners = listeners
    fc.set_health_registry(old_registry)
    _hedge.set_hedging(old_hedging)


@pytest.fixture
def reader() -> Iterator[Any]:
    """Failover metrics on, recorded into the OpenTelemetry SDK's in-memory reader."""
    otel = pytest.importorskip("failover_core.otel")
    sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
    sdk_export = pytest.importorskip("opentelemetry.sdk.metrics.export")
    metrics = sdk_export.InMemoryMetricReader()
    otel.instrument_metrics(sdk_metrics.MeterProvider(metric_readers=[metrics]))
    yield metrics
    otel.uninstrument_metrics()
