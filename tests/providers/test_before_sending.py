"""An error a client raises before sending anything says nothing about the provider: the
chain skips to the next model and benches nothing."""

from __future__ import annotations

import pytest

import failover_core as fc
from tests.providers._server import ErrorServer


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


def test_chat_anthropic_refusing_a_tool_choice_skips_without_a_bench(
    error_server: ErrorServer, registry: fc.HealthRegistry
) -> None:
    pytest.importorskip("langchain_anthropic")
    from langchain_anthropic import ChatAnthropic

    model = ChatAnthropic(  # type: ignore[call-arg]
        model="claude-sonnet-4-5",
        base_url=error_server.url,
        api_key="k",
        max_retries=0,  # type: ignore[arg-type]
    )
    sent = len(error_server.paths)
    with pytest.raises(ValueError, match="tool_choice") as info:
        model.bind_tools([get_weather], tool_choice=42).invoke("hi")  # type: ignore[arg-type]
    assert len(error_server.paths) == sent, "nothing reached the provider"
    assert fc.classify(info.value) is fc.ErrorKind.REQUEST_SPECIFIC

    flow = fc.FailoverFlow(
        ("anthropic/claude-sonnet-4-5", "openai/gpt-4o"), fc.FailoverPolicy.build(), registry
    )
    flow.start()
    assert flow.failed(info.value) == fc.Attempt(index=1, key="openai/gpt-4o", number=1)
    assert not registry.is_benched("anthropic/claude-sonnet-4-5")
