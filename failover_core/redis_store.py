"""Fleet-wide health on Redis: every process pointed at the same Redis shares its benches.

    from failover_core import set_health_store
    from failover_core.redis_store import RedisHealthStore
    set_health_store(RedisHealthStore.from_url("redis://127.0.0.1:6379/0"))

or set ``LLM_FAILOVER_REDIS_URL`` and the process-wide registry uses it on first use, behind
a :class:`~failover_core.FailOpenStore`, so a Redis outage never fails a request.

Each record is one JSON value under ``prefix + key``. Updates are optimistic transactions
(``WATCH``/``MULTI``), retried on conflict, so concurrent workers never lose a bench and
exactly one of them takes a probe lease. Records expire by Redis TTL: a bench is kept
``retention`` seconds past its end (to remember its cooldown for the next probe), strikes
without a bench for ``strike_window`` seconds. Needs the ``redis`` extra.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any, cast

import redis

from ._health import HealthRecord, Update

__all__ = ["RedisHealthStore"]


def _encode(record: HealthRecord) -> str:
    return json.dumps(dataclasses.asdict(record), separators=(",", ":"))


def _decode(raw: bytes | str | None) -> HealthRecord | None:
    if raw is None:
        return None
    data = json.loads(raw)
    fields = {f.name for f in dataclasses.fields(HealthRecord)}
    return HealthRecord(**{k: v for k, v in data.items() if k in fields})


class RedisHealthStore:
    """A :class:`~failover_core.HealthStore` on Redis (redis-py)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "llm-failover:health:",
        retention: float = 3600.0,
        strike_window: float = 600.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.retention = retention
        self.strike_window = strike_window

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 0.25, **options: Any) -> RedisHealthStore:
        """A store on ``url`` whose calls give up after ``timeout`` seconds (fail fast)."""
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        return cls(client, **options)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> HealthRecord | None:
        return _decode(self.client.get(self._key(key)))

    def update(self, key: str, fn: Update) -> HealthRecord | None:
        name = self._key(key)

        def transaction(pipe: Any) -> HealthRecord | None:
            new = fn(_decode(pipe.get(name)))  # the pipe is watching: an immediate read
            pipe.multi()
            if new is None:
                pipe.delete(name)
            elif new.until is not None:
                expires = max(new.until, time.time()) + self.retention
                pipe.set(name, _encode(new), pxat=int(expires * 1000))
            else:
                pipe.set(name, _encode(new), px=int(self.strike_window * 1000))
            return new

        # redis-py retries the callable on WatchError; it returns the callable's value.
        result = self.client.transaction(cast(Any, transaction), name, value_from_callable=True)
        return cast("HealthRecord | None", result)

    def _names(self) -> Iterator[bytes]:
        yield from self.client.scan_iter(match=self.prefix + "*", count=500)

    def items(self) -> list[tuple[str, HealthRecord]]:
        names = list(self._names())
        out: list[tuple[str, HealthRecord]] = []
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            for name, raw in zip(batch, self.client.mget(batch), strict=True):
                record = _decode(raw)
                if record is not None:
                    out.append((name.decode()[len(self.prefix) :], record))
        return out

    def clear(self) -> None:
        names = list(self._names())
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])
