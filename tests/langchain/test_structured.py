"""Structured output through the failover model is each serving child's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from failover_core.simulator import ProviderSimulator
from tests.langchain.conftest import CLAUDE, OPENAI, ask
from tests.langchain.test_reporting import RunTree

Make = Callable[..., Any]


class Person(BaseModel):
    name: str
    age: int


PROMPT = "Extract: 'Ada' is 36 years old."


@pytest.mark.parametrize("path", ["invoke", "ainvoke"])
async def test_json_mode_answers_a_dict_as_the_child_does(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make, path: str
) -> None:
    direct = await ask(
        openai_model().with_structured_output(None, method="json_mode"), path, PROMPT
    )
    model = failover(openai_model())
    through = await ask(model.with_structured_output(None, method="json_mode"), path, PROMPT)
    assert isinstance(direct, dict)
    assert through == direct
    assert provider_sim.requests(OPENAI)[-1].body["response_format"] == {"type": "json_object"}


async def test_json_schema_strict_is_sent_as_the_childs_strict_response_format(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    structured = failover(openai_model()).with_structured_output(
        Person, method="json_schema", strict=True
    )
    assert await structured.ainvoke(PROMPT) == Person(name="Ada", age=36)
    body = provider_sim.requests(OPENAI)[-1].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert "tools" not in body, "not a forced tool call"


@pytest.mark.parametrize("path", ["invoke", "ainvoke"])
async def test_the_fallback_answers_with_its_own_structured_output_and_raw_says_who(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    provider_sim.fail(OPENAI, 401)
    model = failover(openai_model(), anthropic_model())
    structured = model.with_structured_output(Person, include_raw=True)
    tracer = RunTree()
    answer = await ask(structured, path, PROMPT, {"callbacks": [tracer]})
    assert answer["parsed"] == Person(name="Ada", age=36)
    assert answer["raw"].response_metadata["failover"]["model"] == f"anthropic/{CLAUDE}"
    assert "tools" in provider_sim.requests(CLAUDE)[-1].body, "Claude's own: a tool call"
    assert len(tracer.roots) == 1, "one trace"
    [router] = tracer.failover_runs()
    assert router.run_type == "chain"
    runs = tracer.model_runs()
    assert [r.name for r in runs] == ["ChatOpenAI", "ChatAnthropic"]
    nested = {r.id for r in tracer.runs()}
    assert all(r.parent_run_id in nested and r.trace_id == router.trace_id for r in runs)


def test_a_child_that_refuses_the_method_is_skipped(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    # ChatAnthropic has no JSON mode: the request goes on to a child that has one.
    model = failover(anthropic_model(), openai_model())
    assert isinstance(model.with_structured_output(None, method="json_mode").invoke(PROMPT), dict)
    assert provider_sim.calls(CLAUDE) == 0
    assert provider_sim.calls(OPENAI) == 1


@pytest.mark.parametrize("path", ["invoke", "ainvoke"])
async def test_a_hedges_loser_ends_its_run_as_lost_the_race(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    from tests.langchain.test_hedge import _Tracer

    provider_sim.stall_first_token(OPENAI, 1.2, keepalive=0.05)
    model = failover(openai_model(), anthropic_model(), hedge_after=0.2)
    tracer = _Tracer()
    answer = await ask(model.with_structured_output(Person), path, PROMPT, {"callbacks": [tracer]})
    assert answer == Person(name="Ada", age=36)
    loser = tracer.attempts()["ChatOpenAI"]
    assert loser.id in tracer.ended, "ended when the call returned"
    assert (loser.error or "").startswith(
        f"CancelledError('lost a hedged race to anthropic/{CLAUDE}')"
    )
