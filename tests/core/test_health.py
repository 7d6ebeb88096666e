"""The health registry: the seed's bench rules, expiry, manual benches, concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

import failover_core as fc
from tests.conftest import FakeClock

COOL = timedelta(minutes=5)


def test_unknown_model_is_not_benched(registry: fc.HealthRegistry) -> None:
    assert not registry.is_benched("openai/gpt-4o")
    assert registry.list() == []


def test_exhausted_transient_failure_benches_for_the_cooldown(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    until = registry.record_failure("openai/gpt-4o", COOL, exhausted=True, strike_limit=3)
    assert until == datetime.fromtimestamp(clock.now + 300, tz=timezone.utc)
    assert registry.is_benched("openai/gpt-4o")
    [benched] = registry.list()
    assert benched == fc.BenchedModel("openai/gpt-4o", until, consecutive_fails=1, manual=False)


def test_failures_within_retries_do_not_bench_until_the_strike_limit(
    registry: fc.HealthRegistry,
) -> None:
    assert registry.record_failure("m/a", COOL, exhausted=False, strike_limit=3) is None
    assert registry.record_failure("m/a", COOL, exhausted=False, strike_limit=3) is None
    assert not registry.is_benched("m/a")
    assert registry.record_failure("m/a", COOL, exhausted=False, strike_limit=3) is not None
    assert registry.is_benched("m/a")


def test_success_clears_strikes_and_failures(registry: fc.HealthRegistry) -> None:
    registry.record_failure("m/a", COOL, exhausted=False, strike_limit=3)
    registry.record_failure("m/a", COOL, exhausted=False, strike_limit=3)
    registry.record_success("m/a")
    assert registry.record_failure("m/a", COOL, exhausted=False, strike_limit=3) is None
    assert not registry.is_benched("m/a")


def test_consecutive_fails_count_benches_since_the_last_success(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.record_failure("m/a", COOL, exhausted=True, strike_limit=3)
    registry.record_failure("m/a", COOL, exhausted=True, strike_limit=3)  # best-effort retry
    assert registry.list()[0].consecutive_fails == 2
    registry.record_success("m/a")
    assert registry.list() == []


def test_auth_dead_benches_at_once(registry: fc.HealthRegistry, clock: FakeClock) -> None:
    until = registry.bench_now("m/a", timedelta(seconds=60))
    assert until.timestamp() == clock.now + 60
    assert registry.is_benched("m/a")


def test_expired_bench_reads_false_and_is_pruned_without_probing(clock: FakeClock) -> None:
    registry = fc.HealthRegistry(clock=clock, probe=False)
    registry.bench_now("m/a", timedelta(seconds=60))
    clock.advance(60)
    assert registry.is_benched("m/a"), "benched through the last instant, like the seed"
    clock.advance(0.001)
    assert not registry.is_benched("m/a")
    assert registry.store.get("m/a") is None


def test_list_leaves_out_expired_benches_and_sorts(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench_now("z/z", timedelta(seconds=100))
    registry.bench_now("a/a", timedelta(seconds=100))
    registry.bench_now("old/x", timedelta(seconds=10))
    clock.advance(20)
    assert [b.model for b in registry.list()] == ["a/a", "z/z"]
    assert registry.enter("old/x") == "probe", "kept, to be probed"
    clock.advance(3600)
    registry.list()
    assert registry.store.get("old/x") is None, "forgotten after max_cooldown"


def test_manual_bench_is_marked_and_unbench_reports(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    until = datetime.fromtimestamp(clock.now + 3600, tz=timezone.utc)
    fc.bench_model("anthropic/claude", until)
    assert fc.is_benched("anthropic/claude")
    [b] = fc.list_benched()
    assert b.manual and b.model == "anthropic/claude"
    assert fc.unbench_model("anthropic/claude") is True
    assert fc.unbench_model("anthropic/claude") is False
    assert not fc.is_benched("anthropic/claude")


def test_bench_model_accepts_a_duration(registry: fc.HealthRegistry, clock: FakeClock) -> None:
    until = fc.bench_model("m/a", timedelta(minutes=10))
    assert until.timestamp() == clock.now + 600


def test_unbench_of_an_expired_bench_says_false(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench("m/a", timedelta(seconds=1))
    clock.advance(2)
    assert registry.unbench("m/a") is False


def test_naive_datetime_is_refused_with_a_clear_message(registry: fc.HealthRegistry) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fc.bench_model("m/a", datetime.now() + timedelta(hours=1))
    with pytest.raises(ValueError, match="non-empty"):
        fc.bench_model("  ", timedelta(hours=1))
    with pytest.raises(TypeError, match="seconds, a timedelta or a string"):
        fc.bench_model("m/a", [60])  # type: ignore[arg-type]


def test_auto_bench_never_shortens_a_manual_bench(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench("m/a", timedelta(hours=2))
    registry.bench_now("m/a", timedelta(minutes=5))
    [b] = registry.list()
    assert b.manual and b.until.timestamp() == clock.now + 7200


def test_concurrent_failures_lose_no_update() -> None:
    registry = fc.HealthRegistry()
    keys = [f"m/{i}" for i in range(8)]
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            barrier.wait()
            for _ in range(500):
                for key in keys:
                    registry.record_failure(key, COOL, exhausted=False, strike_limit=10**9)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for key in keys:
        record = registry.store.get(key)
        assert record is not None and record.strikes == 16 * 500


def test_concurrent_bench_list_unbench_do_not_raise() -> None:
    registry = fc.HealthRegistry()
    errors: list[BaseException] = []

    def churn(n: int) -> None:
        try:
            for i in range(300):
                key = f"m/{(i + n) % 5}"
                registry.bench_now(key, timedelta(seconds=30))
                registry.list()
                registry.unbench(key)
                registry.is_benched(key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_defaults_change_under_a_lock_and_reach_chains_built_later() -> None:
    old = fc.set_failover_defaults(max_retries=5, cooldown=timedelta(seconds=30))
    assert old == fc.FailoverDefaults(3, timedelta(minutes=5))
    policy = fc.FailoverPolicy.build()
    assert (policy.max_retries, policy.cooldown) == (5, timedelta(seconds=30))
    fc.set_failover_defaults(max_retries=0)
    assert fc.get_failover_defaults().max_retries == 1, "values below 1 mean 1"
    assert fc.get_failover_defaults().cooldown == timedelta(seconds=30)


def test_defaults_set_from_many_threads_stay_consistent() -> None:
    def setter(n: int) -> None:
        for _ in range(200):
            fc.set_failover_defaults(max_retries=n, cooldown=n)

    threads = [threading.Thread(target=setter, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    d = fc.get_failover_defaults()
    assert d.cooldown == timedelta(seconds=d.max_retries), "the pair is written together"


def test_negative_cooldown_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        fc.set_failover_defaults(cooldown=-1)
    with pytest.raises(ValueError, match="negative"):
        fc.FailoverPolicy.build(cooldown=timedelta(seconds=-5))


# -- one probe after a cooldown ----------------------------------------------------------


def test_an_expired_bench_lets_exactly_one_request_probe(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench_now("m/a", timedelta(seconds=60))
    assert registry.enter("m/a") == "closed"
    clock.advance(61)
    assert not registry.is_benched("m/a")
    assert registry.enter("m/a") == "probe"
    assert [registry.enter("m/a") for _ in range(5)] == ["closed"] * 5
    assert registry.enter("never/benched") == "open"


def test_probe_success_clears_the_model_for_everyone(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench_now("m/a", timedelta(seconds=60))
    clock.advance(61)
    assert registry.enter("m/a") == "probe"
    registry.record_success("m/a")
    assert [registry.enter("m/a") for _ in range(3)] == ["open"] * 3


def test_probe_failure_rebenches_with_a_growing_capped_cooldown(clock: FakeClock) -> None:
    registry = fc.HealthRegistry(clock=clock, max_cooldown=timedelta(seconds=200))
    cooldown = timedelta(seconds=60)
    registry.bench_now("m/a", cooldown)
    lengths = []
    for _ in range(4):
        clock.advance(1000)
        assert registry.enter("m/a") == "probe"
        until = registry.record_failure("m/a", cooldown, exhausted=True, strike_limit=3)
        assert until is not None
        lengths.append(until.timestamp() - clock.now)
    assert lengths == [120, 200, 200, 200]


def test_flat_cooldowns_when_growth_is_one(clock: FakeClock) -> None:
    registry = fc.HealthRegistry(clock=clock, cooldown_growth=1)
    registry.bench_now("m/a", timedelta(seconds=60))
    clock.advance(61)
    registry.enter("m/a")
    assert registry.bench_now("m/a", timedelta(seconds=60)).timestamp() == clock.now + 60


def test_a_lost_probe_lease_expires(registry: fc.HealthRegistry, clock: FakeClock) -> None:
    registry.bench_now("m/a", timedelta(seconds=60))
    clock.advance(61)
    assert registry.enter("m/a") == "probe"  # and that request is cancelled
    clock.advance(registry.probe_lease + 1)
    assert registry.enter("m/a") == "probe"


def test_a_released_probe_goes_to_the_next_request(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench_now("m/a", timedelta(seconds=60))
    clock.advance(61)
    assert registry.enter("m/a") == "probe"
    registry.release_probe("m/a")
    assert registry.enter("m/a") == "probe"


def test_a_manual_bench_is_never_probed_before_its_time(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench("m/a", timedelta(hours=1))
    clock.advance(3599)
    assert registry.enter("m/a") == "closed"
    clock.advance(2)
    assert registry.enter("m/a") == "probe"


def test_fifty_threads_on_an_expired_bench_make_one_probe(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    registry.bench_now("m/a", timedelta(seconds=60))
    clock.advance(61)
    barrier = threading.Barrier(50)
    answers: list[str] = []

    def race() -> None:
        barrier.wait()
        answers.append(registry.enter("m/a"))

    threads = [threading.Thread(target=race) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count("probe") == 1 and answers.count("closed") == 49
