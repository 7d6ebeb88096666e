"""Hedged attempts: the drivers' racing of an attempt and its hedge.

The flow decides (:meth:`~failover_core.FailoverFlow.hedge_delay`, ``hedge``,
``race_won``, ``race_failed``); these helpers only wait, start and stop. An attempt's
"output" is a call's answer, or a stream's prefix up to its first committing chunk.

Async racers are tasks: the loser is cancelled, which closes its HTTP request. Sync racers
run on the deadline machinery's worker threads, in copies of the caller's context; the
caller waits on a queue. A sync loser cannot be interrupted: it is abandoned, and a stream
it opened is closed by its worker as soon as its step returns.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
)
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .._errors import AttemptTimeoutError
from ..classification.origin import caller_raised
from ..flow.engine import Attempt, FailoverFlow
from .abandon import AttemptScope, scoped_context
from .deadlines import AsyncStreamAttempt, StreamAttempt, _run

__all__ = ["aopen_prefix", "arace", "open_prefix", "race"]

T = TypeVar("T")
C = TypeVar("C")

Prefix = tuple[StreamAttempt[C], list[C], bool]
APrefix = tuple[AsyncStreamAttempt[C], list[C], bool]


def open_prefix(
    attempt: StreamAttempt[C],
    open_stream: Callable[[], Iterable[C]],
    commits: Callable[[C], bool] | None,
) -> Prefix[C]:
    """Open a stream and read it up to its first committing chunk (the driver's prefix):
    ``(attempt, held chunks, ended)``; on any error the stream is closed."""
    held: list[C] = []
    ended = False
    try:
        attempt.open(open_stream)
        while not held or (commits is not None and not commits(held[-1])):
            held.append(attempt.next())
    except StopIteration:
        ended = True
    except BaseException:
        attempt.close()
        raise
    return attempt, held, ended


async def aopen_prefix(
    attempt: AsyncStreamAttempt[C],
    open_stream: Callable[[], AsyncIterable[C]],
    commits: Callable[[C], bool] | None,
) -> APrefix[C]:
    """The async twin of :func:`open_prefix`; a cancelled prefix closes its stream."""
    held: list[C] = []
    ended = False
    try:
        attempt.open(open_stream)
        while not held or (commits is not None and not commits(held[-1])):
            held.append(await attempt.next())
    except StopAsyncIteration:
        ended = True
    except BaseException:
        await attempt.aclose()
        raise
    return attempt, held, ended


@dataclass(eq=False)
class _Racer(Generic[T]):
    attempt: Attempt
    hedge: bool
    deadline: float | None
    scope: AttemptScope = field(default_factory=AttemptScope)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gone: bool = False  # the caller stopped listening: the worker cleans up after itself


def race(
    flow: FailoverFlow,
    first: Attempt,
    run: Callable[[Attempt], T],
    hedge_after: float,
    timeout: float | None,
    deliver: Callable[[], object],
    cleanup: Callable[[T], object] | None = None,
) -> T:
    """``run(first)``, raced by the flow's hedge if it gives no output in ``hedge_after``.

    Returns the first result; raises the last racer's error when both fail (the flow's
    current attempt is then that racer's). ``timeout`` bounds each racer from its own
    start. ``cleanup`` disposes of a result nobody will read (a loser's open stream).
    """
    results: queue.SimpleQueue[tuple[_Racer[T], bool, Any]] = queue.SimpleQueue()
    racers: list[_Racer[T]] = []

    def launch(attempt: Attempt, hedge: bool) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        racer = _Racer[T](attempt, hedge, deadline)

        def body() -> None:
            try:
                value: Any = run(attempt)
                ok = True
            except BaseException as exc:  # handed to the caller
                value, ok = exc, False
            with racer.lock:
                if not racer.gone:
                    results.put((racer, ok, value))
                    return
            if ok and cleanup is not None:
                cleanup(value)

        racers.append(racer)
        _run(body, scoped_context(racer.scope))

    launch(first, False)
    hedge_at: float | None = time.monotonic() + hedge_after
    why: BaseException = asyncio.CancelledError("the request ended")
    try:
        while True:
            wakes = [r.deadline for r in racers if r.deadline is not None]
            if hedge_at is not None:
                wakes.append(hedge_at)
            wait = None if not wakes else max(min(wakes) - time.monotonic(), 0.0)
            try:
                racer, ok, value = results.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                if hedge_at is not None and now >= hedge_at:
                    hedge_at = None
                    hedge = flow.hedge()
                    deliver()
                    if hedge is not None:
                        launch(hedge, True)
                    continue
                late = next((r for r in racers if r.deadline and now >= r.deadline), None)
                if late is None:
                    continue
                assert timeout is not None
                racer, ok = late, False
                value = AttemptTimeoutError(late.attempt.key, "timeout", timeout)
                _leave(late, results, cleanup, value)
            if racer not in racers:
                continue  # already given up on
            racers.remove(racer)
            if ok:
                # The other racer may have failed meanwhile (its result queued behind
                # this one): its failure is acted on first, so a 401 still benches.
                for other, error in _failures(racers, results):
                    if caller_raised(error):  # the caller's own: raised as it is
                        raise error
                    racers.remove(other)
                    flow.race_failed(error, other.hedge)
                    deliver()
                if racers:
                    why = asyncio.CancelledError(f"lost a hedged race to {racer.attempt.key}")
                    for loser in racers:  # silent from now on, before anyone hears of the win
                        _leave(loser, results, cleanup, why)
                    flow.race_won(racer.hedge)
                    deliver()
                result: T = value
                return result
            if not racers or not isinstance(value, Exception) or caller_raised(value):
                raise value  # the last racer's error, or the caller's own
            flow.race_failed(value, racer.hedge)
            deliver()
    finally:
        for racer in racers:
            _leave(racer, results, cleanup, why)


def _failures(
    racers: list[_Racer[T]], results: queue.SimpleQueue[tuple[_Racer[T], bool, Any]]
) -> list[tuple[_Racer[T], Exception]]:
    """The failures of ``racers`` already queued (taken off the queue; the rest put back)."""
    queued: list[tuple[_Racer[T], bool, Any]] = []
    while True:
        try:
            queued.append(results.get_nowait())
        except queue.Empty:
            break
    failed: list[tuple[_Racer[T], Exception]] = []
    for item in queued:
        racer, ok, value = item
        if racer in racers and not ok and isinstance(value, Exception):
            failed.append((racer, value))
        else:
            results.put(item)
    return failed


def _leave(
    racer: _Racer[T],
    results: queue.SimpleQueue[tuple[_Racer[T], bool, Any]],
    cleanup: Callable[[T], object] | None,
    why: BaseException,
) -> None:
    """Stop listening to ``racer`` (its scope abandoned ``why``); dispose of a result it
    already delivered."""
    with racer.lock:
        racer.gone = True
    racer.scope.abandon(why)
    if cleanup is None:
        return
    pending: list[tuple[_Racer[T], bool, Any]] = []
    while True:
        try:
            pending.append(results.get_nowait())
        except queue.Empty:
            break
    for item in pending:
        if item[0] is racer and item[1]:
            cleanup(item[2])
        else:
            results.put(item)


async def arace(
    flow: FailoverFlow,
    first: Attempt,
    run: Callable[[Attempt], Awaitable[T]],
    hedge_after: float,
    deliver: Callable[[], Awaitable[object]],
    cleanup: Callable[[T], Awaitable[object]] | None = None,
) -> T:
    """The async twin of :func:`race`: racers are tasks; a loser is cancelled and awaited.

    Deadlines are ``run``'s own (each racer runs under them).
    """
    loop = asyncio.get_running_loop()
    tasks: dict[asyncio.Future[T], tuple[Attempt, bool]] = {}

    def launch(attempt: Attempt, hedge: bool) -> None:
        tasks[asyncio.ensure_future(run(attempt))] = (attempt, hedge)

    launch(first, False)
    hedge_at: float | None = loop.time() + hedge_after
    try:
        while True:
            wait = None if hedge_at is None else max(hedge_at - loop.time(), 0.0)
            done, _ = await asyncio.wait(tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                hedge_at = None
                hedge = flow.hedge()
                await deliver()
                if hedge is not None:
                    launch(hedge, True)
                continue
            # Both may be done in one tick: each failure is acted on first (a 401 benches
            # even when the other racer answered), then an answer beats a failure.
            for task in sorted(done, key=_failures_first):
                winner, hedged = tasks.pop(task)
                error = task.exception()
                if error is None:
                    if tasks:
                        flow.race_won(hedged)
                        await _stop(tasks, cleanup, f"lost a hedged race to {winner.key}")
                        await deliver()
                    return task.result()
                if not tasks or not isinstance(error, Exception) or caller_raised(error):
                    raise error  # the last racer's error, or the caller's own
                flow.race_failed(error, hedged)
                await deliver()
    finally:
        await _stop(tasks, cleanup)


def _failures_first(task: asyncio.Future[Any]) -> int:
    """Failures (ordinary exceptions) first, then answers, then anything else."""
    error = task.exception()
    return 1 if error is None else 0 if isinstance(error, Exception) else 2


async def _stop(
    tasks: dict[asyncio.Future[T], tuple[Attempt, bool]],
    cleanup: Callable[[T], Awaitable[object]] | None,
    reason: str | None = None,
) -> None:
    """Cancel the racers left and wait for them; dispose of results they finished with.

    ``reason`` is the message of the ``CancelledError`` a racer sees: what its tracing
    reports (a loser's model run ends as an error saying it lost the race).
    """
    pending = list(tasks)
    tasks.clear()
    if not pending:
        return
    for task in pending:
        task.cancel(reason)
    await asyncio.wait(pending)
    for task in pending:
        if cleanup is not None and not task.cancelled() and task.exception() is None:
            await cleanup(task.result())
