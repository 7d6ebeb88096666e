"""The simulator's faults for the scenario suite, seen by the real SDKs."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from failover_core.simulator import Fault, ProviderSimulator

HI = [{"role": "user", "content": "hi there friend"}]


@pytest.fixture
def client(provider_sim: ProviderSimulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider_sim.openai_base_url, api_key="x", max_retries=0)


def text_of(stream: openai.Stream[object]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)  # type: ignore[attr-defined]


def test_a_reset_before_headers_is_a_connection_error(
    provider_sim: ProviderSimulator, client: openai.OpenAI
) -> None:
    provider_sim.fail("m", reset=True)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert provider_sim.calls("m") == 1


def test_a_malformed_chunk_breaks_the_sdks_stream_midway(
    provider_sim: ProviderSimulator, client: openai.OpenAI
) -> None:
    provider_sim.fail("m", malformed_after=2)
    seen: list[str] = []
    with pytest.raises(json.JSONDecodeError):  # noqa: PT012 - consuming is the act
        for chunk in client.chat.completions.create(model="m", messages=HI, stream=True):  # type: ignore[arg-type]
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "[m] you"


def test_a_stream_without_done_still_carries_the_whole_answer(
    provider_sim: ProviderSimulator, client: openai.OpenAI
) -> None:
    provider_sim.fail("m", no_done=True)
    stream = client.chat.completions.create(model="m", messages=HI, stream=True)  # type: ignore[arg-type]
    assert text_of(stream) == "[m] you said: hi there friend"


def test_refusals_on_both_apis(provider_sim: ProviderSimulator, client: openai.OpenAI) -> None:
    provider_sim.fail("m", refuse=True)
    answer = client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert (answer.choices[0].finish_reason, answer.choices[0].message.content) == (
        "content_filter",
        None,
    )
    provider_sim.fail("c", refuse=True)
    claude = anthropic.Anthropic(base_url=provider_sim.anthropic_base_url, api_key="x")
    message = claude.messages.create(model="c", max_tokens=9, messages=HI)  # type: ignore[arg-type]
    assert (message.stop_reason, message.content) == ("refusal", [])


def test_openai_wire_prefills_are_continued_or_rejected_per_model(
    provider_sim: ProviderSimulator, client: openai.OpenAI
) -> None:
    prefilled = [*HI, {"role": "assistant", "content": "[q] you said:"}]
    provider_sim.set_prefill("q", "continue")
    answer = client.chat.completions.create(model="q", messages=prefilled)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == " hi there friend"
    provider_sim.set_prefill("r", "reject")
    with pytest.raises(openai.BadRequestError, match="prefill"):
        client.chat.completions.create(model="r", messages=prefilled)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefill mode"):
        provider_sim.set_prefill("r", "maybe")


def test_the_new_faults_travel_as_dicts() -> None:
    fault = Fault(reset=True, malformed_after=1, no_done=True, refuse=True)
    assert Fault.from_dict(fault.to_dict()) == fault
    with pytest.raises(ValueError, match="malformed_after"):
        Fault(malformed_after=-1)
