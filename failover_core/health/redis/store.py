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

**The cache** (``cache=True``, the default) makes a healthy request cost no round trip.
Every record under the prefix is held in the process, and the server keeps that copy exact:
a connection of the store's own asks for ``CLIENT TRACKING ON REDIRECT <itself> BCAST
PREFIX <prefix>`` and subscribes to ``__redis__:invalidate``, so every write to any key
under the prefix (by any client, a ``redis-cli`` included, and expiries too) is announced
to it; it then re-reads those keys. Why this and not the alternatives:

* *BCAST on the prefix* rather than default tracking: the server announces keys this
  process never read, so "absent" is cached too (a healthy model has no record at all) and
  the server keeps no per-key table of readers. The prefix holds one key per benched model.
* *Tracking* rather than an invalidation channel the library publishes on: a record
  written by hand or expired by its TTL is announced as well, with no extra command per
  write.
* *Its own connection in RESP2 with REDIRECT* rather than redis-py's client-side cache
  (RESP3): it works with redis-py 5 and later, does not depend on a read to process
  invalidations, and tells the store the moment the connection is lost.

The copy is trusted only while that connection is up: it is loaded after the
subscription (so nothing written meanwhile is missed) and dropped the moment the
connection fails or a ``PING`` every ``heartbeat`` seconds goes unanswered. Untrusted,
reads go to Redis as before (or, on an event loop, to in-process health: see
:class:`~failover_core.FailOpenStore`) until it is re-established. A server without
client tracking (before Redis 6) is said once in a warning, and the store then reads
Redis on every call, as it did before the cache.

On an event loop the store never waits on the network: :meth:`peek`,
:meth:`update_later` and :meth:`claim_in_background` answer from the copy and hand the
transaction to a writer thread of the store's own; :meth:`claim_ahead` lets an async
driver await a probe lease without blocking the loop (see ``HealthRegistry.prepare``).

Measured (``python -m benchmarks.fleet_cache``, loopback, 4 workers): 0 commands for a
healthy request against 5 per request reading Redis on every call; a bench seen by the
other workers in 5.5 ms p50, 11 ms p99; no Redis command sent on an event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoPermissionError
from redis.retry import Retry

from ...telemetry.events import logger
from ...telemetry.printable import printable
from ..failopen import NotCached
from ..records import HealthRecord, Update, report_bad_record
from .codec import decode, encode, millis
from .tally import HedgeTally

__all__ = ["HedgeTally", "NotCached", "RedisHealthStore"]

_CONFLICTS = 1000  # optimistic retries on a key before giving up (a livelock guard only)
_CHANNEL = "__redis__:invalidate"
_CLIENT_NAME = "llm-failover-invalidation"
_CLOCK_SYNC = 60.0  # seconds between two readings of the server's clock
_SEEN_LIMIT = 10_000  # keys whose invalidations are counted before the count starts over


_WRONG_TYPE = "not a string value (WRONGTYPE)"


def _wrong_type(exc: redis.ResponseError) -> bool:
    return str(exc).startswith("WRONGTYPE")


class _NoTracking(Exception):
    """The server refused ``CLIENT TRACKING`` (older than Redis 6)."""


class _NotPermitted(_NoTracking):
    """The Redis user may not run ``CLIENT`` or ``SUBSCRIBE`` (an ACL without them)."""


def _nothing() -> None:
    return None


class RedisHealthStore:
    """A :class:`~failover_core.HealthStore` on Redis (redis-py), cached in the process.

    Give it a client built without retries (as :meth:`from_url` does): a client that
    retries turns one slow call into several timeouts. ``cache=False`` reads Redis on every
    call (the command line tool does: it makes one call and exits).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "llm-failover:health:",
        retention: float = 3600.0,
        strike_window: float = 600.0,
        cache: bool = True,
        heartbeat: float = 1.0,
        reconnect_after: float = 0.1,
        hedge_prefix: str = "llm-failover:hedges:",
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.hedge_prefix = hedge_prefix
        self.retention = retention
        self.strike_window = strike_window
        self.cache = cache
        self.heartbeat = heartbeat
        self.reconnect_after = reconnect_after
        self.tracking_supported: bool | None = None  # known once the server has answered
        self.invalidation_client_id: int | None = None  # its CLIENT ID, for operators
        self._lock = threading.Lock()
        self._pid = 0
        self._closed = threading.Event()
        self._reset_cache()

    def _reset_cache(self) -> None:
        self._trusted = False
        self._records: dict[str, HealthRecord] = {}  # the copy: a key not here is absent
        self._stale: set[str] = set()  # changed; being re-read (or written by us)
        self._seen: dict[str, int] = {}  # bumped by each invalidation of a key
        self._epoch = 0  # bumped by each (re)load of the whole copy
        self._lost = False  # the connection was lost and has not come back yet
        self._offset: float | None = None  # the server's clock minus ours, off the loop
        self._synced = 0.0  # when the offset was measured (monotonic)
        self._leases: dict[str, float] = {}  # probe leases taken for this process's loop
        self._claims: dict[str, concurrent.futures.Future[None]] = {}  # claims on their way
        self._pending: dict[str, int] = {}  # writes of the loop on their way to Redis
        # Read-your-own-writes for blocking writes: a read of Redis (a reload, an
        # invalidation) that overlapped one of them may predate it, so it leaves the key
        # stale (read from Redis) until a later invalidation re-reads it.
        self._writing: dict[str, int] = {}  # transactions in flight, by key
        self._writes_done = 0  # transactions finished so far
        # Each key's last write: the count when it finished, and what it wrote (unknown
        # when the transaction failed: it may or may not have reached Redis).
        self._written: dict[str, tuple[int, bool, HealthRecord | None]] = {}
        self._writes: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._watch_conn: Any = None
        self._run_id: bytes | None = None  # the server's run_id: a new one is a restart
        self._tally = HedgeTally(self.client, self.hedge_prefix, self._now_nowait)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 0.25, **options: Any) -> RedisHealthStore:
        """A store on ``url`` whose calls give up after ``timeout`` seconds (fail fast).

        RESP2 throughout, so servers older than Redis 6 (no ``HELLO``) still answer.
        """
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            protocol=2,
        )
        return cls(client, **options)

    def _key(self, key: str) -> bytes:
        # Encoded here, not by redis-py, which fails every call on a key that is not
        # UTF-8: one read from bytes (surrogateescape, as os.fsdecode) is stored as those
        # bytes, any other lone surrogate as it is (surrogatepass).
        name = self.prefix + key
        try:
            return name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return name.encode("utf-8", "surrogatepass")

    def _key_of(self, name: bytes) -> str:
        """The model key of a Redis key name under the prefix (the inverse of ``_key``)."""
        for errors in ("strict", "surrogatepass"):
            try:
                return name.decode("utf-8", errors)[len(self.prefix) :]
            except UnicodeDecodeError:
                continue
        return name.decode("utf-8", "surrogateescape")[len(self.prefix) :]

    def _get_raw(self, key: str) -> bytes | str | None:
        """The raw value of ``key``; a value that is not a string (a list, a hash: someone
        else's key, or a mistake) is read as absent, logged once, replaced by a write."""
        try:
            raw: bytes | str | None = self.client.get(self._key(key))
        except redis.ResponseError as exc:
            if not _wrong_type(exc):
                raise
            report_bad_record(key, _WRONG_TYPE)
            return None
        return raw

    # -- the cache ----------------------------------------------------------------------

    @property
    def cache_trusted(self) -> bool:
        """Whether reads are answered from the process's copy (the server keeps it exact)."""
        self._start()
        return self._trusted

    def _start(self) -> None:
        """Start the invalidation and writer threads on first use (again after a fork)."""
        if not self.cache or self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._reset_cache()
            self._pid = os.getpid()
        pid = self._pid
        threading.Thread(target=self._watch, args=(pid,), daemon=True, name=_CLIENT_NAME).start()
        threading.Thread(target=self._write_loop, daemon=True, name="llm-failover-writer").start()

    def close(self) -> None:
        """Stop the threads and drop the copy (the store then reads Redis on every call)."""
        self.cache = False
        self._closed.set()
        self._writes.put(None)
        with self._lock:
            pending, self._claims = list(self._claims.values()), {}
        for done in pending:
            if not done.done():
                done.set_result(None)
        with self._lock:
            self._trusted = False
        conn = self._watch_conn
        if conn is not None:
            conn.disconnect()

    def _watch(self, pid: int) -> None:
        """Keep the copy exact while the invalidation connection is up; reconnect when not."""
        while not self._closed.is_set() and self._pid == pid:
            try:
                self._track()
            except _NotPermitted as exc:
                if self.tracking_supported is not False:
                    self.tracking_supported = False
                    logger.warning(
                        "failover: the Redis user has no permission for CLIENT TRACKING and "
                        "SUBSCRIBE (%s): health is not cached; it is read from Redis on every "
                        "request, event loops included (grant +client|id +client|setname "
                        "+client|tracking +subscribe &__redis__:invalidate to cache it)",
                        printable(str(exc)[:80]),
                    )
                self._untrust()
                return
            except _NoTracking as exc:
                if self.tracking_supported is not False:
                    self.tracking_supported = False
                    logger.warning(
                        "failover: this Redis has no client tracking (%s; Redis 6 or later "
                        "has it): health is read from Redis on every request",
                        printable(str(exc)[:80]),
                    )
                self._untrust()
                return
            except Exception as exc:
                if not self._lost and not self._closed.is_set():
                    self._lost = True
                    logger.warning(
                        "failover: Redis invalidation connection lost (%s); health is read "
                        "from Redis (in-process on event loops) until it is back",
                        type(exc).__name__,
                    )
            self._untrust()
            self._closed.wait(self.reconnect_after)

    def _untrust(self) -> None:
        with self._lock:
            self._trusted = False
            self._leases.clear()
        conn, self._watch_conn = self._watch_conn, None
        if conn is not None:
            conn.disconnect()

    def _track(self) -> None:
        pool = self.client.connection_pool
        conn: Any = pool.connection_class(**{**pool.connection_kwargs, "protocol": 2})
        self._watch_conn = conn
        conn.connect()
        restarted = self._restarted(conn)
        try:
            conn.send_command("CLIENT", "SETNAME", _CLIENT_NAME)
            conn.read_response()
            conn.send_command("CLIENT", "ID")
            client_id = conn.read_response()
            conn.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", self.prefix
            )
            conn.read_response()
            conn.send_command("SUBSCRIBE", _CHANNEL)
            conn.read_response()
        except NoPermissionError as exc:  # an ACL: told once, never retried
            raise _NotPermitted(str(exc)) from exc
        except redis.ResponseError as exc:
            if str(exc).startswith("NOPERM"):
                raise _NotPermitted(str(exc)) from exc
            raise _NoTracking(str(exc)) from exc
        self.tracking_supported = True
        self.invalidation_client_id = int(client_id)
        self._load(reassert=restarted)  # after subscribing: later writes are announced
        with self._lock:
            self._trusted = True
        if self._lost:
            self._lost = False
            logger.info("failover: Redis invalidation connection is back; health is cached again")
        pinged: float | None = None
        next_ping = time.monotonic() + self.heartbeat
        lingering: set[str] = set()
        while not self._closed.is_set():
            if conn.can_read(timeout=min(self.heartbeat, 0.25)):
                message = conn.read_response()
                if message[0] == b"pong":
                    pinged = None
                elif message[0] == b"message":
                    self._invalidated(message[2])
                continue
            # A safety net: a key still marked changed a quiet quarter second later is
            # re-read, so a race this code did not foresee cannot leave the copy behind.
            with self._lock:
                stale = self._stale - self._pending.keys()
            if again := sorted(stale & lingering):
                self._invalidated([self._key(key) for key in again])
            lingering = stale
            now = time.monotonic()
            if pinged is not None and now - pinged > max(self.heartbeat, 0.5):
                raise TimeoutError("the invalidation connection stopped answering")
            if pinged is None and now >= next_ping:
                conn.send_command("PING")
                pinged, next_ping = now, now + self.heartbeat
                if now - self._synced > _CLOCK_SYNC:
                    self._sync_clock()

    def _restarted(self, conn: Any) -> bool:
        """Whether the server restarted since the copy was last loaded (a new ``run_id``).
        A user who may not run ``INFO`` is never told: nothing is re-asserted then."""
        try:
            conn.send_command("INFO", "server")
            info = conn.read_response()
        except redis.ResponseError:
            return False
        run_id = next(
            (line[7:].strip() for line in bytes(info).splitlines() if line.startswith(b"run_id:")),
            None,
        )
        before, self._run_id = self._run_id, run_id
        return before is not None and run_id is not None and run_id != before

    def _reassert(self, records: dict[str, HealthRecord]) -> None:
        """After a restart that lost them (no persistence), write back the benches this
        process knew and that are still in force; a later end in Redis wins. (A flush by
        an operator is not a restart: nothing is re-asserted then.)"""
        offset = self._offset
        if offset is None:
            return
        now = time.time() + offset
        with self._lock:
            known = dict(self._records)
        for key, record in known.items():
            here = records.get(key)
            if record.until is None or record.until < now:
                continue
            if here is not None and (here.until or 0.0) >= record.until:
                continue
            records[key] = record  # this process keeps honouring it meanwhile
            with self._lock:  # a write of ours on its way: the copy answers for it
                self._stale.add(key)
                self._pending[key] = self._pending.get(key, 0) + 1
            self._writes.put(partial(self._write_back, key, record))

    def _write_back(self, key: str, record: HealthRecord) -> None:
        def later(shared: HealthRecord | None) -> HealthRecord | None:
            if shared is None or (record.until or 0.0) > (shared.until or 0.0):
                return record
            return shared

        try:
            self._transact(key, later)
        except Exception as exc:  # Redis away again: the copy is reloaded when it is back
            logger.debug("failover: bench of %s not re-asserted: %r", printable(key), exc)
            return
        finally:
            with self._lock:
                left = self._pending.pop(key, 1) - 1
                if left:
                    self._pending[key] = left
        self._refresh(key)

    def _load(self, *, reassert: bool = False) -> None:
        """Read every record under the prefix into the copy (and, after a restart that
        lost them, write back the benches in force this process knew)."""
        with self._lock:
            began = self._writes_done
        records: dict[str, HealthRecord] = {}
        for key, record in self.items():
            records[key] = record
        self._sync_clock()
        if reassert:
            self._reassert(records)
        with self._lock:
            for key in self._pending:  # the loop's own writes, not in Redis yet
                self._set_in(records, key, self._records.get(key))
            self._records = records
            self._stale = {
                key for key in [*self._written, *self._writing] if self._hides(key, began)
            }
            self._epoch += 1

    def _hides(self, key: str, began: int) -> bool:
        """Whether the copy of ``key``, read from Redis since the count of writes was
        ``began``, may hide this process's own write (under the lock): one was in flight,
        or one finished meanwhile and the copy does not hold what it wrote."""
        if key in self._writing:
            return True
        done = self._written.get(key)
        if done is None or done[0] < began:
            return False
        _, known, record = done
        return not known or record != self._records.get(key)

    def _sync_clock(self) -> None:
        self._synced = time.monotonic()
        local = time.time()
        seconds, micros = self.client.time()
        self._offset = float(seconds) + float(micros) / 1e6 - (local + time.time()) / 2

    def _invalidated(self, names: list[bytes] | None) -> None:
        """Keys announced changed: mark them, re-read them, keep what is current."""
        if names is None:  # FLUSHDB / FLUSHALL
            self._load()
            return
        keys = [self._key_of(name) for name in names if name.startswith(self.prefix.encode())]
        if not keys:
            return
        with self._lock:
            overflow = len(self._seen) + len(keys) > _SEEN_LIMIT
            if overflow:
                # Bounded: keys come and go (every short-lived record leaves a count).
                # Starting over is a new epoch, so every token taken before it is stale
                # (this batch's keys included: they need no count of their own).
                self._seen.clear()
                self._epoch += 1
            for key in keys:
                self._stale.add(key)
                if not overflow:
                    self._seen[key] = self._seen.get(key, 0) + 1
            began = self._writes_done
        raws = self.client.mget([self._key(key) for key in keys])
        with self._lock:
            for key, raw in zip(keys, raws, strict=True):
                if key in self._pending:
                    continue  # the loop's own write, not in Redis yet: settled after it
                self._set(key, decode(key, raw))
                if not self._hides(key, began):
                    self._stale.discard(key)

    def _refresh(self, key: str) -> None:
        """Re-read ``key`` after the loop's write reached Redis (off the loop)."""
        for _ in range(10):
            seen = self._seen_now(key)
            try:
                raw = self._get_raw(key)
            except Exception:
                return  # stays stale: read from Redis until its next invalidation
            with self._lock:
                if key in self._pending:
                    return  # another write of the loop is on its way; it re-reads after
                if (self._epoch, self._seen.get(key, 0)) == seen:
                    self._set(key, decode(key, raw))
                    if key not in self._writing:
                        self._stale.discard(key)
                    return

    def _set(self, key: str, record: HealthRecord | None) -> None:
        self._set_in(self._records, key, record)

    @staticmethod
    def _set_in(records: dict[str, HealthRecord], key: str, record: HealthRecord | None) -> None:
        if record is None:
            records.pop(key, None)
        else:
            records[key] = record

    def _fresh(self, key: str) -> tuple[bool, HealthRecord | None]:
        """(whether the copy can answer for ``key``, its record there). It can while it is
        trusted and not re-reading the key, and, whatever Redis holds yet, while a write
        of this process's loop is on its way to it (this process reads its own writes)."""
        self._start()
        with self._lock:
            record = self._records.get(key)
            if key in self._pending:
                return True, record
            return self._trusted and key not in self._stale, record

    def _seen_now(self, key: str) -> tuple[int, int]:
        """A token that changes whenever the copy of ``key`` is re-read from Redis."""
        with self._lock:
            return self._epoch, self._seen.get(key, 0)

    def _settled(
        self, key: str, record: HealthRecord | None, wrote: bool, seen: tuple[int, int]
    ) -> None:
        """After a transaction that read or wrote ``record``, with ``seen`` invalidations of
        the key read before it began (called once it is no longer counted in flight).

        Once an invalidation or a reload came in meanwhile, the copy is the invalidation
        thread's, and it left the key stale if its read may predate a write; the key is
        settled here only when the copy holds what this transaction found or wrote (else a
        later invalidation, or the watcher's safety net, re-reads it). Otherwise: a write
        stays stale (read from Redis) until its own invalidation is read; a transaction
        that wrote nothing read the current record, which settles what the loop wrote
        ahead of it."""
        with self._lock:
            if (self._epoch, self._seen.get(key, 0)) != seen:
                if self._records.get(key) == record and key not in self._writing:
                    self._stale.discard(key)
                return
            self._set(key, record)
            if (wrote and self._trusted) or key in self._writing:
                self._stale.add(key)
            else:
                self._stale.discard(key)

    # -- the store ----------------------------------------------------------------------

    def time(self) -> float:
        """The server's clock, in epoch seconds: our clock plus the offset the invalidation
        thread measures (``TIME``) while the copy is trusted; otherwise ``TIME`` now. Without
        client tracking (an old server, an ACL) an offset measured here is reused for a
        minute, as the invalidation thread's is: a health read costs one round trip, not
        three."""
        entered = time.time()
        self._start()
        offset = self._offset
        reuse = self._trusted or (
            self.tracking_supported is False and time.monotonic() - self._synced < _CLOCK_SYNC
        )
        if offset is not None and reuse:
            return time.time() + offset
        self.client.ping()  # connected first: the reading below is one round trip
        before = time.time()
        seconds, micros = self.client.time()
        after = time.time()
        server = float(seconds) + float(micros) / 1e6
        if self.tracking_supported is False:
            self._offset, self._synced = server - (before + after) / 2, time.monotonic()
        # The server's clock at the middle of this whole call (which a caller takes as the
        # instant it answered), not at the middle of a call that also connected.
        return server + (entered + after) / 2 - (before + after) / 2

    def ping(self) -> None:
        """Ask the server itself (the copy cannot say whether Redis is back)."""
        self.client.ping()

    def get(self, key: str) -> HealthRecord | None:
        fresh, record = self._fresh(key)
        if fresh:
            return record
        return decode(key, self._get_raw(key))

    def update(self, key: str, fn: Update) -> HealthRecord | None:
        """``fn`` on the record, written back atomically; with a fresh copy that ``fn``
        leaves as it is, nothing is sent at all."""
        return self._update(key, fn)[0]

    def _update(self, key: str, fn: Update) -> tuple[HealthRecord | None, bool]:
        fresh, cached = self._fresh(key)
        if fresh and fn(cached) is cached:
            return cached, False
        with self._lock:
            seen = self._epoch, self._seen.get(key, 0)
            self._writing[key] = self._writing.get(key, 0) + 1
        new, wrote, failed = None, True, True  # a transaction that failed may have written
        try:
            new, wrote = self._transact(key, fn)
            failed = False
        finally:
            with self._lock:
                left = self._writing.pop(key) - 1
                if left:
                    self._writing[key] = left
                if wrote:
                    self._written[key] = self._writes_done, not failed, new
                    self._writes_done += 1
        if self.cache:
            self._settled(key, new, wrote, seen)
        return new, wrote

    def _transact(self, key: str, fn: Update) -> tuple[HealthRecord | None, bool]:
        """``WATCH``, read and ``TIME`` in one round trip; ``fn``; then ``MULTI``/``EXEC``.
        Returns the record and whether it was written.

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
                wrong_type = False
                try:
                    raw = conn.read_response()
                except redis.ResponseError as exc:
                    if not _wrong_type(exc):
                        raise
                    report_bad_record(key, _WRONG_TYPE)
                    raw, wrong_type = None, True  # replaced below, whatever fn answers
                seconds, micros = conn.read_response()
                server_now = int(seconds) + int(micros) / 1e6
                current = decode(key, raw)
                new = fn(current)
                if new is current and not wrong_type and (raw is None or current is not None):
                    conn.send_command("UNWATCH")  # nothing to write
                    conn.read_response()
                    return new, False
                if new is None:
                    write: tuple[Any, ...] = ("DEL", name)
                elif new.until is not None:
                    ttl = max(new.until - server_now, 0.0) + self.retention
                    write = ("SET", name, encode(new), "PX", millis(ttl))
                else:
                    write = ("SET", name, encode(new), "PX", millis(self.strike_window))
                conn.send_packed_command(conn.pack_commands([("MULTI",), write, ("EXEC",)]))
                conn.read_response()
                conn.read_response()
                if conn.read_response() is not None:
                    return new, True
            except BaseException:
                conn.disconnect()  # never talk again to a server that did not answer
                raise
            finally:
                pool.release(conn)
        raise redis.WatchError(f"{name!r} kept changing under {_CONFLICTS} attempts")

    # -- without waiting (event loops) --------------------------------------------------

    def nonblocking(self) -> bool:
        """Whether this store can answer an event loop without the network (cached)."""
        return self.cache and self.tracking_supported is not False

    def peek(self, key: str) -> HealthRecord | None:
        """The record from the copy, never the network: what this process last knew of it
        (exact but for a write announced a moment ago). Raises :class:`NotCached` while the
        copy is not trusted."""
        self._start()
        with self._lock:
            if not self._trusted:
                raise NotCached(key)
            return self._records.get(key)

    def clock_nowait(self) -> float | None:
        """The server's clock without the network, or ``None`` when not measured yet."""
        offset = self._offset
        return None if offset is None or not self._trusted else time.time() + offset

    def update_later(
        self,
        key: str,
        fn: Update,
        on_error: Callable[[Exception], None],
        on_written: Callable[[], None] = _nothing,
    ) -> HealthRecord | None:
        """``fn`` applied to the copy now, and to Redis by the writer thread (where ``fn``
        runs again on the record Redis holds). Returns the record as this process sees it;
        ``on_error`` is told if the write fails, ``on_written`` once it is done (or when
        there was nothing to write). Raises :class:`NotCached` while the copy is not
        trusted."""
        with self._lock:
            if not self._trusted:
                raise NotCached(key)
            cached = self._records.get(key)
            exact = key not in self._stale and key not in self._pending
        new = fn(cached)
        if new is cached and exact:
            on_written()
            return cached  # nothing to write, as Redis holds it
        with self._lock:  # this process sees its own write at once
            self._set(key, new)
            self._stale.add(key)
            self._pending[key] = self._pending.get(key, 0) + 1

        def write() -> None:
            try:
                self._transact(key, fn)
            except Exception as exc:
                on_error(exc)
                return
            finally:
                with self._lock:
                    left = self._pending.pop(key, 1) - 1
                    if left:
                        self._pending[key] = left
            on_written()
            self._refresh(key)

        self._writes.put(write)
        return new

    def claim_in_background(
        self, key: str, fn: Update, on_error: Callable[[Exception], None]
    ) -> bool:
        """An exclusive claim (a probe lease) for a caller that cannot wait.

        ``fn`` changes the record only when it takes the lease. ``True`` when this process
        took the lease in the fleet (:meth:`claim_ahead`, or an earlier call) and the lease
        is still in force: the caller is the one request that holds it. Otherwise the claim
        is handed to the writer thread, for the next caller, and the answer is ``False``.
        """
        with self._lock:
            if not self._trusted:
                raise NotCached(key)
            taken = self._leases.pop(key, None)
            if taken is not None:
                # Ours until it runs out: we wrote it in a transaction, and the registry
                # asks only while the record is still recovering. (The copy may not show
                # it yet: its invalidation can still be on its way.)
                now = self.clock_nowait()
                if now is None or now < taken:
                    return True
            if key in self._claims:
                return False
        self._queue_claim(key, fn, on_error)
        return False

    async def claim_ahead(
        self, key: str, fn: Update, on_error: Callable[[Exception], None]
    ) -> bool:
        """Take the lease with ``fn`` without blocking the loop, for the next
        :meth:`claim_in_background` of ``key``; says whether this process holds it. Waits
        at most one timeout, and not at all while another process holds the lease."""
        with self._lock:
            if not self._trusted:
                raise NotCached(key)
            if key in self._leases:
                return True
            cached = self._records.get(key)
        now = self.clock_nowait()
        leased = cached is not None and cached.probe_until is not None
        if leased and now is not None and cached is not None and now <= (cached.probe_until or 0):
            return False  # someone else's lease
        pending = asyncio.wrap_future(self._queue_claim(key, fn, on_error))
        timeout = self.client.connection_pool.connection_kwargs.get("socket_timeout") or 0.25
        # Past one timeout the request goes on without it; the lease goes to a later one.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(pending), timeout)
        with self._lock:
            return key in self._leases

    def _queue_claim(
        self, key: str, fn: Update, on_error: Callable[[Exception], None]
    ) -> concurrent.futures.Future[None]:
        with self._lock:
            pending = self._claims.get(key)
            if pending is not None:
                return pending
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._claims[key] = done

        def claim() -> None:
            try:
                new, wrote = self._update(key, fn)
            except Exception as exc:
                with self._lock:
                    self._claims.pop(key, None)
                done.set_result(None)
                on_error(exc)
                return
            with self._lock:
                self._claims.pop(key, None)
                if wrote and new is not None and new.probe_until is not None:
                    self._leases[key] = new.probe_until
            done.set_result(None)

        self._writes.put(claim)
        return done

    def _write_loop(self) -> None:
        tally = self._tally
        while True:
            try:
                job = self._writes.get(timeout=tally.every)
            except queue.Empty:
                job = _nothing
            if job is None:
                return
            job()
            if tally.due():
                try:
                    tally.exchange()
                except Exception as exc:  # Redis away: the budgets count this process alone
                    logger.debug("failover: hedge counts not exchanged: %r", exc)

    @property
    def hedge_tally(self) -> HedgeTally | None:
        """The fleet's hedge budget counts (see :class:`HedgeTally`); ``None`` without the
        cache (no writer thread to exchange them)."""
        self._start()
        return self._tally if self.cache else None

    def _now_nowait(self) -> float:
        """The server's clock if measured, else ours (the tally's buckets)."""
        now = self.clock_nowait()
        return time.time() if now is None else now

    # -- listing ------------------------------------------------------------------------

    def _names(self) -> Iterator[bytes]:
        yield from self.client.scan_iter(match=self.prefix + "*", count=500)

    def items(self) -> list[tuple[str, HealthRecord]]:
        names = list(self._names())
        out: list[tuple[str, HealthRecord]] = []
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            for name, raw in zip(batch, self.client.mget(batch), strict=True):
                key = self._key_of(name)
                record = decode(key, raw)
                if record is not None:
                    out.append((key, record))
        return out

    def clear(self) -> None:
        names = list(self._names())
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])
