"""A LlamaIndex chain across providers: OpenAI first, Anthropic behind it, on the simulator.

Needs llama-index-llms-anthropic 0.12 with anthropic below 1 (the dev extra pins both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool
from llama_index.llms.anthropic import Anthropic

from failover_core.simulator import ProviderSimulator
from tests.llamaindex.conftest import OPENAI

Make = Callable[..., Any]
CLAUDE = "claude-haiku-4-5"
HELLO = [ChatMessage(role="user", content="hello")]


@pytest.fixture
def claude(provider_sim: ProviderSimulator) -> Anthropic:
    return Anthropic(
        model=CLAUDE, base_url=provider_sim.anthropic_base_url, api_key="x", max_retries=0
    )


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_the_key_names_the_provider(
    openai_llm: Make, claude: Anthropic, failover_llm: Make
) -> None:
    assert failover_llm(openai_llm(), claude).keys == (f"openai/{OPENAI}", f"anthropic/{CLAUDE}")


def test_tool_calls_fail_over_to_anthropic_in_its_own_format(
    provider_sim: ProviderSimulator, openai_llm: Make, claude: Anthropic, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), claude)
    response = llm.chat_with_tools([FunctionTool.from_defaults(add)], user_msg="add 2 and 40")
    assert response.additional_kwargs["failover"]["model"] == f"anthropic/{CLAUDE}"
    [call] = llm.get_tool_calls_from_response(response)
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 2, "b": 40})
    [request] = provider_sim.requests(CLAUDE)
    assert request.body["tools"][0]["name"] == "add", "Anthropic's tool format, not OpenAI's"


async def test_streams_fail_over_to_anthropic(
    provider_sim: ProviderSimulator, openai_llm: Make, claude: Anthropic, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 401)
    llm = failover_llm(openai_llm(), claude)
    text = "".join([r.delta or "" async for r in await llm.astream_chat(HELLO)])
    assert text == f"[{CLAUDE}] you said: hello"
    chunks = list(
        llm.stream_chat_with_tools([FunctionTool.from_defaults(add)], user_msg="add 3 and 4")
    )
    assert {c.additional_kwargs["failover"]["model"] for c in chunks} == {f"anthropic/{CLAUDE}"}
    [call] = llm.get_tool_calls_from_response(chunks[-1])
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 3, "b": 4})
