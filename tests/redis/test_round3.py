"""Reliability round 3 (issue 24) on a real redis-server: a bench survives a store outage,
one bad record is that record's problem, a Redis user without CLIENT, bounded bookkeeping."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

import failover_core as fc
from failover_core.redis_store import RedisHealthStore
from tests.core.fakes import FakeEntry, HTTPError
from tests.redis.conftest import RedisServer

PREFIX = "llm-failover:health:"
COOL = timedelta(minutes=5)

_open: list[RedisHealthStore] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def eventually(check: Callable[[], bool], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def cached(url: str, **options: Any) -> RedisHealthStore:
    store = RedisHealthStore.from_url(url, **options)
    _open.append(store)
    return store


# -- 1. a bench made on an event loop survives a Redis stall --------------------------------


def test_an_async_bench_made_while_redis_stalls_is_kept_and_written_when_it_is_back(
    own_server: RedisServer,
) -> None:
    assert own_server.proc is not None
    primary = cached(own_server.url)
    store = fc.FailOpenStore(primary, retry_after=0.3)
    registry = fc.HealthRegistry(store)
    registry.is_benched("warm/up")
    assert eventually(lambda: primary.cache_trusted)
    dead, good = FakeEntry("m/dead", [HTTPError(401)]), FakeEntry("m/good")
    chain = fc.FailoverChain([dead, good], fc.FailoverPolicy.build(), registry)

    async def call(entry: FakeEntry) -> str:
        return await entry.acall()

    os.kill(own_server.proc.pid, signal.SIGSTOP)
    try:
        assert asyncio.run(chain.ainvoke(call))[1].model == "m/good"
        # The writer's transaction times out (0.25 s), the heartbeat misses (about 1 s):
        # the process goes on in-process, and must still know the bench.
        assert eventually(lambda: not primary.cache_trusted)
        for _ in range(20):
            assert asyncio.run(chain.ainvoke(call))[1].model == "m/good"
            assert registry.is_benched("m/dead")
            time.sleep(0.05)
        assert dead.calls == 1, "the dead model is not called again during the outage"
    finally:
        os.kill(own_server.proc.pid, signal.SIGCONT)
    client = redis.Redis.from_url(own_server.url)

    def written() -> bool:
        asyncio.run(chain.ainvoke(call))  # a request after Redis is back merges it
        return client.get(PREFIX + "m/dead") is not None

    assert eventually(written, 5.0), "the bench reached Redis once it was back"
    assert dead.calls == 1
    other = fc.HealthRegistry(RedisHealthStore.from_url(own_server.url, cache=False))
    assert other.is_benched("m/dead"), "every worker sees it"
