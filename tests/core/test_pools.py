"""Pools in the core: the balancer's policy on a fake clock, the rate-limit headers, and
how a pool's members are tried in the flow and the drivers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

import failover_core as fc
from failover_core.flow.engine import FailoverFlow
from failover_core.flow.hedging import Hedging, LatencyTracker, set_hedging
from failover_core.pool.pool import PoolGroup
from failover_core.pool.ratelimits import parse_duration, read_rate_limits

from ..conftest import T0, FakeClock
from .fakes import FakeEntry, HTTPError


def balancer(clock: FakeClock, seed: int = 7) -> fc.PoolBalancer:
    return fc.PoolBalancer(clock=clock, wall=clock, rng=random.Random(seed))


def serve(b: fc.PoolBalancer, clock: FakeClock, latency: dict[str, float], n: int) -> Counter[str]:
    """``n`` requests one after another: the pick answers after its latency."""
    served: Counter[str] = Counter()
    for _ in range(n):
        key = b.rank(list(latency))[0][0]
        started = b.started(key)
        clock.advance(latency[key])
        b.ended(key, "success", started)
        served[key] += 1
    return served


def serve_concurrently(
    b: fc.PoolBalancer, clock: FakeClock, latency: dict[str, float], n: int, width: int
) -> Counter[str]:
    """``n`` requests, ``width`` in flight at a time, on a fake clock (an event loop)."""
    served: Counter[str] = Counter()
    running: list[tuple[float, str, float]] = []  # (ends at, key, started)
    sent = 0
    while sent < n or running:
        while sent < n and len(running) < width:
            key = b.rank(list(latency))[0][0]
            running.append((clock.now + latency[key], key, b.started(key)))
            sent += 1
        running.sort()
        ends, key, started = running.pop(0)
        clock.now = ends
        b.ended(key, "success", started)
        served[key] += 1
    return served


# -- the balancer ------------------------------------------------------------------------


def test_equal_members_share_the_load(clock: FakeClock) -> None:
    served = serve(balancer(clock), clock, {"east": 0.5, "west": 0.5}, 200)
    assert 60 <= served["east"] <= 140 and 60 <= served["west"] <= 140


def test_equal_members_share_the_load_under_concurrency(clock: FakeClock) -> None:
    served = serve_concurrently(balancer(clock), clock, {"east": 0.5, "west": 0.5}, 200, 8)
    assert 60 <= served["east"] <= 140 and 60 <= served["west"] <= 140


@pytest.mark.parametrize("width", [1, 8])
def test_a_member_five_times_slower_serves_at_most_a_fifth(clock: FakeClock, width: int) -> None:
    b = balancer(clock)
    latency = {"fast": 0.4, "slow": 2.0}
    serve_concurrently(b, clock, latency, 20, width)  # warming up
    served = serve_concurrently(b, clock, latency, 200, width)
    assert served["slow"] <= 200 / 5


def test_a_slow_member_is_tried_again_and_forgiven_once_fast(clock: FakeClock) -> None:
    b = balancer(clock)
    latency = {"a": 0.4, "b": 3.0}
    serve(b, clock, latency, 50)
    latency["b"] = 0.4  # it recovered
    served = serve(b, clock, latency, 400)
    assert served["b"] >= 400 * 0.3


def test_requests_in_flight_spread_load_over_cold_members(clock: FakeClock) -> None:
    b = balancer(clock)
    picks = [b.rank(["a", "b"])[0][0] for _ in range(1)]
    b.started(picks[0])
    assert b.rank(["a", "b"])[0][0] != picks[0]  # the busy cold member is avoided


def test_a_member_with_nothing_left_is_not_chosen_until_the_reset(clock: FakeClock) -> None:
    b = balancer(clock)
    b.observe("a", {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    assert b.rank(["a", "b"]) == (["b"], ["a"])
    clock.advance(2.01)
    assert sorted(b.rank(["a", "b"])[0]) == ["a", "b"]


def test_requests_sent_since_the_last_answer_count_against_the_remaining(
    clock: FakeClock,
) -> None:
    b = balancer(clock)
    headers = {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "10s",
    }
    b.observe("a", headers)
    b.started("a")
    assert "a" in b.rank(["a", "b"])[0]
    b.started("a")  # the last one it had
    assert b.rank(["a", "b"]) == (["b"], ["a"])


def test_a_member_near_its_limit_is_chosen_less(clock: FakeClock) -> None:
    b = balancer(clock)
    latency = {"a": 0.5, "b": 0.5}
    serve(b, clock, latency, 10)
    low = {
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "300",
        "x-ratelimit-reset-tokens": "5m",
    }
    served: Counter[str] = Counter()
    for _ in range(100):
        key = b.rank(["a", "b"])[0][0]
        started = b.started(key)
        clock.advance(0.5)
        b.ended(key, "success", started)
        if key == "a":
            b.observe("a", low)
        served[key] += 1
    assert served["a"] <= 15


def test_a_429_keeps_the_member_out_for_its_retry_after(clock: FakeClock) -> None:
    b = balancer(clock)
    b.observe("a", {"retry-after": "7"}, limited=True)
    assert b.rank(["a", "b"])[1] == ["a"]
    clock.advance(6.9)
    assert b.rank(["a", "b"])[1] == ["a"]
    clock.advance(0.2)
    assert b.rank(["a", "b"])[1] == []


def test_a_429_without_hints_keeps_the_member_out_briefly(clock: FakeClock) -> None:
    b = balancer(clock)
    b.observe("a", None, limited=True)
    assert b.rank(["a", "b"])[1] == ["a"]
    clock.advance(1.01)
    assert b.rank(["a", "b"])[1] == []


def test_a_failure_makes_a_member_look_slow(clock: FakeClock) -> None:
    b = balancer(clock)
    serve(b, clock, {"a": 0.3, "b": 0.3}, 4)
    b.ended("a", "transient", b.started("a"))  # a fast 503
    assert b.rank(["a", "b"])[0] == ["b", "a"]


# -- headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("12", 12.0)],
)
def test_openai_reset_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_openai_headers_say_the_lowest_headroom_and_its_reset() -> None:
    limits = read_rate_limits(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "1500",
            "x-ratelimit-reset-tokens": "6s",
        },
        now=T0,
    )
    assert limits is not None and not limits.exhausted
    assert limits.headroom == pytest.approx(0.05)
    assert limits.reset_in == pytest.approx(6.0)
    assert limits.remaining_requests == 499


def test_anthropic_headers_reset_at_an_instant() -> None:
    limits = read_rate_limits(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:30Z",
            "anthropic-ratelimit-input-tokens-limit": "40000",
            "anthropic-ratelimit-input-tokens-remaining": "39000",
        },
        now=1_800_000_000.0 - 0.0,  # 2027-01-15T08:00:00Z
    )
    assert limits is not None and limits.exhausted
    assert limits.reset_in == pytest.approx(30.0)


def test_a_retry_after_date_and_milliseconds() -> None:
    dated = read_rate_limits({"retry-after": "Fri, 15 Jan 2027 08:00:05 GMT"}, now=T0)
    assert dated is not None and dated.retry_after == pytest.approx(5.0)
    millis = read_rate_limits({"retry-after-ms": "250", "retry-after": "1"}, now=T0)
    assert millis is not None and millis.retry_after == pytest.approx(0.25)


def test_headers_without_rate_limits_say_nothing() -> None:
    assert read_rate_limits({"content-type": "application/json"}, now=T0) is None


# -- a pool in a chain -------------------------------------------------------------------


@dataclass
class Member:
    key: str
    fake: FakeEntry


def pooled(
    models: Sequence[Any] | dict[str, Any],
    clock: FakeClock,
    registry: fc.HealthRegistry,
    **options: Any,
) -> tuple[fc.FailoverChain[Member], list[fc.FailoverEvent]]:
    events: list[fc.FailoverEvent] = []
    options.setdefault("observer", events.append)
    options.setdefault("backoff", lambda n: 0.1 * n)
    pools: list[PoolGroup] = []
    entries = fc.build_entries(
        models,
        model_type=FakeEntry,
        what="fakes",
        key_of=lambda f: f.key,
        make=Member,
        nested=lambda f: None,
        pools=pools,
    )
    policy = fc.FailoverPolicy.build(**options)
    chain = fc.FailoverChain(
        entries, policy, registry, sleep=clock.sleep, asleep=clock.asleep, pools=pools
    )
    return chain, events


def pool(*members: Any, clock: FakeClock, seed: int = 7) -> fc.Pool:
    return fc.Pool(*members, balancer=balancer(clock, seed))


def test_members_are_keyed_by_the_pool_or_numbered(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b, c = FakeEntry("openai/gpt"), FakeEntry("openai/gpt"), FakeEntry("x/y")
    chain, _ = pooled([pool(a, b, clock=clock), c], clock, registry)
    assert chain.keys == ("openai/gpt#1", "openai/gpt#2", "x/y")
    chain, _ = pooled([pool({"east": a, "west": b}, clock=clock), c], clock, registry)
    assert chain.keys == ("east", "west", "x/y")
    chain, _ = pooled({"gpt": pool(a, b, clock=clock), "backup": c}, clock, registry)
    assert chain.keys == ("gpt#1", "gpt#2", "backup")


def test_a_pool_in_a_pool_is_refused(clock: FakeClock) -> None:
    with pytest.raises(fc.ChainConfigError, match="pool"):
        fc.Pool(fc.Pool(FakeEntry("a")))
    with pytest.raises(fc.ChainConfigError, match="at least one"):
        fc.Pool()


def test_a_failed_member_is_followed_at_once_by_another(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("m", [HTTPError(503)]), FakeEntry("m", [HTTPError(503)])
    c = FakeEntry("backup")
    chain, events = pooled([pool({"east": a, "west": b}, clock=clock), c], clock, registry)
    result, served = chain.invoke(lambda e: e.fake.call())
    assert served.model == "backup" and result == "backup:ok"
    assert a.calls + b.calls == 1 + 3  # the first member once, the last with its retries
    assert len(clock.slept) == 2  # backoff only on the last member
    assert events[0].reason == "pool_next"
    assert {events[0].model, events[0].next_model} == {"east", "west"}


def test_the_pool_answers_from_the_next_member(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    broken, healthy = FakeEntry("m", [HTTPError(429)]), FakeEntry("m")
    p = pool({"east": broken, "west": healthy}, clock=clock)
    p.balancer.ended("west", "success", p.balancer.started("west") - 5.0)  # west looks slow
    chain, events = pooled([p], clock, registry)
    served = chain.invoke(lambda e: e.fake.call())[1]
    assert (served.model, served.failed_attempts) == ("west", 1)
    assert clock.slept == [] and (broken.calls, healthy.calls) == (1, 1)
    assert [(e.model, e.reason, e.next_model) for e in events] == [("east", "pool_next", "west")]


def test_a_request_specific_error_skips_the_rest_of_the_pool(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("m", [HTTPError(400)]), FakeEntry("m", [HTTPError(400)])
    c = FakeEntry("backup")
    chain, _ = pooled([pool(a, b, clock=clock), c], clock, registry)
    assert chain.invoke(lambda e: e.fake.call())[1].model == "backup"
    assert a.calls + b.calls == 1


def test_members_are_benched_one_by_one(clock: FakeClock, registry: fc.HealthRegistry) -> None:
    bad, good = FakeEntry("m", [HTTPError(503)]), FakeEntry("m")
    chain, _ = pooled([pool({"bad": bad, "good": good}, clock=clock)], clock, registry)
    while True:
        assert chain.invoke(lambda e: e.fake.call())[1].model == "good"
        if bad.calls == 3:
            break
        clock.advance(30)  # long enough for the balancer to try "bad" again
    # Checked at once: a transient bench is short (transient_cooldown) and would be over
    # after another 30 s.
    assert registry.is_benched("bad") and not registry.is_benched("good")
    assert bad.calls == 3  # three strikes across requests, then benched
    assert [b.model for b in registry.list()] == ["bad"]


def test_a_member_out_of_rate_limit_is_passed_over(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = FakeEntry("m"), FakeEntry("m")
    p = pool({"a": a, "b": b}, clock=clock)
    chain, _ = pooled([p], clock, registry)
    out = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"}
    chain.note_response("a", out)
    for _ in range(10):
        assert chain.invoke(lambda e: e.fake.call())[1].model == "b"
    clock.advance(31)
    served = Counter(chain.invoke(lambda e: e.fake.call())[1].model for _ in range(20))
    assert served["a"] > 0


def test_a_429_on_one_member_keeps_it_out_of_later_requests(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    limited = HTTPError(429, headers={"retry-after": "20"})
    a, b = FakeEntry("m", [limited, "ok"]), FakeEntry("m")
    chain, _ = pooled(
        [pool({"a": a, "b": b}, clock=clock, seed=1), FakeEntry("c")], clock, registry
    )
    for _ in range(10):
        chain.invoke(lambda e: e.fake.call())
    assert a.calls <= 1  # one 429 at most, then passed over until the reset


def test_members_out_of_budget_are_a_last_resort(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, c = FakeEntry("m"), FakeEntry("c", [HTTPError(400)])
    chain, _ = pooled([pool({"a": a}, clock=clock), c], clock, registry)
    chain.note_response("a", {"x-ratelimit-remaining-requests": "0"})
    assert chain.invoke(lambda e: e.fake.call())[1].model == "a"
    assert c.calls == 1


def test_a_nested_chain_keeps_its_pools(clock: FakeClock, registry: fc.HealthRegistry) -> None:
    inner, _ = pooled([pool(FakeEntry("m"), FakeEntry("m"), clock=clock)], clock, registry)
    pools: list[PoolGroup] = []
    entries = fc.build_entries(
        [FakeEntry("first"), FakeEntry("inner")],
        model_type=FakeEntry,
        what="fakes",
        key_of=lambda f: f.key,
        make=Member,
        nested=lambda f: inner if f.key == "inner" else None,
        pools=pools,
    )
    assert [e.key for e in entries] == ["first", "m#1", "m#2"]
    assert pools == list(inner.pools)


def test_the_flow_times_members_on_the_balancers_clock(clock: FakeClock) -> None:
    b = balancer(clock)
    group = PoolGroup(("a", "b"), fc.Pool({"a": 1, "b": 2}, balancer=b))
    registry = fc.HealthRegistry(clock=clock)
    flow = FailoverFlow(("a", "b", "c"), fc.FailoverPolicy.build(), registry, pools=[group])
    attempt = flow.start()
    assert attempt.key in {"a", "b"}
    assert {s.key: s.in_flight for s in b.snapshot(["a", "b"])}[attempt.key] == 1
    clock.advance(1.5)
    flow.succeeded()
    snap = {s.key: s for s in b.snapshot(["a", "b"])}[attempt.key]
    assert snap.in_flight == 0 and snap.latency == pytest.approx(1.5)


def test_a_hedge_goes_to_another_member_first(clock: FakeClock) -> None:
    set_hedging(Hedging(LatencyTracker(), fc.HedgeBudget(clock=clock), clock=clock))
    b = balancer(clock)
    group = PoolGroup(("a", "b"), fc.Pool({"a": 1, "b": 2}, balancer=b))
    registry = fc.HealthRegistry(clock=clock)
    policy = fc.FailoverPolicy.build(hedge_after=0.5)
    flow = FailoverFlow(("a", "b", "c"), policy, registry, pools=[group])
    first = flow.start()
    assert flow.hedge_delay(streamed=False) == 0.5
    hedge = flow.hedge()
    assert hedge is not None and {first.key, hedge.key} == {"a", "b"}
    assert all(s.in_flight == 1 for s in b.snapshot(["a", "b"]))
    flow.race_won(hedge=True)
    assert flow.succeeded().model == hedge.key
    assert all(s.in_flight == 0 for s in b.snapshot(["a", "b"]))


async def test_fifty_concurrent_requests_over_two_members_all_succeed(
    registry: fc.HealthRegistry,
) -> None:
    a, b = FakeEntry("m"), FakeEntry("m")
    p = fc.Pool({"a": a, "b": b})
    chain, events = pooled([p], FakeClock(), registry)
    results = await asyncio.gather(*(chain.ainvoke(lambda e: e.fake.acall()) for _ in range(50)))
    served = Counter(s.model for _, s in results)
    assert served["a"] > 0 and served["b"] > 0 and sum(served.values()) == 50
    assert events == []
    assert all(s.in_flight == 0 for s in p.balancer.snapshot(["a", "b"]))


# -- the simulator's rate limits ---------------------------------------------------------


def test_the_simulator_announces_its_limits_and_answers_429_past_them(
    provider_sim: Any,
) -> None:
    import anthropic
    import openai

    provider_sim.set_rate_limit("gpt-4o-mini", requests=2, tokens=10_000, window=60)
    client = openai.OpenAI(base_url=provider_sim.openai_base_url, api_key="k", max_retries=0)
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    first = client.chat.completions.with_raw_response.create(**ask)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert 0 < parse_duration(first.headers["x-ratelimit-reset-requests"]) <= 60  # type: ignore[operator]
    client.chat.completions.create(**ask)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(**ask)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert provider_sim.rate_limited("gpt-4o-mini") == 1

    provider_sim.set_rate_limit("claude-haiku", requests=1, window=60)
    claude = anthropic.Anthropic(
        base_url=provider_sim.anthropic_base_url, api_key="k", max_retries=0
    )
    raw = claude.messages.with_raw_response.create(
        model="claude-haiku", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    limits = read_rate_limits(raw.headers, now=__import__("time").time())
    assert limits is not None and limits.exhausted and 0 < (limits.reset_in or 0) <= 60
