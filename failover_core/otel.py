"""OpenTelemetry metrics for failover decisions (the public import path; the instruments
live in :mod:`failover_core.telemetry.otel`)."""

from .telemetry.otel import FailoverMetrics, instrument_metrics, uninstrument_metrics

__all__ = ["FailoverMetrics", "instrument_metrics", "uninstrument_metrics"]
