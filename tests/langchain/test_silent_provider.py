"""A silent provider costs a chat model's request about a minute with the defaults, and is
not retried in the same request; a reasoning model is never cut by those deadlines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from tests.langchain.conftest import CLAUDE, OPENAI, ask

Make = Callable[..., Any]
PATHS = ["invoke", "ainvoke", "stream", "astream"]


def openai_named(name: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model=name, api_key="sk-test", max_retries=0, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "reasons"),
    [
        (openai_named("gpt-4o-mini"), False),
        (openai_named("gpt-4.1"), False),
        (openai_named("o3-mini"), True),
        (openai_named("o1"), True),
        (openai_named("gpt-5"), True),
        (openai_named("gpt-5-mini"), True),
        (openai_named("gpt-5-chat-latest"), False),
        (openai_named("gpt-4o-mini", reasoning_effort="low"), True),
        (openai_named("gpt-5", reasoning={"effort": "none"}), False),
        (openai_named("deepseek-reasoner"), True),
        (openai_named("deepseek-chat"), False),
        (ChatAnthropic(model="claude-sonnet-4-5", api_key="k"), False),  # type: ignore[call-arg]
        (
            ChatAnthropic(  # type: ignore[call-arg]
                model="claude-sonnet-4-5",
                api_key="k",
                thinking={"type": "enabled", "budget_tokens": 2048},
            ),
            True,
        ),
    ],
)
def test_reasoning_models_are_told_from_their_own_configuration(model: Any, reasons: bool) -> None:
    assert fc.is_reasoning_model(model) is reasons


def test_gemini_thinking_is_read_from_its_budget() -> None:
    class Gemini:
        def __init__(self, model: str, thinking_budget: int | None = None) -> None:
            self.model, self.thinking_budget = model, thinking_budget

    assert fc.is_reasoning_model(Gemini("gemini-2.5-flash"))
    assert not fc.is_reasoning_model(Gemini("gemini-2.5-flash", thinking_budget=0))
    assert fc.is_reasoning_model(Gemini("gemini-2.0-flash", thinking_budget=1024))
    assert not fc.is_reasoning_model(Gemini("gemini-2.0-flash"))


def test_the_defaults_give_chat_models_a_minute_and_reasoning_models_ten() -> None:
    model = FailoverChatModel(models=[openai_named("gpt-4o-mini"), openai_named("o3-mini")])
    chain = model.failover_chain
    assert chain.limits("openai/gpt-4o-mini") == (60, 60, 120)
    assert chain.limits("openai/o3-mini") == (600, 600, 120)
    never = FailoverChatModel(models=[openai_named("o3-mini")], reasoning_timeout=None)
    assert never.failover_chain.limits("openai/o3-mini") == (None, None, 120)


@pytest.mark.parametrize("path", PATHS)
async def test_a_silent_provider_costs_one_deadline_and_is_not_retried(
    path: str,
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
) -> None:
    # The defaults' shape, scaled down: a minute becomes 0.3 s, ten minutes 3 s.
    fc.set_failover_defaults(timeout=0.3, first_token_timeout=0.3, reasoning_timeout=3)
    provider_sim.hang(OPENAI, 2.0, times=None)  # accepts, says nothing, then closes
    model = failover(openai_model(), anthropic_model())
    started = time.perf_counter()
    answer = await ask(model, path)
    assert time.perf_counter() - started < 1.0
    assert answer.response_metadata["failover"]["model"] == f"anthropic/{CLAUDE}"
    assert provider_sim.calls(OPENAI) == 1, "the silent route is not retried"


@pytest.mark.parametrize("path", PATHS)
async def test_a_reasoning_model_thinking_past_the_chat_deadline_is_not_cut(
    path: str,
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
) -> None:
    fc.set_failover_defaults(timeout=0.3, first_token_timeout=0.3, reasoning_timeout=3)
    provider_sim.stall_first_token("o3-mini", 0.8, keepalive=0.05)
    model = failover(openai_model("o3-mini"), anthropic_model())
    answer = await ask(model, path)
    assert answer.response_metadata["failover"]["model"] == "openai/o3-mini"
    assert provider_sim.calls(CLAUDE) == 0
