"""Real LangChain chat models on the simulator, and a failover model builder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel

OPENAI, OPENAI_2, CLAUDE = "gpt-4o-mini", "gpt-4.1-nano", "claude-haiku"


async def ask(model: Any, path: str, text: Any = "hello", config: Any = None) -> Any:
    """Run ``model`` on one input through ``path`` (``invoke``, ``ainvoke``, ``stream``,
    ``astream``, ``batch``, ``abatch``) and return the answer: a stream's message chunks
    added up into one, or the last of its parsed outputs (structured output)."""
    if path == "invoke":
        return model.invoke(text, config)
    if path == "ainvoke":
        return await model.ainvoke(text, config)
    if path == "batch":
        return model.batch([text], config)[0]
    if path == "abatch":
        return (await model.abatch([text], config))[0]
    if path == "stream":
        chunks = list(model.stream(text, config))
    else:
        chunks = [chunk async for chunk in model.astream(text, config)]
    if not isinstance(chunks[0], AIMessageChunk):
        return chunks[-1]
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined = joined + chunk
    return joined


class CountingLimiter(InMemoryRateLimiter):
    """A rate limiter that never waits and counts the calls it let through."""

    acquired: int = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return True


@pytest.fixture
def openai_model(provider_sim: ProviderSimulator) -> Callable[[str], ChatOpenAI]:
    def make(name: str = OPENAI, **kwargs: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model=name,
            base_url=provider_sim.openai_base_url,
            api_key="sk-test",
            max_retries=0,
            stream_usage=True,
            **kwargs,
        )

    return make


@pytest.fixture
def anthropic_model(provider_sim: ProviderSimulator) -> Callable[[str], ChatAnthropic]:
    def make(name: str = CLAUDE, **kwargs: Any) -> ChatAnthropic:
        return ChatAnthropic(  # type: ignore[call-arg]
            model=name,
            base_url=provider_sim.anthropic_base_url,
            api_key="sk-ant-test",
            max_retries=0,
            **kwargs,
        )

    return make


@pytest.fixture
def failover(
    registry: fc.HealthRegistry,
) -> Callable[..., FailoverChatModel]:
    """A FailoverChatModel on the test's fresh registry, retrying without waiting."""

    def make(*models: BaseChatModel, **options: Any) -> FailoverChatModel:
        options.setdefault("backoff", lambda attempt: 0.0)
        return FailoverChatModel(models=list(models), **options)

    return make
