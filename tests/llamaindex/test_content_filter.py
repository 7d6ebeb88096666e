"""Content filters on the LlamaIndex adapter: raised at once, or the next LLM."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from llama_index.core.llms import ChatMessage

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from tests.llamaindex.conftest import OPENAI, OPENAI_2

Make = Any
HELLO = [ChatMessage(role="user", content="hello")]


async def test_a_content_filter_error_is_raised_at_once_by_default(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 400, code="content_policy_violation", times=None)
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2))
    with pytest.raises(openai.BadRequestError):
        llm.chat(HELLO)
    with pytest.raises(openai.BadRequestError):
        await llm.achat(HELLO)
    assert provider_sim.calls(OPENAI_2) == 0 and fc.list_benched() == []


async def test_with_next_errors_and_refusals_go_to_the_next_llm(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2), on_content_filter="next")
    provider_sim.fail(OPENAI, 400, code="content_policy_violation")
    assert llm.chat(HELLO).additional_kwargs["failover"]["model"] == f"openai/{OPENAI_2}"
    provider_sim.fail(OPENAI, refuse=True)
    answer = await llm.achat(HELLO)
    assert answer.additional_kwargs["failover"]["model"] == f"openai/{OPENAI_2}"
    assert fc.list_benched() == []


def test_a_refusal_answer_is_returned_as_is_by_default(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, refuse=True)
    answer = failover_llm(openai_llm(), openai_llm(OPENAI_2)).chat(HELLO)
    assert answer.raw.choices[0].finish_reason == "content_filter"
    assert provider_sim.calls(OPENAI_2) == 0


def test_a_bad_value_is_refused_naming_both(openai_llm: Make, failover_llm: Make) -> None:
    with pytest.raises(ValueError, match="'raise' or 'next'"):
        failover_llm(openai_llm(), on_content_filter="drop")


async def test_with_next_a_streamed_refusal_goes_to_the_next_llm(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2), on_content_filter="next")
    provider_sim.fail(OPENAI, refuse=True)
    responses = list(llm.stream_chat(HELLO))
    assert responses[-1].message.content == f"[{OPENAI_2}] you said: hello"
    provider_sim.fail(OPENAI, refuse=True)
    responses = [r async for r in await llm.astream_chat(HELLO)]
    assert responses[-1].additional_kwargs["failover"]["model"] == f"openai/{OPENAI_2}"
