"""The caller's own exceptions never bench a healthy model (issue 24, item 3).

A callback handler with ``raise_error=True`` raises inside the child's call; that error
is the caller's: re-raised as it is, nothing benched, no other model tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from tests.langchain.conftest import OPENAI, OPENAI_2, ask


class Customer(BaseModel):
    billing_address: str


def _validation_error() -> ValidationError:
    try:
        Customer.model_validate({})
    except ValidationError as exc:
        return exc
    raise AssertionError("no validation error")


class Raising(BaseCallbackHandler):
    """A tracing handler whose backend is down, or whose own checks fail."""

    raise_error = True

    def __init__(self, error: Exception, on: str) -> None:
        self.error, self.on = error, on

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        if self.on == "start":
            raise self.error

    def on_llm_new_token(self, *args: Any, **kwargs: Any) -> None:
        if self.on == "token":
            raise self.error


ERRORS: list[Callable[[], Exception]] = [
    lambda: ConnectionError("tracing backend unreachable"),
    _validation_error,
    lambda: KeyError("billing"),
    lambda: ValueError("invalid api key format in config"),
]


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "astream"])
@pytest.mark.parametrize("make_error", ERRORS, ids=["connection", "validation", "key", "value"])
async def test_a_handlers_exception_is_raised_as_it_is_and_benches_nothing(
    provider_sim: ProviderSimulator,
    openai_model: Callable[..., ChatOpenAI],
    registry: fc.HealthRegistry,
    path: str,
    make_error: Callable[[], Exception],
) -> None:
    error = make_error()
    events: list[fc.FailoverEvent] = []
    chain = FailoverChatModel(
        models=[openai_model(OPENAI), openai_model(OPENAI_2)], observer=events.append
    )
    config: Any = {"callbacks": [Raising(error, "start")]}
    with pytest.raises(type(error)) as info:
        await ask(chain, path, "hello", config)
    assert info.value is error, "the caller's own exception, not a wrapper"
    assert provider_sim.calls() <= 1
    assert provider_sim.calls(OPENAI_2) == 0, "no other model tried"
    assert registry.list() == [], "nothing benched"
    assert events == [], "no failover decision"


@pytest.mark.parametrize("path", ["invoke", "stream", "astream"])
async def test_a_handler_raising_on_a_token_stops_the_request_without_a_bench(
    provider_sim: ProviderSimulator,
    openai_model: Callable[..., ChatOpenAI],
    registry: fc.HealthRegistry,
    path: str,
) -> None:
    error = ConnectionError("tracing backend unreachable")
    chain = FailoverChatModel(
        models=[openai_model(OPENAI, streaming=True), openai_model(OPENAI_2)], max_retries=3
    )
    with pytest.raises(ConnectionError) as info:
        await ask(chain, path, "hello there", {"callbacks": [Raising(error, "token")]})
    assert info.value is error
    assert provider_sim.calls() == 1, "one paid call, not nine"
    assert registry.list() == []


async def test_an_async_handlers_exception_is_the_callers_too(
    provider_sim: ProviderSimulator,
    openai_model: Callable[..., ChatOpenAI],
    registry: fc.HealthRegistry,
) -> None:
    error = ConnectionError("tracing backend unreachable")

    class AsyncRaising(AsyncCallbackHandler):
        raise_error = True

        async def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            raise error

    chain = FailoverChatModel(models=[openai_model(OPENAI), openai_model(OPENAI_2)])
    with pytest.raises(ConnectionError) as info:
        await chain.ainvoke("hello", {"callbacks": [AsyncRaising()]})
    assert info.value is error
    assert provider_sim.calls(OPENAI_2) == 0
    assert registry.list() == []


async def test_a_provider_error_still_fails_over_with_a_handler_attached(
    provider_sim: ProviderSimulator,
    openai_model: Callable[..., ChatOpenAI],
    registry: fc.HealthRegistry,
) -> None:
    """The handler's dispatcher is on the way of every call; only its own errors count."""

    class Quiet(BaseCallbackHandler):
        raise_error = True

    provider_sim.fail(OPENAI, status=401, times=None)
    chain = FailoverChatModel(models=[openai_model(OPENAI), openai_model(OPENAI_2)])
    answer = chain.invoke("hello", {"callbacks": [Quiet()]})
    assert answer.response_metadata["failover"]["model"] == f"openai/{OPENAI_2}"
    assert registry.is_benched(f"openai/{OPENAI}")


class RaisingForModel(BaseCallbackHandler):
    """A handler that fails only for one model's run: the hedge's, in a race."""

    raise_error = True

    def __init__(self, error: Exception, model: str) -> None:
        self.error, self.model = error, model

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        if (kwargs.get("invocation_params") or {}).get("model_name") == self.model:
            raise self.error


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "astream"])
async def test_a_handlers_exception_in_a_hedge_is_raised_as_it_is(
    provider_sim: ProviderSimulator,
    openai_model: Callable[..., ChatOpenAI],
    registry: fc.HealthRegistry,
    path: str,
) -> None:
    provider_sim.set_latency(OPENAI, 1.0)  # slow: the hedge starts, and its handler fails
    error = ConnectionError("tracing backend unreachable")
    events: list[fc.FailoverEvent] = []
    chain = FailoverChatModel(
        models=[openai_model(OPENAI), openai_model(OPENAI_2)],
        observer=events.append,
        hedge_after=0.1,
    )
    config: Any = {"callbacks": [RaisingForModel(error, OPENAI_2)]}
    with pytest.raises(ConnectionError) as info:
        await ask(chain, path, "hello", config)
    assert info.value is error, "the caller's own exception, not the primary's late answer"
    assert registry.list() == [], "nothing benched"
    assert [e.reason for e in events if e.model == OPENAI_2] == []
