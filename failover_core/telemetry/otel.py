"""Failover metrics through the OpenTelemetry metrics API (extra: ``otel``).

One call, process-wide, for both adapters::

    from failover_core.otel import instrument_metrics

    instrument_metrics()  # the global MeterProvider, or instrument_metrics(meter_provider=...)

What is recorded (attribute names follow OpenTelemetry's GenAI conventions where one
exists, ``llm_failover.*`` otherwise; model keys and fixed enums only, so cardinality is
bounded; never a prompt, an error text or a key):

========================================  =========  ==========================================
instrument                                kind       attributes
========================================  =========  ==========================================
``llm_failover.attempts``                 counter    model, ``llm_failover.outcome`` (success,
                                                     transient, unknown, auth_dead,
                                                     request_specific, timeout, cancelled)
``llm_failover.failovers``                counter    ``llm_failover.from_model``,
                                                     ``llm_failover.to_model`` (``none`` at the
                                                     end of the chain), ``llm_failover.reason``
``llm_failover.benches``                  counter    model, ``llm_failover.kind``
``llm_failover.probes``                   counter    model, ``llm_failover.result`` (recovered,
                                                     failed, released)
``llm_failover.hedges``                   counter    model (the slow attempt),
                                                     ``llm_failover.result`` (started, won, lost)
``llm_failover.benched``                  gauge      model, ``llm_failover.manual``: 1 while
                                                     benched, 0 after (read from the registry:
                                                     fleet-wide with the Redis store; at most
                                                     ``max_benched_series``, see below)
``llm_failover.time_to_first_output``     histogram  model (seconds to the answer, or to a
                                                     stream's first output)
``llm_failover.request.attempts``         histogram  ``llm_failover.served`` (yes/no)
========================================  =========  ==========================================

"model" is ``llm_failover.model`` (the health key; for a pool, the member's) plus
``gen_ai.provider.name`` and ``gen_ai.request.model`` when the key reads
``provider/model`` (a pool member's ``#n`` left out).

The gauge reads every record of the store, and a shared store holds other processes'
models too (anyone who may write to Redis can add records). So it reports at most
``max_benched_series`` models (default 100): this process's own first (those its chains
have tried), then the others. The rest are summed into one series whose model is
``_other`` (1 per benched model left out), and a warning says so once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ..health.default import get_health_registry
from . import listeners as _telemetry
from .events import FailoverEvent

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
except ImportError as exc:  # pragma: no cover - exercised by users without the extra
    raise ImportError(
        "failover_core.otel needs the OpenTelemetry API: pip install 'llm-failover[otel]'"
    ) from exc

__all__ = ["FailoverMetrics", "instrument_metrics", "uninstrument_metrics"]

OTHER = "_other"
"""The gauge's model for the benched models past ``max_benched_series``."""
_HEDGE_RESULTS = {"hedge_started": "started", "hedge_won": "won", "hedge_lost": "lost"}
_TTFO_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]


def _model(key: str) -> dict[str, str]:
    attributes = {"llm_failover.model": key}
    provider, slash, model = key.partition("/")
    model = model.rpartition("#")[0] or model  # a pool member, provider/model#n
    if slash and provider and model:
        attributes["gen_ai.provider.name"] = provider
        attributes["gen_ai.request.model"] = model
    return attributes


class FailoverMetrics:
    """The instruments and the listener that feeds them (see the module docstring)."""

    def __init__(
        self, meter_provider: MeterProvider | None = None, *, max_benched_series: int = 100
    ) -> None:
        if max_benched_series < 1:
            raise ValueError(f"max_benched_series must be at least 1, got {max_benched_series}")
        self.max_benched_series = max_benched_series
        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter(__name__.partition(".")[0])
        self.attempts = meter.create_counter(
            "llm_failover.attempts", unit="{attempt}", description="Model attempts by outcome."
        )
        self.failovers = meter.create_counter(
            "llm_failover.failovers",
            unit="{failover}",
            description="Requests moved from one model to the next, by reason.",
        )
        self.benches = meter.create_counter(
            "llm_failover.benches", unit="{bench}", description="Models benched, by error kind."
        )
        self.probes = meter.create_counter(
            "llm_failover.probes", unit="{probe}", description="Probes of recovering models."
        )
        self.hedges = meter.create_counter(
            "llm_failover.hedges",
            unit="{hedge}",
            description="Hedges started beside a slow attempt, and whether the hedge won.",
        )
        self.time_to_first_output = meter.create_histogram(
            "llm_failover.time_to_first_output",
            unit="s",
            description="Seconds from an attempt's start to its answer or first streamed output.",
            explicit_bucket_boundaries_advisory=_TTFO_BUCKETS,
        )
        self.request_attempts = meter.create_histogram(
            "llm_failover.request.attempts",
            unit="{attempt}",
            description="Attempts a request took, all models together.",
            explicit_bucket_boundaries_advisory=[1, 2, 3, 4, 6, 8, 12, 16],
        )
        self._seen: set[tuple[str, bool]] = set()  # series reported so far (0 once lifted)
        self._own: set[str] = set()  # models this process's chains tried
        self._capped = False  # the cap's warning was given
        self._seen_lock = threading.Lock()
        meter.create_observable_gauge(
            "llm_failover.benched",
            callbacks=[self._observe_benched],
            unit="1",
            description="1 while a model is benched (manual or automatic), 0 after.",
        )

    # -- the listener -------------------------------------------------------------------

    def attempt_ended(self, model: str, outcome: str, seconds: float) -> None:
        if model not in self._own and len(self._own) < 10 * self.max_benched_series:
            with self._seen_lock:
                self._own.add(model)
        self.attempts.add(1, {**_model(model), "llm_failover.outcome": outcome})
        if outcome == "success":
            self.time_to_first_output.record(seconds, _model(model))

    def decided(self, event: FailoverEvent) -> None:
        if event.reason in _HEDGE_RESULTS:
            result = _HEDGE_RESULTS[event.reason]
            self.hedges.add(1, {**_model(event.model), "llm_failover.result": result})
            return
        if event.next_model is not None or event.reason != "stream_interrupted":
            self.failovers.add(
                1,
                {
                    "llm_failover.from_model": event.model,
                    "llm_failover.to_model": event.next_model or "none",
                    "llm_failover.reason": event.reason,
                },
            )
        if event.benched:
            self.benches.add(1, {**_model(event.model), "llm_failover.kind": event.kind.value})

    def probe_ended(self, model: str, result: str) -> None:
        self.probes.add(1, {**_model(model), "llm_failover.result": result})

    def request_ended(self, served: str | None, attempts: int) -> None:
        self.request_attempts.record(
            attempts, {"llm_failover.served": "yes" if served is not None else "no"}
        )

    # -- the gauge ----------------------------------------------------------------------

    def _observe_benched(self, options: CallbackOptions) -> Iterable[Observation]:
        benched = {(b.model, b.manual) for b in get_health_registry().list()}
        limit = self.max_benched_series
        with self._seen_lock:
            # Series already reported keep their place (they drop to 0 when lifted), then
            # this process's models, then the others, up to the cap.
            fresh = sorted(benched - self._seen, key=lambda s: (s[0] not in self._own, s))
            room = max(limit - len(self._seen), 0)
            self._seen |= set(fresh[:room])
            left_out = len(fresh) - room if len(fresh) > room else 0
            seen = sorted(self._seen)
            warn = left_out > 0 and not self._capped
            self._capped = self._capped or warn
        if warn:
            _telemetry.logger.warning(
                "failover: %d benched models are more than the llm_failover.benched gauge "
                "reports (max_benched_series=%d); the rest are counted under model=%s",
                len(benched),
                limit,
                OTHER,
            )
        observations = [
            Observation(
                1 if (key, manual) in benched else 0,
                {**_model(key), "llm_failover.manual": manual},
            )
            for key, manual in seen
        ]
        if left_out or self._capped:
            observations.append(Observation(left_out, {"llm_failover.model": OTHER}))
        return observations


_active: FailoverMetrics | None = None
_active_lock = threading.Lock()


def instrument_metrics(
    meter_provider: Any = None, *, max_benched_series: int = 100
) -> FailoverMetrics:
    """Record failover metrics for every chain in the process; returns the instruments.

    ``meter_provider`` defaults to OpenTelemetry's global one. Calling it again replaces
    the previous instrumentation (so a test or a notebook can point it elsewhere).
    ``max_benched_series`` bounds the ``llm_failover.benched`` gauge (module docstring).
    """
    global _active
    with _active_lock:
        if _active is not None:
            _telemetry.remove_listener(_active)
        _active = FailoverMetrics(meter_provider, max_benched_series=max_benched_series)
        _telemetry.add_listener(_active)
        return _active


def uninstrument_metrics() -> bool:
    """Stop recording; says whether metrics were on."""
    global _active
    with _active_lock:
        if _active is None:
            return False
        _telemetry.remove_listener(_active)
        _active = None
        return True
