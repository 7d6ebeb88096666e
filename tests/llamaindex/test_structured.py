"""Structured output is each child's own: its system prompt and its native structured path.

Real OpenAI clients on the simulator; the requests the simulator received are the evidence.
LlamaIndex's generic program on the failover LLM would send a forced tool call and drop the
child's system prompt; OpenAI's own ``structured_predict`` sends its JSON schema as
``response_format``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from pydantic import BaseModel

from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverDecisionEvent, FailoverLLM
from tests.llamaindex.conftest import OPENAI, OPENAI_2

Make = Callable[..., Any]
SYSTEM = "Answer as a geographer."
PROMPT = PromptTemplate("a city like {hint}")
PATHS = [
    "structured_predict",
    "astructured_predict",
    "stream_structured_predict",
    "astream_structured_predict",
    "as_structured_llm",
    "as_structured_llm.astream_chat",
]


class City(BaseModel):
    name: str
    population: int


async def structured(llm: FailoverLLM, path: str) -> Any:
    """One structured request on ``path``; the object it gives (a stream: its last)."""
    if path == "structured_predict":
        return llm.structured_predict(City, PROMPT, hint="Rome")
    if path == "astructured_predict":
        return await llm.astructured_predict(City, PROMPT, hint="Rome")
    if path == "stream_structured_predict":
        return list(llm.stream_structured_predict(City, PROMPT, hint="Rome"))[-1]
    if path == "astream_structured_predict":
        return [c async for c in await llm.astream_structured_predict(City, PROMPT, hint="Rome")][
            -1
        ]
    ask = [ChatMessage(role="user", content="a city like Rome")]
    if path == "as_structured_llm":
        return llm.as_structured_llm(City).chat(ask).raw
    return [r async for r in await llm.as_structured_llm(City).astream_chat(ask)][-1].raw


@pytest.mark.parametrize("path", PATHS)
async def test_each_attempt_is_the_childs_own_structured_request(
    path: str, provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2, system_prompt=SYSTEM), max_retries=1)
    city = await structured(llm, path)
    assert isinstance(city, City) and city.name
    assert provider_sim.calls(OPENAI) == 1, "failed over between attempts"
    [request] = provider_sim.requests(OPENAI_2)
    fmt = request.body.get("response_format") or {}
    assert fmt.get("type") == "json_schema" and fmt["json_schema"]["name"] == "City"
    assert "tools" not in request.body and "tool_choice" not in request.body
    assert request.body["messages"][0] == {"role": "system", "content": SYSTEM}


async def test_the_request_is_the_direct_childs(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    openai_llm(system_prompt=SYSTEM).structured_predict(City, PROMPT, hint="Rome")
    [direct] = provider_sim.requests(OPENAI)
    provider_sim.reset()
    failover_llm(openai_llm(system_prompt=SYSTEM)).structured_predict(City, PROMPT, hint="Rome")
    [through] = provider_sim.requests(OPENAI)
    assert through.body == direct.body


def test_the_callers_llm_kwargs_are_left_alone_for_the_next_child(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    """OpenAI's structured path writes its response format into ``llm_kwargs``: each
    attempt gets its own copy, so the next child gets the caller's."""
    provider_sim.fail(OPENAI, 503, times=None)
    kwargs: dict[str, Any] = {"temperature": 0.5}
    llm = failover_llm(openai_llm(), openai_llm(OPENAI_2), max_retries=1)
    llm.structured_predict(City, PROMPT, llm_kwargs=kwargs, hint="Rome")
    assert kwargs == {"temperature": 0.5}
    [request] = provider_sim.requests(OPENAI_2)
    assert request.body["temperature"] == 0.5


def test_a_retry_on_the_same_model_is_a_decision_event(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    failover_llm: Make,
    decisions: list[FailoverDecisionEvent],
) -> None:
    provider_sim.fail(OPENAI, 503, times=1)
    llm = failover_llm(openai_llm(), backoff=lambda attempt: 0.25)
    llm.failover_chain.sleep = lambda seconds: None  # the backoff is reported, not waited
    llm.structured_predict(City, PROMPT, hint="Rome")
    [retry] = decisions
    assert (retry.model, retry.next_model, retry.reason) == (f"openai/{OPENAI}",) * 2 + ("retry",)
    assert (retry.kind, retry.status, retry.attempt, retry.benched) == ("transient", 503, 1, False)
    assert retry.retry_in == 0.25 and "503" in retry.error
