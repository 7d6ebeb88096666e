"""Deadlines with real ChatOpenAI/ChatAnthropic children over the simulator's hang faults."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage

import failover_core as fc
from failover_core.drivers import deadlines as _deadlines
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from langchain_failover._children import Child
from tests.langchain.conftest import CLAUDE, OPENAI, OPENAI_2, ask

Make = Callable[..., Any]
DEADLINE = 0.3  # seconds; the faults below last longer than it, nothing waits them out
HANG = 1.0
SLACK = 0.45  # the fallback's answer and scheduling on a busy machine (< one more deadline)

PATHS = ["invoke", "ainvoke", "stream", "astream"]


def _served(message: BaseMessage) -> str:
    return str(message.response_metadata["failover"]["model"])


def _wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


DEADLINES = {"timeout": DEADLINE, "first_token_timeout": DEADLINE, "idle_timeout": DEADLINE}


@pytest.mark.parametrize("path", PATHS)
async def test_a_hung_primary_fails_over_within_one_deadline_on_every_path(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    provider_sim.hang(OPENAI, HANG, times=None)
    model = failover(openai_model(), anthropic_model(), **DEADLINES)
    started = time.perf_counter()
    answer = await ask(model, path)
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert _served(answer) == f"anthropic/{CLAUDE}"
    assert answer.content == f"[{CLAUDE}] you said: hello"
    assert provider_sim.calls(OPENAI) == 1  # not retried: one deadline per model


@pytest.mark.parametrize("path", ["stream", "astream"])
@pytest.mark.parametrize("primary", [OPENAI, CLAUDE])
async def test_keepalives_after_a_role_header_are_not_a_first_token(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
    primary: str,
) -> None:
    # SSE comments (OpenAI) and ping events (Anthropic) every 50 ms reset any read
    # timeout; they are not output, so the first-token deadline still fires.
    provider_sim.stall_first_token(primary, HANG, keepalive=0.05, times=None)
    stalled = openai_model() if primary == OPENAI else anthropic_model()
    model = failover(stalled, openai_model(OPENAI_2), **DEADLINES)
    started = time.perf_counter()
    answer = await ask(model, path)
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert _served(answer) == f"openai/{OPENAI_2}"
    assert answer.content == f"[{OPENAI_2}] you said: hello"


@pytest.mark.parametrize("path", ["ainvoke", "astream"])
async def test_async_attempts_past_their_deadline_close_the_http_request(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    hung = f"hung-lc-{path}"  # a name of its own: earlier tests' abandoned requests end late
    if path == "astream":
        provider_sim.stall_first_token(hung, 5.0, keepalive=0.05)
    else:
        provider_sim.hang(hung, 5.0)
    model = failover(openai_model(hung), anthropic_model(), **DEADLINES)
    await ask(model, path)
    # cancelled: the provider sees the client leave at once, not after its 5 s
    for _ in range(50):
        if provider_sim.disconnects(hung):
            break
        await asyncio.sleep(0.02)
    assert provider_sim.disconnects(hung) == 1


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_a_stream_stalled_midway_raises_stream_interrupted_with_its_text(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    provider_sim.stall_after_chunks(OPENAI, 2, HANG, keepalive=0.05)
    model = failover(openai_model(), anthropic_model(), **DEADLINES)
    got: list[str] = []

    async def consume() -> None:
        if path == "stream":
            got.extend(str(c.content) for c in model.stream("hello"))
        else:
            got.extend([str(c.content) async for c in model.astream("hello")])

    started = time.perf_counter()
    with pytest.raises(fc.StreamInterruptedError) as info:
        await consume()
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert info.value.model == f"openai/{OPENAI}"
    assert info.value.text == f"[{OPENAI}] you"  # the two chunks delivered, nothing replayed
    cause = info.value.__cause__
    assert isinstance(cause, fc.AttemptTimeoutError)
    assert (cause.deadline, cause.seconds) == ("idle_timeout", DEADLINE)
    assert provider_sim.calls(CLAUDE) == 0


def test_timed_out_attempts_from_separate_requests_bench_the_model(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.hang(OPENAI, HANG, times=None)
    seen: list[fc.FailoverEvent] = []
    model = failover(
        openai_model(), anthropic_model(), max_retries=2, observer=seen.append, **DEADLINES
    )
    model.invoke("one")
    assert not fc.is_benched(f"openai/{OPENAI}")
    model.invoke("two")
    assert fc.is_benched(f"openai/{OPENAI}")
    started = time.perf_counter()
    assert _served(model.invoke("three")) == f"anthropic/{CLAUDE}"
    assert time.perf_counter() - started < DEADLINE  # the bench skips it: no wait at all
    assert provider_sim.calls(OPENAI) == 2
    assert [(e.reason, e.benched, type(e.error)) for e in seen] == [
        ("timeout", False, fc.AttemptTimeoutError),
        ("timeout", True, fc.AttemptTimeoutError),
    ]


def test_a_healthy_slow_stream_inside_its_deadlines_is_served_whole(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    # every gap is under the deadline; the whole stream is longer than each deadline
    provider_sim.set_latency(OPENAI, DEADLINE / 2, chunk_delay=DEADLINE / 3)
    model = failover(openai_model(), anthropic_model(), **DEADLINES)
    started = time.perf_counter()
    chunks = list(model.stream("hello there my friend"))
    assert time.perf_counter() - started > 2 * DEADLINE
    assert "".join(str(c.content) for c in chunks) == f"[{OPENAI}] you said: hello there my friend"
    assert provider_sim.calls(CLAUDE) == 0


def _sockets() -> int:
    fds = os.listdir("/proc/self/fd")
    out = 0
    for fd in fds:
        try:
            out += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
@pytest.mark.parametrize("in_place", [True, False], ids=["bounded-transport", "worker"])
def test_200_timed_out_sync_attempts_leave_no_threads_or_sockets_behind(
    in_place: bool,
    provider_sim: ProviderSimulator,
    openai_model: Make,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_deadlines, "LINGER", 0.2)
    if not in_place:  # as for a child whose transport cannot be bounded
        monkeypatch.setattr(Child, "bounded", property(lambda self: False))
    registry = fc.HealthRegistry()  # all benched is best effort: every request still tries
    model = FailoverChatModel(models=[openai_model()], timeout=0.05, registry=registry)
    model.invoke("warm up")  # the client's pool, the simulator's connection
    threads, sockets = threading.active_count(), _sockets()
    provider_sim.hang(OPENAI, 0.5, times=None)
    failures: list[BaseException] = []

    def caller() -> None:
        for _ in range(10):
            try:
                model.invoke("hello")
            except fc.AllModelsFailedError as exc:
                failures.extend(exc.exceptions)

    callers = [threading.Thread(target=caller) for _ in range(20)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert len(failures) == 200 and all(isinstance(e, fc.AttemptTimeoutError) for e in failures)
    if in_place:  # the transport cut each wait at the deadline: nothing was left running
        assert threading.active_count() == threads
    else:
        assert threading.active_count() > threads  # abandoned calls still wait on the provider
    # the provider gives up after 0.5 s: every abandoned worker ends, its socket closes
    assert _wait_for(lambda: threading.active_count() <= threads, seconds=5)
    assert _wait_for(lambda: _sockets() <= sockets, seconds=5)


# -- options -----------------------------------------------------------------------------


def test_deadlines_default_to_the_process_defaults_and_none_turns_them_off(
    openai_model: Make,
) -> None:
    model = FailoverChatModel(models=[openai_model()])
    assert (model.timeout, model.first_token_timeout, model.idle_timeout) == (60, 60, 120)
    fc.set_failover_defaults(timeout=30, first_token_timeout=None)
    model = FailoverChatModel(models=[openai_model()], idle_timeout=timedelta(seconds=9))
    policy = model.failover_chain.policy
    assert (policy.timeout, policy.first_token_timeout, policy.idle_timeout) == (30, None, 9)


def test_from_specs_takes_the_deadlines_and_leaves_the_children_without_them(
    provider_sim: ProviderSimulator,
) -> None:
    model = FailoverChatModel.from_specs(
        ["openai:gpt-4o-mini"],
        timeout=5,
        first_token_timeout=None,
        api_key="sk-test",
        base_url=provider_sim.openai_base_url,
    )
    policy = model.failover_chain.policy
    assert (policy.timeout, policy.first_token_timeout, policy.idle_timeout) == (5, None, 120)
    child = model.failover_chain.entries[0].model
    assert getattr(child, "request_timeout", None) is None
    assert isinstance(model.invoke("hi"), AIMessage)
