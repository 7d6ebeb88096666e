"""Deadlines in the core drivers: a hung attempt is abandoned and fails over at once."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

import failover_core as fc
from failover_core.drivers import deadlines as _deadlines

from .fakes import events_of

DEADLINE = 0.2  # seconds: every wait below is bounded by it; nothing sleeps longer
SLACK = 0.25  # scheduling slack on a busy two-core machine (a retry would cost 0.2 more)


@dataclass
class Hung:
    """A child that answers ``chunks`` (streams) and then blocks until released.

    ``block_at`` is the chunk index at which it blocks (0: before any). It records its
    calls, the threads it ran on, and whether its stream was closed.
    """

    key: str
    block_at: int | None = 0
    chunks: list[str] = field(default_factory=lambda: ["", "a", "b", "c"])
    release: threading.Event = field(default_factory=threading.Event)
    calls: int = 0
    closed: int = 0
    threads: list[int] = field(default_factory=list)

    def call(self) -> str:
        self.calls += 1
        self.threads.append(threading.get_ident())
        if self.block_at is not None:
            self.release.wait(10)
        return f"{self.key}:ok"

    async def acall(self) -> str:
        self.calls += 1
        try:
            if self.block_at is not None:
                await asyncio.sleep(10)
        except asyncio.CancelledError:
            self.closed += 1
            raise
        return f"{self.key}:ok"

    def stream(self) -> Iterator[str]:
        self.calls += 1
        try:
            for i, chunk in enumerate(self.chunks):
                if i == self.block_at:
                    self.release.wait(10)
                self.threads.append(threading.get_ident())
                yield chunk
        finally:
            self.closed += 1

    async def astream(self) -> AsyncIterator[str]:
        self.calls += 1
        try:
            for i, chunk in enumerate(self.chunks):
                if i == self.block_at:
                    await asyncio.sleep(10)
                yield chunk
        finally:
            self.closed += 1


def _chain(
    *entries: Hung, registry: fc.HealthRegistry, observer: Any = None, **options: Any
) -> fc.FailoverChain[Hung]:
    options.setdefault("max_retries", 3)
    policy = fc.FailoverPolicy.build(backoff=lambda n: 0.0, observer=observer, **options)
    return fc.FailoverChain(list(entries), policy, registry)


def _commits(chunk: str) -> bool:
    return chunk != ""  # "" is a role header: not output


def _sync_stream(chain: fc.FailoverChain[Hung]) -> list[str]:
    return [c for c, _ in chain.stream(lambda e: e.stream(), str, commits=_commits)]


async def _async_stream(chain: fc.FailoverChain[Hung]) -> list[str]:
    return [c async for c, _ in chain.astream(lambda e: e.astream(), str, commits=_commits)]


# -- request/response --------------------------------------------------------------------


def test_a_hung_call_fails_over_within_one_deadline_and_is_not_retried(
    registry: fc.HealthRegistry,
) -> None:
    hung, backup = Hung("a/hung"), Hung("b/ok", block_at=None)
    seen: list[fc.FailoverEvent] = []
    chain = _chain(hung, backup, registry=registry, observer=seen.append, timeout=DEADLINE)
    started = time.perf_counter()
    result, served = chain.invoke(Hung.call)
    elapsed = time.perf_counter() - started
    hung.release.set()
    assert (result, served.model, served.failed_attempts) == ("b/ok:ok", "b/ok", 1)
    assert DEADLINE <= elapsed < DEADLINE + SLACK
    assert hung.calls == 1  # max_retries=3, yet one deadline per model per request
    assert events_of(seen) == [("a/hung", "transient", 1, False, "b/ok")]
    error = seen[0].error
    assert isinstance(error, fc.AttemptTimeoutError) and isinstance(error, TimeoutError)
    assert (error.model, error.deadline, error.seconds) == ("a/hung", "timeout", DEADLINE)
    assert seen[0].reason == "timeout"


async def test_a_hung_async_call_is_cancelled_and_fails_over(registry: fc.HealthRegistry) -> None:
    hung, backup = Hung("a/hung"), Hung("b/ok", block_at=None)
    chain = _chain(hung, backup, registry=registry, timeout=DEADLINE)
    started = time.perf_counter()
    result, served = await chain.ainvoke(Hung.acall)
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert (result, served.model, hung.calls, hung.closed) == ("b/ok:ok", "b/ok", 1, 1)


def test_timeouts_from_separate_requests_bench_after_max_retries(
    registry: fc.HealthRegistry,
) -> None:
    hung, backup = Hung("a/hung"), Hung("b/ok", block_at=None)
    chain = _chain(hung, backup, registry=registry, timeout=DEADLINE / 2, max_retries=2)
    chain.invoke(Hung.call)
    assert not registry.is_benched("a/hung")  # one strike
    chain.invoke(Hung.call)
    assert registry.is_benched("a/hung")  # the second strike benches it
    started = time.perf_counter()
    chain.invoke(Hung.call)
    assert time.perf_counter() - started < DEADLINE / 2  # benched: not waited on again
    hung.release.set()
    assert hung.calls == 2


def test_every_model_timing_out_raises_all_models_failed_with_the_timeouts(
    registry: fc.HealthRegistry,
) -> None:
    a, b = Hung("a/hung"), Hung("b/hung")
    chain = _chain(a, b, registry=registry, timeout=DEADLINE / 2)
    with pytest.raises(fc.AllModelsFailedError) as info:
        chain.invoke(Hung.call)
    a.release.set()
    b.release.set()
    assert [type(e) for e in info.value.exceptions] == [fc.AttemptTimeoutError] * 2
    assert "a/hung" in str(info.value) and "AttemptTimeoutError" in str(info.value)


def test_an_abandoned_sync_call_finishes_on_its_worker_and_the_worker_exits(
    registry: fc.HealthRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_deadlines, "LINGER", 0.05)
    baseline = threading.active_count()
    hung = Hung("a/hung")
    chain = _chain(hung, registry=registry, timeout=DEADLINE / 4)
    with pytest.raises(fc.AllModelsFailedError):
        chain.invoke(Hung.call)
    (worker,) = [t for t in threading.enumerate() if t.ident == hung.threads[0]]
    assert worker is not threading.current_thread() and worker.is_alive()  # still running
    hung.release.set()  # the provider gives up
    worker.join(timeout=2)
    assert not worker.is_alive()
    assert threading.active_count() <= baseline


def test_a_child_raising_its_own_timeout_error_is_retried_as_transient(
    registry: fc.HealthRegistry,
) -> None:
    calls: list[int] = []

    def flaky(entry: Hung) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("the SDK's own read timeout")
        return "ok"

    chain = _chain(Hung("a/m", block_at=None), registry=registry, timeout=DEADLINE)
    assert chain.invoke(flaky)[0] == "ok" and len(calls) == 2


def test_without_a_deadline_the_call_runs_on_the_callers_thread(
    registry: fc.HealthRegistry,
) -> None:
    child = Hung("a/m", block_at=None)
    chain = _chain(child, registry=registry, timeout=None)
    chain.invoke(Hung.call)
    assert child.threads == [threading.get_ident()]


def test_with_a_deadline_the_call_sees_the_callers_context(registry: fc.HealthRegistry) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("the caller's")
    chain = _chain(Hung("a/m", block_at=None), registry=registry, timeout=DEADLINE)
    assert chain.invoke(lambda entry: var.get())[0] == "the caller's"


# -- streams -----------------------------------------------------------------------------


def test_a_stream_silent_after_its_role_header_fails_over_at_the_first_token_deadline(
    registry: fc.HealthRegistry,
) -> None:
    hung, backup = Hung("a/hung", block_at=1), Hung("b/ok", block_at=None)
    seen: list[fc.FailoverEvent] = []
    chain = _chain(
        hung, backup, registry=registry, observer=seen.append, first_token_timeout=DEADLINE
    )
    started = time.perf_counter()
    chunks = _sync_stream(chain)
    elapsed = time.perf_counter() - started
    assert chunks == ["", "a", "b", "c"] and hung.calls == 1
    assert DEADLINE <= elapsed < DEADLINE + SLACK
    error = seen[0].error
    assert isinstance(error, fc.AttemptTimeoutError) and error.deadline == "first_token_timeout"
    assert hung.closed == 0  # still blocked in its worker...
    hung.release.set()
    deadline = time.monotonic() + 2
    while hung.closed == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hung.closed == 1  # ...which closes it once the blocked read returns


async def test_an_async_stream_silent_after_its_role_header_is_cancelled_and_fails_over(
    registry: fc.HealthRegistry,
) -> None:
    hung, backup = Hung("a/hung", block_at=1), Hung("b/ok", block_at=None)
    chain = _chain(hung, backup, registry=registry, first_token_timeout=DEADLINE)
    started = time.perf_counter()
    chunks = await _async_stream(chain)
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert chunks == ["", "a", "b", "c"] and (hung.calls, hung.closed) == (1, 1)


def test_the_first_token_deadline_bounds_the_whole_wait_not_each_chunk(
    registry: fc.HealthRegistry,
) -> None:
    class Drip(Hung):
        def stream(self) -> Iterator[str]:  # role headers every 0.4 deadline, no output
            self.calls += 1
            for _ in range(10):
                time.sleep(DEADLINE * 0.4)
                yield ""

    drip, backup = Drip("a/drip"), Hung("b/ok", block_at=None)
    chain = _chain(drip, backup, registry=registry, first_token_timeout=DEADLINE)
    started = time.perf_counter()
    assert _sync_stream(chain)[1] == "a"
    assert time.perf_counter() - started < DEADLINE + SLACK + DEADLINE * 0.4


@pytest.mark.parametrize("use_async", [False, True])
async def test_an_idle_committed_stream_raises_stream_interrupted_with_the_text(
    registry: fc.HealthRegistry, use_async: bool
) -> None:
    hung, backup = Hung("a/hung", block_at=2), Hung("b/ok", block_at=None)
    chain = _chain(hung, backup, registry=registry, idle_timeout=DEADLINE)
    got: list[str] = []

    async def consume() -> None:
        if use_async:
            async for chunk, _ in chain.astream(Hung.astream, str, commits=_commits):
                got.append(chunk)
        else:
            for chunk, _ in chain.stream(Hung.stream, str, commits=_commits):
                got.append(chunk)

    started = time.perf_counter()
    with pytest.raises(fc.StreamInterruptedError) as info:
        await consume()
    hung.release.set()
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert got == ["", "a"] and info.value.text == "a" and info.value.model == "a/hung"
    cause = info.value.__cause__
    assert isinstance(cause, fc.AttemptTimeoutError) and cause.deadline == "idle_timeout"
    assert backup.calls == 0  # output was delivered: never replayed elsewhere


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_slow_healthy_stream_under_its_deadlines_is_not_cut(
    registry: fc.HealthRegistry, use_async: bool
) -> None:
    class Slow(Hung):
        def stream(self) -> Iterator[str]:
            for chunk in self.chunks:
                time.sleep(DEADLINE / 3)
                yield chunk

        async def astream(self) -> AsyncIterator[str]:
            for chunk in self.chunks:
                await asyncio.sleep(DEADLINE / 3)
                yield chunk

    # four gaps of a third of the deadline: the whole stream outlasts every deadline
    chain = _chain(
        Slow("a/slow"), registry=registry, first_token_timeout=DEADLINE, idle_timeout=DEADLINE
    )
    chunks = await _async_stream(chain) if use_async else _sync_stream(chain)
    assert chunks == ["", "a", "b", "c"]


def test_a_stream_the_caller_stops_early_is_closed(registry: fc.HealthRegistry) -> None:
    child = Hung("a/m", block_at=None)
    chain = _chain(child, registry=registry, first_token_timeout=DEADLINE, idle_timeout=DEADLINE)
    stream = chain.stream(Hung.stream, str, commits=_commits)
    assert next(stream)[0] == ""
    stream.close()
    assert child.closed == 1


def test_without_stream_deadlines_the_stream_runs_on_the_callers_thread(
    registry: fc.HealthRegistry,
) -> None:
    child = Hung("a/m", block_at=None)
    chain = _chain(child, registry=registry, first_token_timeout=None, idle_timeout=None)
    _sync_stream(chain)
    assert set(child.threads) == {threading.get_ident()}


# -- options -----------------------------------------------------------------------------


def test_deadline_options_take_seconds_or_timedeltas_and_none_turns_them_off() -> None:
    policy = fc.FailoverPolicy.build(
        timeout=timedelta(seconds=30), first_token_timeout=12, idle_timeout=None
    )
    assert (policy.timeout, policy.first_token_timeout, policy.idle_timeout) == (30.0, 12.0, None)
    for bad, why in ((0, "positive, got 0 s"), (-1, "not be negative"), (float("nan"), "NaN")):
        with pytest.raises(ValueError, match=f"timeout must .*{why}"):
            fc.FailoverPolicy.build(timeout=bad)
    with pytest.raises(TypeError, match="idle_timeout"):
        fc.FailoverPolicy.build(idle_timeout=True)
    assert fc.FailoverPolicy.build(first_token_timeout="2m").first_token_timeout == 120
    with pytest.raises(ValueError, match="first_token_timeout"):
        fc.FailoverPolicy.build(first_token_timeout="soon")


def test_every_deadline_is_on_by_default_and_by_model_kind() -> None:
    policy = fc.FailoverPolicy.build()
    assert (policy.timeout, policy.first_token_timeout, policy.idle_timeout) == (60, 60, 120)
    assert policy.deadlines(reasoning=True) == (600, 600, 120), "reasoning models think long"


def test_set_failover_defaults_changes_deadlines_for_chains_built_later() -> None:
    old = fc.set_failover_defaults(timeout=20, idle_timeout=None)
    assert old.timeout == 60
    policy = fc.FailoverPolicy.build()
    assert (policy.timeout, policy.first_token_timeout, policy.idle_timeout) == (20, 60, None)
    fc.set_failover_defaults(max_retries=5)  # deadlines not given stay as they are
    assert fc.get_failover_defaults().timeout == 20
    assert fc.FailoverPolicy.build(timeout=fc.DEFAULT).timeout == 20
    with pytest.raises(ValueError, match="timeout"):
        fc.set_failover_defaults(timeout=0)
