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
- the structured-output tests run and are expected to fail for one reason, explained at
  the xfail marks below.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
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

    # The standard structured-output tests count `on_chat_model_start` calls and expect
    # exactly one. FailoverChatModel reports its child as a child run (so a trace shows
    # which model served), which makes two; the tests still run and must fail only there.
    # Structured output itself is covered across providers in test_chat_model.py.
    _NESTED = "counts one chat-model run; the failover model nests its child's run under it"

    @pytest.mark.xfail(reason=_NESTED, strict=True, raises=AssertionError)
    @pytest.mark.parametrize("schema_type", ["pydantic", "typeddict", "json_schema"])
    def test_structured_output(self, model: BaseChatModel, schema_type: Any) -> None:
        super().test_structured_output(model, schema_type)

    @pytest.mark.xfail(reason=_NESTED, strict=True, raises=AssertionError)
    @pytest.mark.parametrize("schema_type", ["pydantic", "typeddict", "json_schema"])
    async def test_structured_output_async(self, model: BaseChatModel, schema_type: Any) -> None:
        await super().test_structured_output_async(model, schema_type)
