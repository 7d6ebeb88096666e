"""Sync deadlines kept in the caller's thread when the child's HTTP transport can be bounded
(ChatOpenAI, ChatAnthropic): no worker thread, and still at most one deadline per hung
model; anything else keeps the worker thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.rate_limiters import InMemoryRateLimiter

import failover_core as fc
from failover_core.drivers.bounded import bind_httpx
from failover_core.simulator import ProviderSimulator
from tests.langchain.conftest import CLAUDE, OPENAI, OPENAI_2, ask

Make = Callable[..., Any]
DEADLINE = 0.3
HANG = 1.0
SLACK = 0.45


class Threads(BaseCallbackHandler):
    """Which thread each child model run started on."""

    def __init__(self) -> None:
        self.idents: list[int] = []

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.idents.append(threading.get_ident())


@pytest.mark.parametrize("path", ["invoke", "stream"])
@pytest.mark.parametrize("child", ["openai", "anthropic"])
async def test_a_sync_attempt_with_a_deadline_runs_in_the_callers_thread(
    path: str, child: str, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    made = openai_model() if child == "openai" else anthropic_model()
    model = failover(made, openai_model(OPENAI_2), timeout=30, first_token_timeout=30)
    assert model.failover_chain.entries[0].bounded
    threads = Threads()
    await ask(model, path, config={"callbacks": [threads]})
    assert threads.idents == [threading.get_ident()]


@pytest.mark.parametrize("path", ["invoke", "stream"])
async def test_a_hung_model_in_place_costs_one_deadline_and_fails_over(
    path: str,
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
) -> None:
    provider_sim.hang(OPENAI, HANG, times=None)
    errors: list[BaseException] = []
    model = failover(
        openai_model(),
        anthropic_model(),
        timeout=DEADLINE,
        first_token_timeout=DEADLINE,
        observer=lambda event: errors.append(event.error),
    )
    threads = threading.active_count()
    started = time.perf_counter()
    answer = await ask(model, path)
    assert DEADLINE <= time.perf_counter() - started < DEADLINE + SLACK
    assert answer.response_metadata["failover"]["model"] == f"anthropic/{CLAUDE}"
    [error] = errors
    assert isinstance(error, fc.AttemptTimeoutError)
    assert isinstance(error.__cause__, openai.APITimeoutError), "the SDK's read, cut short"
    assert threading.active_count() == threads, "no worker left waiting on the provider"


def test_a_client_used_before_the_chain_was_built_is_bounded_too(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    # A client of its own (not the cached one earlier tests bound), with a pooled
    # connection made before the failover model wraps it.
    primary = openai_model(http_client=httpx.Client())
    primary.invoke("warm up")
    provider_sim.hang(OPENAI, HANG, times=None)
    model = failover(primary, anthropic_model(), timeout=DEADLINE)
    assert model.failover_chain.entries[0].bounded
    started = time.perf_counter()
    model.invoke("hello")
    assert time.perf_counter() - started < DEADLINE + SLACK


def test_children_whose_waits_cannot_be_bounded_keep_the_worker_thread(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    mocked = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(500)))
    limited = openai_model(rate_limiter=InMemoryRateLimiter(requests_per_second=1000))
    proxied = openai_model(http_client=httpx.Client(proxy="http://127.0.0.1:9"))
    for child in (openai_model(http_client=mocked), limited, proxied):
        model = failover(child, timeout=30)
        assert not model.failover_chain.entries[0].bounded
    threads = Threads()
    failover(limited, timeout=30).invoke("hi", {"callbacks": [threads]})
    assert threads.idents != [threading.get_ident()], "a rate limiter may wait: on a worker"


def test_binding_changes_nothing_outside_an_attempt(provider_sim: ProviderSimulator) -> None:
    client = httpx.Client(timeout=httpx.Timeout(7.0))
    assert bind_httpx(client) and bind_httpx(client), "idempotent"
    seen: list[dict[str, float | None]] = []
    client.event_hooks["request"] = [lambda request: seen.append(request.extensions["timeout"])]
    response = client.get(provider_sim.openai_base_url + "/models")
    assert response.status_code < 500
    assert seen == [{"connect": 7.0, "read": 7.0, "write": 7.0, "pool": 7.0}]
    assert not bind_httpx(httpx.Client(transport=httpx.MockTransport(httpx.Response)))
    assert not bind_httpx(object())
