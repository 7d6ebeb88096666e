"""Content filters are the provider's answer, not an outage (``on_content_filter``)."""

from __future__ import annotations

from typing import Any, ClassVar

import openai
import pytest

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from tests.conftest import FakeClock
from tests.langchain.conftest import CLAUDE, OPENAI, OPENAI_2, ask

Make = Any
PATHS = ["invoke", "ainvoke", "stream", "astream"]


def filter_400(sim: ProviderSimulator, model: str = OPENAI) -> None:
    sim.fail(
        model,
        400,
        code="content_policy_violation",
        message="Your request was rejected as a result of our safety system.",
        times=None,
    )


@pytest.mark.parametrize("path", PATHS)
async def test_a_content_filter_error_is_raised_at_once_by_default(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    filter_400(provider_sim)
    events: list[fc.FailoverEvent] = []
    model = failover(openai_model(), openai_model(OPENAI_2), observer=events.append)
    with pytest.raises(openai.BadRequestError) as caught:
        await ask(model, path)
    assert "safety system" in str(caught.value), "the provider's own reason, intact"
    assert provider_sim.calls(OPENAI_2) == 0, "no other model tried"
    assert provider_sim.calls(OPENAI) == 1
    assert fc.list_benched() == []
    assert [(e.reason, e.benched, e.next_model) for e in events] == [
        ("content_filter", False, None)
    ]


@pytest.mark.parametrize("path", PATHS)
async def test_with_next_a_content_filter_error_tries_the_next_model(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    filter_400(provider_sim)
    model = failover(openai_model(), openai_model(OPENAI_2), on_content_filter="next")
    answer = await ask(model, path)
    assert answer.response_metadata["failover"]["model"] == f"openai/{OPENAI_2}"
    assert fc.list_benched() == []


async def test_azure_and_moderation_forms_are_filters_too(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 400, code="content_filter", message="The response was filtered")
    model = failover(openai_model(), openai_model(OPENAI_2))
    with pytest.raises(openai.BadRequestError):
        model.invoke("hi")
    provider_sim.fail(OPENAI, 403, code="moderation", message="Input was flagged for moderation")
    with pytest.raises(openai.PermissionDeniedError):
        model.invoke("hi")
    assert provider_sim.calls(OPENAI_2) == 0 and fc.list_benched() == []


@pytest.mark.parametrize("path", PATHS)
async def test_a_refusal_answer_is_returned_as_the_child_returned_it_by_default(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, refuse=True)
    model = failover(openai_model(), openai_model(OPENAI_2))
    answer = await ask(model, path)
    assert answer.response_metadata["finish_reason"] == "content_filter"
    assert answer.response_metadata["failover"]["model"] == f"openai/{OPENAI}"
    assert provider_sim.calls(OPENAI_2) == 0


@pytest.mark.parametrize("path", PATHS)
async def test_with_next_a_refusal_answer_goes_to_the_next_model(
    path: str,
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
) -> None:
    provider_sim.fail(OPENAI, refuse=True)
    provider_sim.fail(CLAUDE, refuse=True)
    model = failover(
        openai_model(), anthropic_model(), openai_model(OPENAI_2), on_content_filter="next"
    )
    answer = await ask(model, path)
    assert answer.response_metadata["failover"]["model"] == f"openai/{OPENAI_2}"
    assert answer.content == f"[{OPENAI_2}] you said: hello"
    assert fc.list_benched() == []


def test_an_anthropic_refusal_is_a_refusal(
    provider_sim: ProviderSimulator, anthropic_model: Make, openai_model: Make, failover: Make
) -> None:
    provider_sim.fail(CLAUDE, refuse=True)
    answer = failover(anthropic_model(), openai_model()).invoke("hi")
    assert answer.response_metadata["stop_reason"] == "refusal"
    assert fc.refusal_of(answer.response_metadata) == "refusal"


def test_a_content_filter_frees_a_probe_and_benches_nothing(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make, clock: FakeClock
) -> None:
    fc.bench_model(f"openai/{OPENAI}", 10)
    clock.advance(11)
    filter_400(provider_sim)
    model = failover(openai_model(), openai_model(OPENAI_2))
    with pytest.raises(openai.BadRequestError):
        model.invoke("hi")
    assert not fc.is_benched(f"openai/{OPENAI}")


def test_a_bad_value_is_refused_naming_both(openai_model: Make) -> None:
    with pytest.raises(ValueError, match="'raise' or 'next'"):
        FailoverChatModel(models=[openai_model()], on_content_filter="skip")
    with pytest.raises(ValueError, match="'raise' or 'next'"):
        fc.set_failover_defaults(on_content_filter="ignore")  # type: ignore[arg-type]
    built = FailoverChatModel.from_specs(
        "openai:gpt-4o-mini", api_key="sk-test", on_content_filter="next"
    )
    assert built.failover_chain.policy.on_content_filter == "next"


def test_the_process_default_applies_to_chains_built_later(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    fc.set_failover_defaults(on_content_filter="next")
    filter_400(provider_sim)
    answer = failover(openai_model(), openai_model(OPENAI_2)).invoke("hi")
    assert answer.response_metadata["failover"]["model"] == f"openai/{OPENAI_2}"


def test_classify_keeps_calling_a_filter_request_specific() -> None:
    class Filtered(Exception):
        status_code = 400
        body: ClassVar[dict[str, Any]] = {"error": {"code": "content_policy_violation"}}

    assert fc.classify(Filtered()) is fc.ErrorKind.REQUEST_SPECIFIC
    assert fc.is_content_filter(Filtered())


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"finish_reason": "content_filter"}, "content_filter"),
        ({"stop_reason": "refusal"}, "refusal"),
        ({"finish_reason": "SAFETY"}, "safety"),
        ({"prompt_feedback": {"block_reason": "PROHIBITED_CONTENT"}}, "prompt_blocked"),
        ({"stopReason": "guardrail_intervened"}, "guardrail_intervened"),
        ({"amazon-bedrock-guardrailAction": "INTERVENED"}, "guardrail_intervened"),
        ({"finish_reason": "stop"}, None),
        ({"choices": [{"finish_reason": "content_filter"}]}, "content_filter"),
    ],
)
def test_refusals_are_read_from_each_providers_metadata(
    metadata: dict[str, Any], reason: str | None
) -> None:
    assert fc.refusal_of(metadata) == reason


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_provider_mentioning_policy_is_not_a_filter(status: int) -> None:
    class Busy(Exception):
        status_code = status

    assert not fc.is_content_filter(Busy("content policy servers are overloaded"))
