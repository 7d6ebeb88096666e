"""Fleet-wide health on Redis: every process pointed at the same Redis shares its benches.

    from failover_core import set_health_store
    from failover_core.redis_store import RedisHealthStore
    set_health_store(RedisHealthStore.from_url("redis://127.0.0.1:6379/0"))

or set ``LLM_FAILOVER_REDIS_URL`` and the process-wide registry uses it on first use, behind
a :class:`~failover_core.FailOpenStore`, so a Redis outage never fails a request.

Each record is one JSON value under ``prefix + key``. Updates are optimistic transactions
(``WATCH``/``MULTI``), retried on conflict, so concurrent workers never lose a bench and
exactly one of them takes a probe lease. Time is the Redis server's (``TIME``): the
registry keeps records in it and expiry is a relative TTL counted by the server, so hosts
whose clocks disagree still agree on every bench. A bench is kept ``retention`` seconds
past its end (to remember its cooldown for the next probe), strikes without a bench for
``strike_window`` seconds.

Records are untrusted: a value that is not a well-formed record is logged once and read
as absent (an update replaces it). A call that times out costs one timeout: the store
never retries, never sends a clean-up command to a server that did not answer, and drops
the connection instead. Needs the ``redis`` extra.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._health import HealthRecord, Update, record_problem, report_bad_record

__all__ = ["RedisHealthStore"]

_FIELDS = {f.name for f in dataclasses.fields(HealthRecord)}
_CONFLICTS = 1000  # optimistic retries on a key before giving up (a livelock guard only)


def _encode(record: HealthRecord) -> str:
    return json.dumps(dataclasses.asdict(record), separators=(",", ":"), allow_nan=False)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _decode(key: str, raw: bytes | str | None) -> HealthRecord | None:
    """The record in ``raw``, or ``None`` (logged once) when it is not a sound record."""
    if raw is None:
        return None
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        fields = {k: v for k, v in data.items() if k in _FIELDS}
        if isinstance(fields.get("strike_times"), list):
            fields["strike_times"] = tuple(fields["strike_times"])
        record = HealthRecord(**fields)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        report_bad_record(key, f"unreadable: {type(exc).__name__}")
        return None
    problem = record_problem(record)
    if problem is not None:
        report_bad_record(key, problem)
        return None
    return record


def _millis(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisHealthStore:
    """A :class:`~failover_core.HealthStore` on Redis (redis-py).

    Give it a client built without retries (as :meth:`from_url` does): a client that
    retries turns one slow call into several timeouts.
    """

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
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, **options)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def time(self) -> float:
        """The server's clock, in epoch seconds (``TIME``)."""
        seconds, micros = self.client.time()
        return float(seconds) + float(micros) / 1e6

    def get(self, key: str) -> HealthRecord | None:
        return _decode(key, self.client.get(self._key(key)))

    def update(self, key: str, fn: Update) -> HealthRecord | None:
        """``WATCH``, read and ``TIME`` in one round trip; ``fn``; then ``MULTI``/``EXEC``.

        Written on a connection of its own rather than redis-py's pipeline, whose clean-up
        after a timeout (``UNWATCH``, a reconnect) costs a further timeout per step.
        """
        name = self._key(key)
        pool = self.client.connection_pool
        for _ in range(_CONFLICTS):
            conn: Any = pool.get_connection()
            try:
                conn.send_packed_command(
                    conn.pack_commands([("WATCH", name), ("GET", name), ("TIME",)])
                )
                conn.read_response()
                raw = conn.read_response()
                seconds, micros = conn.read_response()
                server_now = int(seconds) + int(micros) / 1e6
                current = _decode(key, raw)
                new = fn(current)
                if new is current and (raw is None or current is not None):
                    conn.send_command("UNWATCH")  # nothing to write
                    conn.read_response()
                    return new
                if new is None:
                    write: tuple[Any, ...] = ("DEL", name)
                elif new.until is not None:
                    ttl = max(new.until - server_now, 0.0) + self.retention
                    write = ("SET", name, _encode(new), "PX", _millis(ttl))
                else:
                    write = ("SET", name, _encode(new), "PX", _millis(self.strike_window))
                conn.send_packed_command(conn.pack_commands([("MULTI",), write, ("EXEC",)]))
                conn.read_response()
                conn.read_response()
                if conn.read_response() is not None:
                    return new
            except BaseException:
                conn.disconnect()  # never talk again to a server that did not answer
                raise
            finally:
                pool.release(conn)
        raise redis.WatchError(f"{name} kept changing under {_CONFLICTS} attempts")

    def _names(self) -> Iterator[bytes]:
        yield from self.client.scan_iter(match=self.prefix + "*", count=500)

    def items(self) -> list[tuple[str, HealthRecord]]:
        names = list(self._names())
        out: list[tuple[str, HealthRecord]] = []
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            for name, raw in zip(batch, self.client.mget(batch), strict=True):
                key = name.decode(errors="replace")[len(self.prefix) :]
                record = _decode(key, raw)
                if record is not None:
                    out.append((key, record))
        return out

    def clear(self) -> None:
        names = list(self._names())
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])
