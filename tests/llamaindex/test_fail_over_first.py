"""``on_transient="next"`` on FailoverLLM with real LlamaIndex clients on the simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverLLM
from tests.llamaindex.conftest import OPENAI, OPENAI_2

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]


@pytest.mark.parametrize("path", ["chat", "achat", "stream_chat", "astream_chat"])
async def test_each_request_calls_the_failing_llm_once_until_it_is_benched(
    path: str, provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2), on_transient="next")

    async def ask() -> Any:
        if path == "chat":
            return llm.chat(HELLO)
        if path == "achat":
            return await llm.achat(HELLO)
        if path == "stream_chat":
            return list(llm.stream_chat(HELLO))[-1]
        return [r async for r in await llm.astream_chat(HELLO)][-1]

    for n in range(1, 4):
        answer = await ask()
        assert answer.additional_kwargs["failover"]["model"] == f"openai/{OPENAI_2}"
        assert provider_sim.calls(OPENAI) == n
    assert fc.is_benched(f"openai/{OPENAI}")


def test_a_bad_value_is_refused_naming_both(registry: fc.HealthRegistry) -> None:
    with pytest.raises(ValueError, match="'retry' or 'next'"):
        FailoverLLM(llms=[], on_transient="later")
