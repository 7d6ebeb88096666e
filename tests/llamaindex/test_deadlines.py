"""Deadlines for FailoverLLM with real LlamaIndex clients over the simulator's hang faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverLLM
from tests.llamaindex.conftest import LIKE, OPENAI, ask

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]
DEADLINE = 0.3  # seconds; the faults below last longer than it, nothing waits them out
HANG = 1.0
SLACK = 0.45  # the fallback's answer and scheduling (< one more deadline)

DEADLINES = {"timeout": DEADLINE, "first_token_timeout": DEADLINE, "idle_timeout": DEADLINE}
PATHS = ["chat", "achat", "stream_chat", "astream_chat", "complete", "astream_complete"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_hung_primary_fails_over_within_one_deadline_on_every_path(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    path: str,
) -> None:
    if "stream" in path:  # a role header, then keep-alives that reset any read timeout
        provider_sim.stall_first_token(OPENAI, HANG, keepalive=0.05, times=None)
    else:
        provider_sim.hang(OPENAI, HANG, times=None)
    llm = failover_llm(openai_llm(), like_llm(), **DEADLINES)
    started = time.perf_counter()
    text, served = await ask(llm, path)
    model = served["model"]
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert (text, model) == (f"[{LIKE}] you said: hello", f"openai_like/{LIKE}")
    assert provider_sim.calls(OPENAI) == 1  # not retried: one deadline per model


@pytest.mark.parametrize("path", ["stream_chat", "astream_chat"])
async def test_a_stream_stalled_midway_raises_stream_interrupted_with_its_text(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    path: str,
) -> None:
    provider_sim.stall_after_chunks(OPENAI, 2, HANG, keepalive=0.05)
    llm = failover_llm(openai_llm(), like_llm(), **DEADLINES)
    deltas: list[str] = []

    async def consume() -> None:
        if path == "stream_chat":
            deltas.extend(r.delta or "" for r in llm.stream_chat(HELLO))
        else:
            deltas.extend([r.delta or "" async for r in await llm.astream_chat(HELLO)])

    started = time.perf_counter()
    with pytest.raises(fc.StreamInterruptedError) as info:
        await consume()
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert info.value.model == f"openai/{OPENAI}" and info.value.text == f"[{OPENAI}] you"
    cause = info.value.__cause__
    assert isinstance(cause, fc.AttemptTimeoutError) and cause.deadline == "idle_timeout"
    assert provider_sim.calls(LIKE) == 0


async def test_an_async_attempt_past_its_deadline_closes_the_http_request(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    hung = "hung-li"  # a name of its own: earlier tests' abandoned requests end late
    provider_sim.hang(hung, 5.0)
    llm = failover_llm(like_llm(hung), openai_llm(), **DEADLINES)
    await llm.achat(HELLO)
    for _ in range(50):
        if provider_sim.disconnects(hung):
            break
        await asyncio.sleep(0.02)
    assert provider_sim.disconnects(hung) == 1


def test_timed_out_attempts_from_separate_requests_bench_the_model(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.hang(OPENAI, HANG, times=None)
    llm = failover_llm(openai_llm(), like_llm(), max_retries=2, **DEADLINES)
    llm.chat(HELLO)
    llm.chat(HELLO)
    assert fc.is_benched(f"openai/{OPENAI}")
    started = time.perf_counter()
    llm.chat(HELLO)
    assert time.perf_counter() - started < DEADLINE
    assert provider_sim.calls(OPENAI) == 2


def test_deadlines_default_to_the_process_defaults_and_none_turns_them_off(
    openai_llm: Make,
) -> None:
    llm = FailoverLLM(llms=[openai_llm()])
    assert (llm.timeout, llm.first_token_timeout, llm.idle_timeout) == (60, 60, 120)
    fc.set_failover_defaults(idle_timeout=None)
    llm = FailoverLLM(llms=[openai_llm()], timeout=timedelta(seconds=7), first_token_timeout=3)
    policy = llm.failover_chain.policy
    assert (policy.timeout, policy.first_token_timeout, policy.idle_timeout) == (7, 3, None)
    with pytest.raises(ValueError, match="timeout must be positive"):
        FailoverLLM(llms=[openai_llm()], timeout=0)
