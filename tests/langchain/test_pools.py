"""Pools in FailoverChatModel: real ChatOpenAI/ChatAnthropic clients on the simulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel

from .conftest import CLAUDE, OPENAI, OPENAI_2, ask

PATHS = ["invoke", "ainvoke", "stream", "astream"]


def served_by(message: Any) -> str:
    return str(message.response_metadata["failover"]["model"])


@pytest.fixture
def two(openai_model: Callable[..., ChatOpenAI]) -> fc.Pool:
    """Two deployments of one model (the simulator tells them apart by name)."""
    return fc.Pool({"east": openai_model(OPENAI), "west": openai_model(OPENAI_2)})


@pytest.mark.parametrize("path", PATHS)
async def test_requests_are_spread_over_the_members(
    path: str, two: fc.Pool, failover: Callable[..., FailoverChatModel]
) -> None:
    model = failover(two)
    served = Counter([served_by(await ask(model, path)) for _ in range(12)])
    assert set(served) == {"east", "west"}


def test_members_are_keyed_provider_model_n(
    openai_model: Callable[..., ChatOpenAI], failover: Callable[..., FailoverChatModel]
) -> None:
    model = failover(fc.Pool(openai_model(), openai_model()), openai_model(OPENAI_2))
    assert model.keys == (f"openai/{OPENAI}#1", f"openai/{OPENAI}#2", f"openai/{OPENAI_2}")


@pytest.mark.parametrize("path", PATHS)
async def test_a_failing_member_is_followed_at_once_by_the_other(
    path: str,
    two: fc.Pool,
    provider_sim: ProviderSimulator,
    failover: Callable[..., FailoverChatModel],
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    slept: list[float] = []
    model = failover(two, backoff=lambda n: slept.append(n) or 0.0)
    for _ in range(4):
        assert served_by(await ask(model, path)) == "west"
    assert slept == []
    assert provider_sim.calls(OPENAI) <= 3  # struck out, then benched on its own
    assert fc.get_health_registry().is_benched("east") is (provider_sim.calls(OPENAI) == 3)


async def test_the_next_entry_answers_when_every_member_failed(
    two: fc.Pool,
    openai_model: Callable[..., ChatOpenAI],
    provider_sim: ProviderSimulator,
    failover: Callable[..., FailoverChatModel],
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    provider_sim.fail(OPENAI_2, 503, times=None)
    model = failover(two, openai_model("backup-model"))
    answer = await model.ainvoke("hi")
    assert served_by(answer) == "openai/backup-model"
    assert answer.response_metadata["failover"]["failed_attempts"] == 4  # 1 + the last's 3


@pytest.mark.parametrize("path", ["invoke", "astream"])
async def test_a_member_near_its_rate_limit_is_passed_over_before_the_429(
    path: str,
    two: fc.Pool,
    provider_sim: ProviderSimulator,
    failover: Callable[..., FailoverChatModel],
) -> None:
    provider_sim.set_rate_limit(OPENAI, requests=3, window=60)
    model = failover(two)
    served = Counter([served_by(await ask(model, path)) for _ in range(20)])
    assert provider_sim.rate_limited(OPENAI) == 0  # the headers said when to stop
    # East serves until its headers say it has nothing left (how many of its three it gets
    # before then depends on the latencies the balancer saw); west serves the rest.
    assert 1 <= served["east"] <= 3 and served["east"] + served["west"] == 20


async def test_concurrent_requests_stay_under_a_members_limit(
    two: fc.Pool, provider_sim: ProviderSimulator, failover: Callable[..., FailoverChatModel]
) -> None:
    provider_sim.set_rate_limit(OPENAI, requests=10, window=60)
    model = failover(two)
    await model.ainvoke("warm up")
    for _ in range(3):
        await asyncio.gather(*(model.ainvoke("hi") for _ in range(8)))
    assert provider_sim.rate_limited(OPENAI) <= 1


async def test_a_429_with_retry_after_keeps_the_member_out(
    two: fc.Pool, provider_sim: ProviderSimulator, failover: Callable[..., FailoverChatModel]
) -> None:
    provider_sim.fail(OPENAI, 429, retry_after=30, times=None)
    model = failover(two)
    for _ in range(10):
        assert served_by(await model.ainvoke("hi")) == "west"
    assert provider_sim.calls(OPENAI) <= 1


def test_the_pool_turns_on_response_headers_for_its_members(
    openai_model: Callable[..., ChatOpenAI],
    anthropic_model: Callable[..., ChatAnthropic],
    failover: Callable[..., FailoverChatModel],
) -> None:
    mine = openai_model()
    model = failover(fc.Pool({"a": mine, "b": anthropic_model(CLAUDE)}))
    members = {e.key: e.model for e in model.failover_chain.entries}
    assert members["a"].include_response_headers is True  # type: ignore[attr-defined]
    assert mine.include_response_headers is False  # the user's model is left as it was


async def test_fifty_concurrent_requests_over_two_members(
    two: fc.Pool, failover: Callable[..., FailoverChatModel]
) -> None:
    model = failover(two)
    answers = await asyncio.gather(*(model.ainvoke(f"q{n}") for n in range(50)))
    served = Counter(served_by(a) for a in answers)
    assert served["east"] > 0 and served["west"] > 0 and sum(served.values()) == 50


async def test_a_slow_member_serves_less(
    two: fc.Pool, provider_sim: ProviderSimulator, failover: Callable[..., FailoverChatModel]
) -> None:
    # Latencies well above a loaded machine's own overhead per request, so that east is
    # five times slower as the balancer measures it, not only as the simulator sleeps.
    provider_sim.set_latency(OPENAI, 1.0)
    provider_sim.set_latency(OPENAI_2, 0.2)
    model = failover(two)
    await asyncio.gather(*(model.ainvoke("warm up") for _ in range(4)))
    answers = await asyncio.gather(*(model.ainvoke("hi") for _ in range(40)))
    served = Counter(served_by(a) for a in answers)
    assert served["east"] <= 40 / 5


class Weather(BaseModel):
    city: str
    celsius: int


def get_weather(city: str) -> str:
    """The weather in ``city``."""
    return "sunny"


@pytest.mark.parametrize("path", ["invoke", "astream"])
async def test_tools_and_structured_output_through_a_pool(
    path: str, two: fc.Pool, failover: Callable[..., FailoverChatModel]
) -> None:
    model = failover(two)
    called = await ask(model.bind_tools([get_weather], tool_choice="any"), path)
    assert called.tool_calls and called.tool_calls[0]["name"] == "get_weather"
    weather = await ask(model.with_structured_output(Weather), path)
    assert isinstance(weather, Weather)


async def test_a_hedge_goes_to_another_member_first(
    openai_model: Callable[..., ChatOpenAI],
    provider_sim: ProviderSimulator,
    failover: Callable[..., FailoverChatModel],
) -> None:
    provider_sim.set_latency(OPENAI, 1.0)  # east is slow today, but was fast before
    balancer = fc.PoolBalancer()
    balancer.ended("west", "success", balancer.started("west") - 5.0)
    pool = fc.Pool(
        {"east": openai_model(OPENAI), "west": openai_model(OPENAI_2)}, balancer=balancer
    )
    model = failover(pool, openai_model("backup-model"), hedge_after=0.05)
    answer = await model.ainvoke("hi")
    assert answer.response_metadata["failover"].get("hedged") is True
    assert served_by(answer) == "west"
    assert provider_sim.calls("backup-model") == 0


def test_from_specs_builds_pools(provider_sim: ProviderSimulator) -> None:
    url = provider_sim.openai_base_url
    model = FailoverChatModel.from_specs(
        [f"openai:{OPENAI} | openai:{OPENAI_2}", "openai:backup-model"], base_url=url, api_key="k"
    )
    assert model.keys == (f"openai/{OPENAI}#1", f"openai/{OPENAI_2}#2", "openai/backup-model")
    nested = FailoverChatModel.from_specs(
        [[f"openai:{OPENAI}", f"openai:{OPENAI_2}"]], base_url=url, api_key="k"
    )
    assert nested.keys == (f"openai/{OPENAI}#1", f"openai/{OPENAI_2}#2")
    assert served_by(nested.invoke("hi")) in nested.keys


def test_a_nested_failover_model_keeps_its_pool(
    two: fc.Pool,
    openai_model: Callable[..., ChatOpenAI],
    failover: Callable[..., FailoverChatModel],
) -> None:
    inner = failover(two)
    outer = failover(inner, openai_model("backup-model"))
    assert outer.keys == ("east", "west", "openai/backup-model")
    assert [g.keys for g in outer.failover_chain.pools] == [("east", "west")]


def test_metrics_carry_the_member(
    two: fc.Pool, failover: Callable[..., FailoverChatModel], reader: Any
) -> None:
    model = failover(two)
    for _ in range(6):
        model.invoke("hi")
    data = reader.get_metrics_data()
    attempts = [
        point.attributes["llm_failover.model"]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "llm_failover.attempts"
        for point in metric.data.data_points
    ]
    assert set(attempts) == {"east", "west"}
