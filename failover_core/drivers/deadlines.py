"""Deadlines for attempts: how the drivers abandon a call that takes too long.

Async attempts run under :func:`asyncio.timeout`: past the deadline the awaited call (or
the stream's pending ``anext``) is cancelled, which closes its HTTP request.

A blocking call cannot be interrupted in place. So when a deadline is set, a sync attempt
runs on a pooled worker thread (in a copy of the caller's context, where LangChain keeps its
callbacks and tracing) and the caller waits for it with a timeout. Past the deadline the
caller moves on; the worker finishes the call when the provider gives up and then closes
the stream it was reading. Idle workers exit after :data:`LINGER` seconds, so abandoned
attempts leave no growing residue. With no deadline set, nothing runs on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import sys
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from functools import partial
from typing import Any, Generic, TypeVar

from .._errors import AttemptTimeoutError
from .abandon import AttemptScope, current_attempt, scoped_context
from .bounded import call_bounded, step_bounded

__all__ = [
    "LINGER",
    "AsyncStreamAttempt",
    "StreamAttempt",
    "acall_within",
    "await_within",
    "call_within",
]

T = TypeVar("T")
C = TypeVar("C")

LINGER = 10.0
"""Seconds an idle worker thread waits for the next attempt before it exits."""


class _Job:
    """One call run on a worker; the caller may abandon it, leaving ``cleanup`` to run."""

    __slots__ = ("_cleanup", "_ctx", "_done", "_error", "_fn", "_lock", "_over", "_value")

    def __init__(self, fn: Callable[[], Any], ctx: contextvars.Context) -> None:
        self._fn, self._ctx = fn, ctx
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._over = False  # finished or abandoned, whichever came first
        self._value: Any = None
        self._error: BaseException | None = None
        self._cleanup: Callable[[], object] | None = None

    def run(self) -> None:
        try:
            self._value = self._ctx.run(self._fn)
        except BaseException as exc:  # handed to the caller, or dropped if it left
            self._error = exc
        with self._lock:
            abandoned, self._over = self._over, True
        if abandoned:
            if self._cleanup is not None:
                with contextlib.suppress(Exception):  # nobody is left to tell
                    self._cleanup()
        else:
            self._done.set()
        self._fn = _nothing  # drop references to the request

    def wait(self, seconds: float | None, cleanup: Callable[[], object] | None) -> bool:
        """Wait; on time, re-raise the call's error. Late: abandon it, ``cleanup`` after it."""
        try:
            finished = self._done.wait(seconds)
        except BaseException:
            self.abandon(cleanup)
            raise
        if not finished and self.abandon(cleanup):
            return False
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return True

    def abandon(self, cleanup: Callable[[], object] | None) -> bool:
        """Leave the call to its worker; False if it finished meanwhile."""
        with self._lock:
            if self._over:
                return False
            self._over, self._cleanup = True, cleanup
            return True

    @property
    def value(self) -> Any:
        return self._value


def _nothing() -> None:
    return None


class _Workers:
    """A cached pool of daemon threads: reused while busy, each exits after ``LINGER`` idle."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, job: _Job) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # promised to an idle worker
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name="llm-failover-attempt", daemon=True).start()

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=LINGER)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:
                        self._idle -= 1
                        return
                continue  # every idle worker is promised a job: ours is on its way
            job.run()
            del job
            with self._lock:
                self._idle += 1


_workers = _Workers()


def _run(fn: Callable[[], Any], ctx: contextvars.Context) -> _Job:
    job = _Job(fn, ctx)
    _workers.submit(job)
    return job


def call_within(
    seconds: float | None, model: str, fn: Callable[[], T], in_place: bool = False
) -> T:
    """``fn()``, abandoned with :class:`AttemptTimeoutError` after ``seconds`` (the
    ``timeout`` deadline). ``None``: called here, on the caller's thread. ``in_place``:
    ``fn``'s transport keeps the deadline itself (:mod:`.bounded`), called here too."""
    if seconds is None:
        return fn()
    if in_place:  # the transport keeps the deadline (see .bounded): nothing to abandon
        return call_bounded(seconds, model, fn)
    scope = AttemptScope()
    job = _run(fn, scoped_context(scope))
    if not job.wait(seconds, None):
        error = AttemptTimeoutError(model, "timeout", seconds)
        scope.abandon(error)
        raise error
    value: T = job.value
    return value


async def acall_within(seconds: float | None, model: str, aw: Awaitable[T]) -> T:
    """The async twin of :func:`call_within`: ``aw`` is cancelled past ``seconds``."""
    if seconds is None:
        return await aw
    return await await_within(aw, seconds, partial(AttemptTimeoutError, model, "timeout", seconds))


class _Clock:
    """When a stream attempt's current wait ends: first output, then between chunks."""

    def __init__(self, model: str, first_token: float | None, idle: float | None) -> None:
        self.model, self.first_token, self.idle = model, first_token, idle
        self.committed = False
        self._first_by: float | None = None

    def start(self, now: float) -> None:
        if self.first_token is not None:
            self._first_by = now + self.first_token

    def left(self, now: float) -> float | None:
        """Seconds the next wait may take (``None``: no deadline)."""
        if self.committed:
            return self.idle
        return None if self._first_by is None else max(self._first_by - now, 0.0)

    def expired(self) -> AttemptTimeoutError:
        if self.committed:
            assert self.idle is not None
            return AttemptTimeoutError(self.model, "idle_timeout", self.idle)
        assert self.first_token is not None
        return AttemptTimeoutError(self.model, "first_token_timeout", self.first_token)


class StreamAttempt(Generic[C]):
    """One sync streamed attempt: opening it and each ``next`` run under its deadlines.

    Until :meth:`commit`, the whole wait for the first output is bounded by
    ``first_token``; after it, each ``next`` by ``idle``. With a deadline, every step runs
    on a worker thread in one copied context, in order; without, here. Once a step is
    abandoned, :meth:`close` leaves the stream to the worker, which closes it when the
    abandoned step returns.
    """

    def __init__(
        self, model: str, first_token: float | None, idle: float | None, in_place: bool = False
    ) -> None:
        self._clock = _Clock(model, first_token, idle)
        threaded = (first_token is not None or idle is not None) and not in_place
        self._in_place = in_place  # the transport keeps the deadlines (see .bounded)
        # Inside a hedge's racer, the racer's scope is this attempt's too.
        scope = current_attempt()
        if threaded and scope is None:
            scope = AttemptScope()
        self._scope = scope
        self._ctx = scoped_context(scope) if threaded and scope is not None else None
        self._it: Iterator[C] | None = None
        self._abandoned = False

    def open(self, open_stream: Callable[[], Iterable[C]]) -> None:
        def start() -> None:
            self._it = iter(open_stream())

        self._clock.start(time.monotonic())
        self._step(start)

    def commit(self) -> None:
        """The first output arrived: from now on, only gaps between chunks are bounded."""
        self._clock.committed = True

    def next(self) -> C:
        """The next chunk (raises ``StopIteration`` at the end), within the deadline."""
        it = self._it
        assert it is not None, "next() before open()"
        chunk: C = self._step(it.__next__)
        return chunk

    def _step(self, fn: Callable[[], T]) -> T:
        if self._ctx is None:
            left = self._clock.left(time.monotonic()) if self._in_place else None
            if left is None:
                return fn()
            return step_bounded(time.monotonic() + left, fn, self._clock.expired)
        job = _run(fn, self._ctx)
        if not job.wait(self._clock.left(time.monotonic()), self._close_now):
            self._abandoned = True
            error = self._clock.expired()
            if self._scope is not None:
                self._scope.abandon(error)
            raise error
        value: T = job.value
        return value

    def close(self) -> None:
        """Close the stream now, unless an abandoned step still runs (it closes it after)."""
        if not self._abandoned:
            self._close_now()

    def _close_now(self) -> None:
        it, self._it = self._it, None
        close = getattr(it, "close", None)
        if callable(close):
            if self._ctx is None:
                close()
            else:
                self._ctx.run(close)


class AsyncStreamAttempt(Generic[C]):
    """The async twin of :class:`StreamAttempt`: a late ``anext`` is cancelled."""

    def __init__(self, model: str, first_token: float | None, idle: float | None) -> None:
        self._clock = _Clock(model, first_token, idle)
        self._it: AsyncIterator[C] | None = None

    def open(self, open_stream: Callable[[], AsyncIterable[C]]) -> None:
        self._clock.start(asyncio.get_running_loop().time())
        self._it = aiter(open_stream())

    def commit(self) -> None:
        self._clock.committed = True

    async def next(self) -> C:
        it = self._it
        assert it is not None, "next() before open()"
        left = self._clock.left(asyncio.get_running_loop().time())
        return await await_within(anext(it), left, self._clock.expired)

    async def aclose(self) -> None:
        it, self._it = self._it, None
        aclose = getattr(it, "aclose", None)
        if callable(aclose):
            await aclose()


if sys.version_info >= (3, 11):

    async def await_within(
        aw: Awaitable[T], seconds: float | None, expired: Callable[[], AttemptTimeoutError]
    ) -> T:
        """``await aw``, cancelled past ``seconds`` and reported as ``expired()``."""
        if seconds is None:
            return await aw
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await aw
        except TimeoutError:
            if scope.expired():
                raise expired() from None
            raise

else:  # pragma: no cover - exercised on 3.10 only

    async def await_within(
        aw: Awaitable[T], seconds: float | None, expired: Callable[[], AttemptTimeoutError]
    ) -> T:
        """``await aw``, cancelled past ``seconds`` and reported as ``expired()``."""
        if seconds is None:
            return await aw
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await asyncio.wait_for(aw, seconds)
        except asyncio.TimeoutError:
            if loop.time() - started >= seconds:
                raise expired() from None
            raise
