"""Streams that end badly end promptly with the right outcome (real ChatOpenAI children)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from tests.langchain.conftest import OPENAI, OPENAI_2, ask

Make = Any


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_a_stall_that_ends_in_a_closed_connection_raises_promptly(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    provider_sim.stall_after_chunks(OPENAI, 2, 0.4, keepalive=0.05, disconnect=True)
    model = failover(openai_model(), openai_model(OPENAI_2))  # idle_timeout: 120 s
    started = time.perf_counter()
    with pytest.raises(fc.StreamInterruptedError) as caught:
        await ask(model, path, "tell me a story")
    assert time.perf_counter() - started < 3, "the close ends it, not the idle deadline"
    assert caught.value.text == f"[{OPENAI}] you" and caught.value.model == f"openai/{OPENAI}"
    assert provider_sim.calls(OPENAI_2) == 0


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_a_stream_without_done_is_a_whole_answer(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, no_done=True)
    model = failover(openai_model(), openai_model(OPENAI_2))
    started = time.perf_counter()
    answer = await ask(model, path, "tell me a story")
    assert time.perf_counter() - started < 3
    assert answer.content == f"[{OPENAI}] you said: tell me a story"
    assert answer.response_metadata["failover"]["model"] == f"openai/{OPENAI}"


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_a_malformed_chunk_midway_is_never_a_truncated_success(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, malformed_after=2)
    model = failover(openai_model(), openai_model(OPENAI_2))
    with pytest.raises(fc.StreamInterruptedError) as caught:
        await ask(model, path, "tell me a story")
    assert caught.value.text == f"[{OPENAI}] you"
