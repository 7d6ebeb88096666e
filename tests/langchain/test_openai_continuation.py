"""Continuing a broken stream on OpenAI-API children the user declares able."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover._streaming import prefill_call
from tests.langchain.conftest import OPENAI, OPENAI_2, ask

Make = Any
VLLM, REJECTS = "qwen3-vllm", "llama-no-prefill"
WHOLE = f"[{OPENAI}] you said: tell me a long story"


def cut(sim: ProviderSimulator) -> None:
    sim.fail(OPENAI, after_chunks=2, disconnect=True)


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_a_declared_openai_wire_child_finishes_a_broken_stream(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    cut(provider_sim)
    provider_sim.set_prefill(VLLM, "continue")
    model = failover(openai_model(), openai_model(VLLM), resume_streams=[f"openai/{VLLM}"])
    answer = await ask(model, path, "tell me a long story")
    assert answer.content == WHOLE, "the caller gets the whole answer, once"
    [asked] = provider_sim.requests(VLLM)
    assert asked.body["messages"][-1] == {"role": "assistant", "content": f"[{OPENAI}] you"}
    assert asked.body["continue_final_message"] is True
    assert asked.body["add_generation_prompt"] is False


@pytest.mark.parametrize(
    ("base_url", "asks_vllm_way"),
    [
        ("http://gpu-box:8000/v1", True),  # vLLM, SGLang and unknown servers
        ("https://openrouter.ai/api/v1", False),
        ("http://localhost:11434/v1", False),  # Ollama
        ("https://api.deepseek.com/beta", False),
        ("https://api.mistral.ai/v1", False),
    ],
)
def test_the_request_shape_follows_the_server(base_url: str, asks_vllm_way: bool) -> None:
    child = ChatOpenAI(model="m", base_url=base_url, api_key="k", extra_body={"top_k": 5})  # type: ignore[arg-type]
    call = prefill_call(child, {"temperature": 0})
    if asks_vllm_way:
        assert call["extra_body"] == {
            "top_k": 5,
            "continue_final_message": True,
            "add_generation_prompt": False,
        }
    else:
        assert call == {"temperature": 0}


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_a_rejected_prefill_goes_to_the_next_able_model(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    cut(provider_sim)
    provider_sim.set_prefill(REJECTS, "reject")
    provider_sim.set_prefill(VLLM, "continue")
    model = failover(
        openai_model(),
        openai_model(REJECTS),
        openai_model(VLLM),
        resume_streams=[f"openai/{REJECTS}", f"openai/{VLLM}"],
    )
    answer = await ask(model, path, "tell me a long story")
    assert answer.content == WHOLE
    assert provider_sim.calls(REJECTS) == 1
    assert not fc.is_benched(f"openai/{REJECTS}"), "a refused prefill says nothing of health"


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_with_none_able_the_caller_gets_the_original_interruption(
    path: str, provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    cut(provider_sim)
    provider_sim.set_prefill(REJECTS, "reject")
    model = failover(openai_model(), openai_model(REJECTS), resume_streams=[f"openai/{REJECTS}"])
    with pytest.raises(fc.StreamInterruptedError) as caught:
        await ask(model, path, "tell me a long story")
    assert caught.value.model == f"openai/{OPENAI}", "the real cause, not the prefill's 400"
    assert caught.value.kind is fc.ErrorKind.TRANSIENT
    assert caught.value.text == f"[{OPENAI}] you"


async def test_undeclared_openai_children_are_never_asked_to_continue(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    cut(provider_sim)
    model = failover(openai_model(), openai_model(OPENAI_2), resume_streams=True)
    with pytest.raises(fc.StreamInterruptedError):
        await ask(model, "stream", "tell me a long story")
    assert provider_sim.calls(OPENAI_2) == 0
