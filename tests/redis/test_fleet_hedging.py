"""The hedge budget holds for the fleet when health is on Redis (issue 16, item 4): every
worker counts the others' requests and hedges, exchanged in the background, and goes by its
own counts alone while Redis is away."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

import failover_core as fc
from failover_core.flow import hedging as _hedge
from failover_core.flow.engine import FailoverFlow
from failover_core.flow.hedging import Hedging, LatencyTracker
from failover_core.redis_store import HedgeTally, RedisHealthStore
from tests.redis.conftest import RedisServer


@pytest.fixture
def workers(redis_url: str) -> Iterator[list[RedisHealthStore]]:
    """Two workers' stores on one Redis (each with its own copy, tally and threads)."""
    stores = [RedisHealthStore.from_url(redis_url) for _ in range(2)]
    yield stores
    for store in stores:
        store.close()


def tally(store: RedisHealthStore) -> HedgeTally:
    found = store.hedge_tally
    assert found is not None
    return found


def test_the_share_is_of_the_fleets_requests_not_each_workers(
    workers: list[RedisHealthStore],
) -> None:
    a, b = (tally(store) for store in workers)
    a_budget, b_budget = fc.HedgeBudget(share=0.1), fc.HedgeBudget(share=0.1)
    assert b.others(60.0) is None, "nothing heard yet (b reads its window from now on)"
    for _ in range(100):
        a_budget.request(a)
    assert sum(a_budget.try_hedge(a) for _ in range(20)) == 10
    a.exchange()
    b.exchange()
    # Alone, a worker that saw no request may still hedge (its burst); the fleet has
    # spent its share, so b may not.
    assert fc.HedgeBudget(share=0.1).try_hedge(), "alone it would"
    assert not b_budget.try_hedge(b)
    for _ in range(10):  # b's own traffic earns the fleet one more hedge
        b_budget.request(b)
    assert b_budget.try_hedge(b)
    assert not b_budget.try_hedge(b)
    b.exchange()
    a.exchange()
    assert a.others(60.0) == (10, 1), "a counts b's, not its own twice"
    assert b.others(60.0) == (100, 10)
    assert not a_budget.try_hedge(a), "110 requests, 11 hedges: spent for a too"


def test_the_writer_thread_exchanges_the_counts_by_itself(
    workers: list[RedisHealthStore],
) -> None:
    a, b = (tally(store) for store in workers)
    a.every = b.every = 0.05
    for _ in range(40):
        fc.HedgeBudget().request(a)
    b.others(60.0)  # a budget of b's asks: b's thread starts exchanging
    deadline = time.monotonic() + 5
    while b.others(60.0) != (40, 0):
        assert time.monotonic() < deadline, f"b sees {b.others(60.0)}"
        time.sleep(0.01)


def test_with_redis_away_a_worker_goes_by_its_own_counts(
    redis_server: RedisServer, workers: list[RedisHealthStore]
) -> None:
    a, b = (tally(store) for store in workers)
    a_budget = fc.HedgeBudget(share=0.1)
    b.others(60.0)
    for _ in range(50):
        a_budget.request(a)
    assert sum(a_budget.try_hedge(a) for _ in range(12)) == 10  # the fleet's burst
    a.exchange()
    b.exchange()
    b_budget = fc.HedgeBudget(share=0.1)
    assert not b_budget.try_hedge(b), "the fleet's share is spent"
    b.stale_after = 0.05
    redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        b.exchange()
    time.sleep(0.1)
    assert b.others(60.0) is None, "an old reading is not gone by"
    assert b_budget.try_hedge(b), "its own budget (a burst when quiet)"
    redis_server.start()  # empty: it kept nothing
    for _ in range(10):
        b_budget.request(b)
    b.exchange()  # the counts made while Redis was away reach it now
    a.exchange()
    assert a.others(60.0) == (10, 1)


def test_a_chain_on_the_redis_store_hedges_within_the_fleets_share(
    workers: list[RedisHealthStore],
) -> None:
    """The flow hands the budget its registry's tally: a worker whose fleet has spent the
    share does not hedge a slow attempt (it would, alone)."""
    clock = [0.0]
    hedging = Hedging(LatencyTracker(), fc.HedgeBudget(share=0.1), clock=lambda: clock[0])
    old = _hedge.set_hedging(hedging)
    try:
        busy, quiet = (fc.HealthRegistry(fc.FailOpenStore(store)) for store in workers)
        assert quiet.hedge_tally is not None and quiet.hedge_tally.others(60.0) is None
        spent = fc.HedgeBudget(share=0.1)  # the rest of the fleet: 9 requests, 10 hedges
        for _ in range(9):
            spent.request(busy.hedge_tally)
        assert sum(spent.try_hedge(busy.hedge_tally) for _ in range(11)) == 10
        tally(workers[0]).exchange()
        tally(workers[1]).exchange()
        policy = fc.FailoverPolicy.build(backoff=lambda n: 0.0, hedge_after=0.5)

        def hedged(registry: fc.HealthRegistry) -> bool:
            flow = FailoverFlow(("a", "b"), policy, registry)
            flow.start()
            flow.hedge_delay(streamed=False)
            clock[0] += 0.5
            hedge = flow.hedge()
            if hedge is not None:
                flow.race_won(hedge=False)
            flow.succeeded()
            return hedge is not None

        assert not hedged(quiet), "10 requests in the fleet, 10 hedges: the burst is spent"
        assert hedging.budget.counts() == (1, 0)
        assert hedged(fc.HealthRegistry()), "the same worker with in-process health would"
    finally:
        _hedge.set_hedging(old)
