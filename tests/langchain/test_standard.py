"""LangChain's own standard test suites, run against FailoverChatModel.

The unit suite needs no network. The integration suite runs offline: the children are
real ``ChatOpenAI`` and ``ChatAnthropic`` clients talking to the project's simulator over
loopback, so every request goes through real SDKs, real HTTP and the failover flow.

What is not run, and why:

- image, PDF, audio and video inputs, Anthropic-format inputs, JSON mode: the suite's own
  capability flags leave them off by default. The failover model passes such content
  through untouched, but the simulator does not read media, so a pass would prove nothing.
- the model-override tests: a failover model has no single model to override (each child
  keeps its own model name; a ``model`` kwarg is dropped so it never reaches a provider).
- ``test_init_from_env``: the failover model reads no environment; its children do.
- ``test_serdes``: the failover model is not LangChain-serializable (it holds live child
  models and callables: backoff, observer).
- VCR tests: nothing to record; the simulator is the cassette.

No standard test is marked as an expected failure or overridden: the failover model's own
run is a chain run, so the suite sees exactly one chat-model run (the serving child's) per
call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel

_sim: dict[str, ProviderSimulator] = {}


@pytest.fixture(autouse=True)
def _simulator(provider_sim: ProviderSimulator) -> Iterator[None]:
    _sim["sim"] = provider_sim
    yield
    _sim.clear()


def _children(base_openai: str, base_anthropic: str) -> list[Any]:
    return [
        ChatOpenAI(
            model="gpt-4o-mini",
            base_url=base_openai,
            api_key="sk-test",
            max_retries=0,
            stream_usage=True,  # a custom base_url turns streamed usage off by default
        ),
        ChatAnthropic(  # type: ignore[call-arg]
            model="claude-sim", base_url=base_anthropic, api_key="sk-ant-test", max_retries=0
        ),
    ]


class TestFailoverChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[FailoverChatModel]:
        return FailoverChatModel

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The unit suite adds api_key=...; a failover model holds no key (each child holds
        # its own) and refuses options it would silently ignore.
        params = super().standard_chat_model_params
        params.pop("api_key", None)
        return params

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"models": _children("http://127.0.0.1:9/v1", "http://127.0.0.1:9")}


class TestFailoverChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[FailoverChatModel]:
        return FailoverChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        sim = _sim["sim"]
        return {"models": _children(sim.openai_base_url, sim.anthropic_base_url)}
