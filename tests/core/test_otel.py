"""Failover metrics through OpenTelemetry, read back with the SDK's in-memory reader and
scraped through the Prometheus exporter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import failover_core as fc
from failover_core.telemetry import listeners as _telemetry
from tests.conftest import FakeClock
from tests.core.fakes import FakeEntry, FakeStreamEntry, HTTPError

otel = pytest.importorskip("failover_core.otel")
sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
sdk_export = pytest.importorskip("opentelemetry.sdk.metrics.export")


def _points(reader: Any, name: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, value) of every point of instrument ``name``; a histogram's value is
    its (count, sum)."""
    data = reader.get_metrics_data()
    out: list[tuple[dict[str, Any], Any]] = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    value = (
                        (point.count, point.sum) if hasattr(point, "bucket_counts") else point.value
                    )
                    out.append((dict(point.attributes), value))
    return out


def _counts(reader: Any, name: str, *keys: str) -> dict[tuple[Any, ...], Any]:
    return {tuple(a.get(k) for k in keys): v for a, v in _points(reader, name)}


def _chain(*entries: Any, registry: fc.HealthRegistry, clock: FakeClock) -> fc.FailoverChain[Any]:
    policy = fc.FailoverPolicy.build(backoff=lambda n: 0.0, cooldown=timedelta(seconds=60))
    return fc.FailoverChain(list(entries), policy, registry, sleep=clock.sleep)


def test_an_outage_is_counted_by_model_outcome_reason_and_kind(
    reader: Any, registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    primary = FakeEntry("openai/gpt-4o-mini", [HTTPError(503)])
    backup = FakeEntry("anthropic/claude-haiku")
    chain = _chain(primary, backup, registry=registry, clock=clock)
    for _ in range(3):
        chain.invoke(lambda e: e.call())

    attempts = _counts(
        reader, "llm_failover.attempts", "llm_failover.model", "llm_failover.outcome"
    )
    assert attempts == {
        ("openai/gpt-4o-mini", "transient"): 3,  # one request's retries, then benched
        ("anthropic/claude-haiku", "success"): 3,
    }
    failovers = _counts(
        reader,
        "llm_failover.failovers",
        "llm_failover.from_model",
        "llm_failover.to_model",
        "llm_failover.reason",
    )
    assert failovers == {("openai/gpt-4o-mini", "anthropic/claude-haiku", "exhausted"): 1}
    benches = _counts(reader, "llm_failover.benches", "gen_ai.provider.name", "llm_failover.kind")
    assert benches == {("openai", "transient"): 1}
    per_request = _counts(reader, "llm_failover.request.attempts", "llm_failover.served")
    assert per_request == {("yes",): (3, 4 + 1 + 1)}
    ttfo = _counts(reader, "llm_failover.time_to_first_output", "gen_ai.request.model")
    assert ttfo[("claude-haiku",)][0] == 3


def test_the_benched_gauge_reads_the_registry_and_drops_to_zero(
    reader: Any, registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench("openai/gpt-4o", timedelta(minutes=5))
    chain = _chain(FakeEntry("anthropic/x", [HTTPError(401)]), registry=registry, clock=clock)
    with pytest.raises(fc.AllModelsFailedError):
        chain.invoke(lambda e: e.call())
    gauge = _counts(reader, "llm_failover.benched", "llm_failover.model", "llm_failover.manual")
    assert gauge == {("openai/gpt-4o", True): 1, ("anthropic/x", False): 1}
    fc.unbench_model("openai/gpt-4o")
    clock.advance(3600)
    gauge = _counts(reader, "llm_failover.benched", "llm_failover.model", "llm_failover.manual")
    assert gauge == {("openai/gpt-4o", True): 0, ("anthropic/x", False): 0}


def test_probes_are_counted_by_result(
    reader: Any, registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    primary = FakeEntry("openai/a", [HTTPError(401), HTTPError(503), "ok"])
    chain = _chain(primary, FakeEntry("openai/b"), registry=registry, clock=clock)
    chain.invoke(lambda e: e.call())  # 401: benched for 60 s
    clock.advance(61)
    chain.invoke(lambda e: e.call())  # the probe fails: benched again
    clock.advance(3600)
    chain.invoke(lambda e: e.call())  # the probe answers
    probes = _counts(reader, "llm_failover.probes", "llm_failover.model", "llm_failover.result")
    assert probes == {("openai/a", "failed"): 1, ("openai/a", "recovered"): 1}


async def test_streams_and_cancellation_are_counted(
    reader: Any, registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    import asyncio

    stream = FakeStreamEntry("openai/s", open_error=HTTPError(400, "context_length_exceeded"))
    backup = FakeStreamEntry("openai/t")
    chain = _chain(stream, backup, registry=registry, clock=clock)
    assert [c async for c, _ in chain.astream(lambda e: e.astream(), str)] == ["a", "b", "c"]

    async def hang(entry: Any) -> str:
        await asyncio.sleep(3600)
        return "never"

    task = asyncio.ensure_future(chain.ainvoke(hang))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    attempts = _counts(
        reader, "llm_failover.attempts", "llm_failover.model", "llm_failover.outcome"
    )
    assert attempts == {
        ("openai/s", "request_specific"): 1,
        ("openai/t", "success"): 1,
        ("openai/s", "cancelled"): 1,
    }
    per_request = _counts(reader, "llm_failover.request.attempts", "llm_failover.served")
    assert per_request == {("yes",): (1, 2), ("no",): (1, 1)}


def test_no_prompt_no_error_text_in_any_attribute(
    reader: Any, registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    secret = "sk-live-SECRET my prompt text"
    failing = FakeEntry("openai/a", [HTTPError(400, "context_length_exceeded", message=secret)])
    chain = _chain(failing, FakeEntry("openai/b"), registry=registry, clock=clock)
    chain.invoke(lambda e: e.call(), request=secret)
    data = reader.get_metrics_data().to_json()
    assert "SECRET" not in data and "prompt" not in data


def test_prometheus_scrape(registry: fc.HealthRegistry, clock: FakeClock) -> None:
    prometheus = pytest.importorskip("opentelemetry.exporter.prometheus")
    from prometheus_client import CollectorRegistry, generate_latest

    scrape_registry = CollectorRegistry()
    reader = prometheus.PrometheusMetricReader()
    scrape_registry.register(reader._collector)
    otel.instrument_metrics(sdk_metrics.MeterProvider(metric_readers=[reader]))
    try:
        chain = _chain(
            FakeEntry("openai/a", [HTTPError(401)]),
            FakeEntry("openai/b"),
            registry=registry,
            clock=clock,
        )
        chain.invoke(lambda e: e.call())
        text = generate_latest(scrape_registry).decode()
    finally:
        otel.uninstrument_metrics()
    assert "llm_failover_attempts_total{" in text
    assert 'llm_failover_outcome="auth_dead"' in text
    assert "llm_failover_benched{" in text


def test_metrics_off_means_no_listener() -> None:
    assert _telemetry.listeners() == ()
    otel.instrument_metrics(sdk_metrics.MeterProvider())
    otel.instrument_metrics(sdk_metrics.MeterProvider())  # again: replaces, never doubles
    assert len(_telemetry.listeners()) == 1
    assert otel.uninstrument_metrics() is True
    assert _telemetry.listeners() == ()


def test_a_raising_listener_never_breaks_a_request(
    registry: fc.HealthRegistry, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: object) -> None:
                raise RuntimeError("listener bug")

            return fail

    broken = Broken()
    _telemetry.add_listener(broken)  # type: ignore[arg-type]
    try:
        chain = _chain(FakeEntry("openai/a"), registry=registry, clock=clock)
        assert chain.invoke(lambda e: e.call())[0] == "openai/a:ok"
        chain.invoke(lambda e: e.call())
    finally:
        _telemetry.remove_listener(broken)  # type: ignore[arg-type]
    assert sum("telemetry listener" in r.getMessage() for r in caplog.records) == 1


async def test_hedges_are_counted_and_the_loser_is_a_cancelled_attempt(
    reader: Any, registry: fc.HealthRegistry
) -> None:
    from tests.core.test_hedge import SLOW, Slow

    slow, fast = Slow("openai/slow", SLOW), Slow("openai/fast")
    policy = fc.FailoverPolicy.build(backoff=lambda n: 0.0, hedge_after=0.05)
    chain = fc.FailoverChain([slow, fast], policy)
    answer, served = await chain.ainvoke(lambda c: c.acall())
    assert served.hedged and answer == "openai/fast:ok"
    hedges = _counts(reader, "llm_failover.hedges", "llm_failover.model", "llm_failover.result")
    assert hedges == {("openai/slow", "started"): 1, ("openai/slow", "won"): 1}
    attempts = _counts(
        reader, "llm_failover.attempts", "llm_failover.model", "llm_failover.outcome"
    )
    assert attempts == {("openai/slow", "cancelled"): 1, ("openai/fast", "success"): 1}
    assert _counts(reader, "llm_failover.failovers", "llm_failover.reason") == {}
    per_request = _counts(reader, "llm_failover.request.attempts", "llm_failover.served")
    assert per_request == {("yes",): (1, 2)}
