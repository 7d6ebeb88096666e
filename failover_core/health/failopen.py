"""A store that keeps serving when its shared backend does not."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..telemetry.events import logger
from .memory import MemoryHealthStore
from .records import HealthRecord, HealthStore, Update

if TYPE_CHECKING:
    from ..flow.hedging import FleetTally

__all__ = ["FailOpenStore", "NotCached", "on_event_loop"]


class NotCached(RuntimeError):
    """A store's local copy cannot answer without the network (it is not trusted now)."""


def on_event_loop() -> bool:
    """Whether the caller runs on an asyncio event loop (and must not wait on a socket)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


T = TypeVar("T")
_PING = "llm-failover:ping"


class FailOpenStore:
    """Use ``primary`` (Redis); when it fails, use an in-process store instead.

    A failing call falls back at once, warns once per outage, and the primary is left
    alone for ``retry_after`` seconds (no request waits on a dead Redis meanwhile). When it
    answers again, the benches recorded locally during the outage are merged into it (the
    later end wins) and the fleet shares state again. Nothing raises into a request.

    The benches it last read or wrote in the primary are remembered (one record per key
    in force), and the local store starts the outage with them: a bench made before Redis
    went away, by this worker or any other, is still honoured during the outage. Only what
    changed locally is merged back: Redis stays the authority on what it held, so a bench
    lifted there meanwhile (an operator's unbench seen by other workers) is not revived.

    What a stalled primary costs: the requests already talking to it when it stalls each
    wait one timeout, once; after that, one request per ``retry_after`` window checks it
    again (one timeout while it is still stalled) while every other request goes on with
    the local store without waiting.

    On an event loop, a primary that can answer without the network (the cached
    :class:`~failover_core.redis_store.RedisHealthStore`) is never made to wait: reads come
    from its copy, writes are applied to the copy and handed to its writer thread, and a
    probe lease is claimed in the background and handed to the next request that asks
    (:meth:`claim_in_background`). While its copy is not trusted (its invalidation connection is
    down), calls on the loop use the local store, quietly, and the primary is asked again
    on the next call: as soon as the copy is back, so is the fleet's health.
    """

    def __init__(
        self,
        primary: HealthStore,
        fallback: HealthStore | None = None,
        *,
        retry_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback: HealthStore = fallback if fallback is not None else MemoryHealthStore()
        self.retry_after = retry_after
        self.clock = clock
        self._lock = threading.Lock()
        self._retry_at: float | None = None  # set while the primary is considered down
        self._checking = threading.Lock()  # one request at a time asks a down primary
        self._seen: dict[str, HealthRecord] = {}  # benches last seen in the primary
        self._seeded: dict[str, HealthRecord] = {}  # what the local store started with
        # Updates handed to the primary's writer thread and not known written yet: an
        # outage applies them to the local store, so a bench made on an event loop is kept
        # (and merged back into the primary when it answers again), never lost.
        self._unwritten: dict[int, tuple[str, Update]] = {}
        self._tickets = itertools.count()

    @property
    def hedge_tally(self) -> FleetTally | None:
        """The primary's fleet-wide hedge counts (they fall back to this process's own
        when the primary has been away a while)."""
        tally: FleetTally | None = getattr(self.primary, "hedge_tally", None)
        return tally

    @property
    def degraded(self) -> bool:
        """Whether the last call to the primary failed (the local store is in use)."""
        return self._retry_at is not None

    def _nowait(self) -> bool:
        """Whether this call runs on an event loop and the primary can answer it cached."""
        nonblocking = getattr(self.primary, "nonblocking", None)
        return nonblocking is not None and bool(nonblocking()) and on_event_loop()

    def _call(self, op: Callable[[HealthStore], T], on_loop: Callable[[], T] | None = None) -> T:
        """``op`` on the primary (or ``on_loop``, its no-wait form, on an event loop);
        on the local store while the primary is down or cannot answer without waiting."""
        nowait = on_loop is not None and self._nowait()
        with self._lock:
            retry_at = self._retry_at
        if retry_at is not None and (self.clock() < retry_at or not self._check_back(nowait)):
            return op(self.fallback)
        try:
            return on_loop() if nowait and on_loop is not None else op(self.primary)
        except NotCached:
            self._went_down(None)
            return op(self.fallback)
        except Exception as exc:
            self._went_down(exc)
            return op(self.fallback)

    def _went_down(self, exc: Exception | None) -> None:
        """The primary failed (``exc``), or cannot answer the loop yet (``None``: no
        warning, and it is asked again on the next call)."""
        with self._lock:
            first = self._retry_at is None
            if first:  # before any request reads the local store: start it from what we knew
                self._seeded = dict(self._seen)
                for key, record in self._seeded.items():
                    self.fallback.update(key, _later(record))
                # ... and from what this process has on its way to the primary.
                unwritten, self._unwritten = list(self._unwritten.values()), {}
                for key, fn in unwritten:
                    self.fallback.update(key, fn)
            if exc is None:
                if first:
                    self._retry_at = self.clock()
                return
            self._retry_at = self.clock() + self.retry_after
        if first:
            logger.warning(
                "failover: health store unavailable (%s); using in-process health until "
                "it answers again",
                type(exc).__name__,
            )

    def _check_back(self, nowait: bool) -> bool:
        """Whether the primary is back; only one caller at a time asks, the rest go on."""
        if not self._checking.acquire(blocking=False):
            return False
        try:
            with self._lock:
                if self._retry_at is None:
                    return True  # another request found it back meanwhile
            return self._came_back(nowait)
        finally:
            self._checking.release()

    def _came_back(self, nowait: bool) -> bool:
        """Try the primary again: merge what was recorded locally into it. Says if it is up.

        On an event loop, "back" means its copy is trusted again, and the merge is handed
        to its writer thread."""
        primary: Any = self.primary
        try:
            if nowait:
                primary.peek(_PING)
            elif hasattr(primary, "ping"):
                primary.ping()
            else:
                primary.get(_PING)  # answers even when nothing was recorded locally
            for key, local in self.fallback.items():
                if self._seeded.get(key) != local:  # changed during the outage
                    if nowait:
                        self._update_later(key, _later(local))
                    else:
                        primary.update(key, _later(local))
        except NotCached:  # not yet: ask again on the next call, it costs nothing
            return False
        except Exception:  # still down: keep serving locally, try again later
            with self._lock:
                self._retry_at = self.clock() + self.retry_after
            return False
        with self._lock:
            was_down, self._retry_at = self._retry_at is not None, None
        self.fallback.clear()
        self._seeded = {}
        if was_down:
            logger.info("failover: health store is back; health is shared again")
        return True

    def _write_failed(self, exc: Exception) -> None:
        """A write the primary's writer thread could not make: the primary is down."""
        self._went_down(exc)

    def _update_later(self, key: str, fn: Update) -> HealthRecord | None:
        """``fn`` handed to the primary's writer thread, and kept until it is written: if
        the write fails, ``fn`` is applied to the local store (unless the outage already
        did), which merges it back into the primary when it answers again."""
        ticket = next(self._tickets)
        with self._lock:
            self._unwritten[ticket] = (key, fn)

        def written() -> None:
            with self._lock:
                self._unwritten.pop(ticket, None)

        def failed(exc: Exception) -> None:
            self._went_down(exc)  # applies every unwritten update to the local store
            with self._lock:
                left = self._unwritten.pop(ticket, None)
            if left is not None:  # the outage began earlier: this one is applied here
                self.fallback.update(key, fn)

        primary: Any = self.primary
        try:
            record: HealthRecord | None = primary.update_later(key, fn, failed, written)
        except BaseException:
            written()
            raise
        return record

    def time(self) -> float | None:
        """The primary's clock while it answers (``None`` otherwise: keep the last offset)."""
        primary_time = getattr(self.primary, "time", None)
        if primary_time is None:
            return None
        primary: Any = self.primary

        def clock_nowait() -> float | None:
            now: float | None = primary.clock_nowait()
            return now

        return self._call(
            lambda store: primary_time() if store is self.primary else None, clock_nowait
        )

    def _noted(self, store: HealthStore, key: str, record: HealthRecord | None) -> None:
        if store is not self.primary:
            return
        with self._lock:
            if record is not None and record.until is not None:
                self._seen[key] = record
            else:
                self._seen.pop(key, None)

    def get(self, key: str) -> HealthRecord | None:
        def get(store: HealthStore) -> HealthRecord | None:
            record = store.get(key)
            self._noted(store, key, record)
            return record

        def peek() -> HealthRecord | None:
            record: HealthRecord | None = primary.peek(key)
            self._noted(self.primary, key, record)
            return record

        primary: Any = self.primary
        return self._call(get, peek)

    def update(self, key: str, fn: Update) -> HealthRecord | None:
        def update(store: HealthStore) -> HealthRecord | None:
            record = store.update(key, fn)
            self._noted(store, key, record)
            return record

        def update_later() -> HealthRecord | None:
            # Not noted: what the fleet holds is known once it is written.
            return self._update_later(key, fn)

        return self._call(update, update_later)

    async def claim_ahead(self, key: str, fn: Update) -> bool:
        """On an event loop, take a probe lease for the next :meth:`claim_later` of ``key``
        without blocking the loop (the primary's writer thread makes the claim). Says
        whether this process holds it."""
        if not self._nowait() or self.degraded:
            return False
        primary: Any = self.primary
        try:
            return bool(await primary.claim_ahead(key, fn, self._write_failed))
        except NotCached:
            return False

    def claim_later(self, key: str, fn: Update) -> bool | None:
        """On an event loop, an exclusive claim (a probe lease) without waiting.

        ``True``: the caller holds the lease (taken in the fleet by the primary's writer
        thread for this process); ``False``: not now; ``None``: not on a loop, or the
        primary is not in use: make the claim with :meth:`update` (it will not wait).
        """
        if not self._nowait():
            return None
        primary: Any = self.primary

        def claim(store: HealthStore) -> bool | None:
            return None  # the local store: an ordinary update will do

        def claim_later() -> bool | None:
            return bool(primary.claim_in_background(key, fn, self._write_failed))

        return self._call(claim, claim_later)

    def items(self) -> list[tuple[str, HealthRecord]]:
        return self._call(lambda store: store.items())

    def clear(self) -> None:
        self._call(lambda store: store.clear())


def _later(local: HealthRecord) -> Update:
    def merge(shared: HealthRecord | None) -> HealthRecord | None:
        if shared is None or (local.until or 0.0) > (shared.until or 0.0):
            return local
        return shared

    return merge
