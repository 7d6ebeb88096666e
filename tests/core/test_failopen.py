"""FailOpenStore without Redis: a primary that fails, then answers again."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

import failover_core as fc


class FlakyStore(fc.MemoryHealthStore):
    """A shared store whose every call fails while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("store unreachable")

    def get(self, key: str) -> fc.HealthRecord | None:
        self._check()
        return super().get(key)

    def update(self, key: str, fn: object) -> fc.HealthRecord | None:
        self._check()
        return super().update(key, fn)  # type: ignore[arg-type]

    def items(self) -> list[tuple[str, fc.HealthRecord]]:
        self._check()
        return super().items()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_long_outage_warns_once_and_leaves_the_store_alone_between_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary, clock = FlakyStore(), Clock()
    store = fc.FailOpenStore(primary, retry_after=5.0, clock=clock)
    registry = fc.HealthRegistry(store)
    primary.down = True
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        for _ in range(3):  # three retry windows, the store still down
            for _ in range(10):
                registry.bench_now("m/a", timedelta(minutes=1))
                assert registry.is_benched("m/a")
            clock.now += 6
    assert [r.getMessage() for r in caplog.records].count(
        "failover: health store unavailable (ConnectionError); using in-process health "
        "until it answers again"
    ) == 1
    assert primary.calls <= 4, "one failed call per retry window, not one per request"


def test_recovery_merges_local_benches_into_the_shared_store() -> None:
    primary, clock = FlakyStore(), Clock()
    store = fc.FailOpenStore(primary, retry_after=5.0, clock=clock)
    registry = fc.HealthRegistry(store)
    primary.down = True
    registry.bench_now("m/a", timedelta(minutes=1))
    primary.down = False
    assert registry.is_benched("m/a"), "still served locally until the retry time"
    assert primary.get("m/a") is None
    clock.now += 6
    assert registry.is_benched("m/a")
    assert primary.get("m/a") is not None and not store.degraded


def test_a_healthy_primary_is_used_directly() -> None:
    primary = FlakyStore()
    registry = fc.HealthRegistry(fc.FailOpenStore(primary))
    registry.bench_now("m/a", timedelta(minutes=1))
    assert primary.get("m/a") is not None


def test_benches_seen_before_an_outage_are_still_honoured_during_it() -> None:
    primary, clock = FlakyStore(), Clock()
    registry = fc.HealthRegistry(fc.FailOpenStore(primary, retry_after=5.0, clock=clock))
    other_worker = fc.HealthRegistry(primary)
    other_worker.bench("m/op", timedelta(minutes=30))  # an operator, from another host
    other_worker.bench_now("m/dead", timedelta(minutes=5))
    assert registry.is_benched("m/op") and registry.is_benched("m/dead")  # seen here
    primary.down = True
    assert registry.is_benched("m/op"), "the operator's bench holds through the outage"
    assert registry.is_benched("m/dead")
    assert [b.model for b in registry.list()] == ["m/dead", "m/op"]


def test_a_remembered_bench_lifted_in_the_shared_store_meanwhile_is_not_revived() -> None:
    primary, clock = FlakyStore(), Clock()
    store = fc.FailOpenStore(primary, retry_after=5.0, clock=clock)
    registry = fc.HealthRegistry(store)
    registry.bench("m/op", timedelta(minutes=30))
    primary.down = True
    assert registry.is_benched("m/op")
    primary.down = False
    fc.HealthRegistry(primary).unbench("m/op")  # lifted by someone who could reach it
    clock.now += 6
    assert not registry.is_benched("m/op") and not store.degraded
    assert primary.get("m/op") is None
