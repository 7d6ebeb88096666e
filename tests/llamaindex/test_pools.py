"""Pools in FailoverLLM: real llama-index OpenAI clients on the simulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverLLM

from .conftest import OPENAI, OPENAI_2

HI = [ChatMessage(role="user", content="hi")]


def served_by(response: Any) -> str:
    return str(response.additional_kwargs["failover"]["model"])


@pytest.fixture
def two(openai_llm: Callable[..., OpenAI]) -> fc.Pool:
    return fc.Pool({"east": openai_llm(OPENAI), "west": openai_llm(OPENAI_2)})


@pytest.fixture
def pooled(registry: fc.HealthRegistry, two: fc.Pool) -> Callable[..., FailoverLLM]:
    def make(*more: Any, **options: Any) -> FailoverLLM:
        options.setdefault("backoff", lambda attempt: 0.0)
        return FailoverLLM(llms=[two, *more], **options)

    return make


async def answer(llm: FailoverLLM, path: str) -> Any:
    if path == "chat":
        return llm.chat(HI)
    if path == "achat":
        return await llm.achat(HI)
    if path == "stream_chat":
        return list(llm.stream_chat(HI))[-1]
    return [chunk async for chunk in await llm.astream_chat(HI)][-1]


@pytest.mark.parametrize("path", ["chat", "achat", "stream_chat", "astream_chat"])
async def test_requests_are_spread_over_the_members(
    path: str, pooled: Callable[..., FailoverLLM]
) -> None:
    llm = pooled()
    assert llm.keys == ("east", "west")
    served = Counter([served_by(await answer(llm, path)) for _ in range(12)])
    assert set(served) == {"east", "west"}


@pytest.mark.parametrize("path", ["chat", "astream_chat"])
async def test_a_failing_member_is_followed_at_once_by_the_other(
    path: str, provider_sim: ProviderSimulator, registry: fc.HealthRegistry, two: fc.Pool
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    slept: list[int] = []
    llm = FailoverLLM(llms=[two], backoff=lambda n: slept.append(n) or 0.0)
    for _ in range(4):
        assert served_by(await answer(llm, path)) == "west"
    assert slept == []


async def test_the_next_entry_answers_when_every_member_failed(
    provider_sim: ProviderSimulator,
    like_llm: Callable[..., Any],
    pooled: Callable[..., FailoverLLM],
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    provider_sim.fail(OPENAI_2, 503, times=None)
    llm = pooled(like_llm())
    assert served_by(await llm.achat(HI)) == "openai_like/mistral-small"


async def test_a_429_keeps_the_member_out_until_its_reset(
    provider_sim: ProviderSimulator, pooled: Callable[..., FailoverLLM]
) -> None:
    provider_sim.set_rate_limit(OPENAI, requests=1, window=60)
    llm = pooled()
    served = Counter([served_by(await llm.achat(HI)) for _ in range(12)])
    # Answers' headers are not exposed by llama-index's OpenAI: the 429's are read.
    assert provider_sim.rate_limited(OPENAI) <= 1
    assert served["west"] >= 11


async def test_fifty_concurrent_requests_over_two_members(
    pooled: Callable[..., FailoverLLM],
) -> None:
    llm = pooled()
    answers = await asyncio.gather(*(llm.achat(HI) for _ in range(50)))
    served = Counter(served_by(a) for a in answers)
    assert served["east"] > 0 and served["west"] > 0 and sum(served.values()) == 50
