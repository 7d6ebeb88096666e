"""``on_transient="next"`` on FailoverChatModel with real SDK clients on the simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from tests.langchain.conftest import CLAUDE, OPENAI, OPENAI_2, ask

Make = Callable[..., Any]


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "astream"])
async def test_each_request_calls_the_failing_model_once_until_it_is_benched(
    path: str,
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    model = failover(openai_model(), anthropic_model(), on_transient="next")
    for n in range(1, 4):
        answer = await ask(model, path)
        assert answer.response_metadata["failover"] == {
            "model": f"anthropic/{CLAUDE}",
            "failed_attempts": 1,
        }
        assert provider_sim.calls(OPENAI) == n
    assert fc.is_benched(f"openai/{OPENAI}")
    await ask(model, path)
    assert provider_sim.calls(OPENAI) == 3


def test_from_specs_and_the_process_default_take_it(provider_sim: ProviderSimulator) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    specs = f"openai:{OPENAI}, openai:{OPENAI_2}"
    kwargs: dict[str, Any] = {"base_url": provider_sim.openai_base_url, "api_key": "sk-test"}
    model = FailoverChatModel.from_specs(specs, on_transient="next", **kwargs)
    assert model.failover_chain.policy.on_transient == "next"
    model.invoke("hi")
    assert provider_sim.calls(OPENAI) == 1
    fc.set_failover_defaults(on_transient="next")
    assert FailoverChatModel.from_specs(specs, **kwargs).failover_chain.policy.on_transient == (
        "next"
    )
    with pytest.raises(ValueError, match="'retry' or 'next'"):
        FailoverChatModel.from_specs(specs, on_transient="fast", **kwargs)  # type: ignore[arg-type]
