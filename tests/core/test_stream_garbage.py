"""Garbage from the provider mid-stream is the provider's fault (issue 22, item 2): an
event that is not valid JSON is transient (and so resumable), never the request's."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel

MODEL, OTHER = "gpt-4o-mini", "gpt-4.1-nano"
HI = [{"role": "user", "content": "hello there my friend"}]


def test_openai_sdk_invalid_json_event_is_transient(provider_sim: ProviderSimulator) -> None:
    provider_sim.fail(MODEL, after_chunks=1, malformed=True)
    client = openai.OpenAI(base_url=provider_sim.openai_base_url, api_key="x", max_retries=0)
    stream = client.chat.completions.create(model=MODEL, messages=HI, stream=True)  # type: ignore[arg-type]
    with pytest.raises(json.JSONDecodeError) as info:
        list(stream)
    assert fc.status_of(info.value) is None
    assert fc.classify(info.value) is fc.ErrorKind.TRANSIENT


async def test_async_openai_sdk_invalid_json_event_is_transient(
    provider_sim: ProviderSimulator,
) -> None:
    provider_sim.fail(MODEL, after_chunks=1, malformed=True)
    client = openai.AsyncOpenAI(base_url=provider_sim.openai_base_url, api_key="x", max_retries=0)
    stream = await client.chat.completions.create(model=MODEL, messages=HI, stream=True)  # type: ignore[arg-type]
    with pytest.raises(json.JSONDecodeError) as info:
        async for _ in stream:
            pass
    assert fc.classify(info.value) is fc.ErrorKind.TRANSIENT


def test_the_callers_own_json_error_is_still_request_specific() -> None:
    """No response was being read: a parse error of the caller's (or a client's) input."""
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads('{"tool": ')
    assert fc.classify(info.value) is fc.ErrorKind.REQUEST_SPECIFIC


def _chain(provider_sim: ProviderSimulator) -> FailoverChatModel:
    def child(name: str) -> ChatOpenAI:
        return ChatOpenAI(
            model=name,
            base_url=provider_sim.openai_base_url,
            api_key="x",
            max_retries=0,  # type: ignore[arg-type]
        )

    return FailoverChatModel(models=[child(MODEL), child(OTHER)], max_retries=1)


def test_a_malformed_first_event_fails_over_to_the_next_model(
    provider_sim: ProviderSimulator, registry: fc.HealthRegistry
) -> None:
    provider_sim.fail(MODEL, after_chunks=0, malformed=True)
    chunks = list(_chain(provider_sim).stream("hello there"))
    assert chunks[0].response_metadata["failover"]["model"] == f"openai/{OTHER}"
    assert provider_sim.calls(OTHER) == 1
    assert registry.is_benched(f"openai/{MODEL}"), "a transient strike, as any 5xx"


def test_a_malformed_event_after_output_is_a_transient_interruption(
    provider_sim: ProviderSimulator,
) -> None:
    provider_sim.fail(MODEL, after_chunks=2, malformed=True)
    stream: Iterator[object] = _chain(provider_sim).stream("hello there my friend")
    with pytest.raises(fc.StreamInterruptedError) as info:
        list(stream)
    assert info.value.kind is fc.ErrorKind.TRANSIENT
    assert isinstance(info.value.__cause__, json.JSONDecodeError)
