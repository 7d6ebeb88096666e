"""FailoverLLM as a LlamaIndex citizen: construction, metadata, spans, tools."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverLLM, key_of
from tests.llamaindex.conftest import LIKE, OPENAI, OPENAI_2

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]


def test_keys_are_provider_and_model(openai_llm: Make, like_llm: Make) -> None:
    llm = FailoverLLM(llms=[openai_llm(), like_llm()])
    assert llm.keys == (f"openai/{OPENAI}", f"openai_like/{LIKE}")
    assert key_of(MockLLM()).startswith("mock")


def test_dict_keys_duplicates_and_empty_chains(openai_llm: Make) -> None:
    assert FailoverLLM(llms={"a": openai_llm(), "b": openai_llm()}).keys == ("a", "b")
    with pytest.raises(ValueError, match=f"duplicate model key.*openai/{OPENAI}"):
        FailoverLLM(llms=[openai_llm(), openai_llm()])
    with pytest.raises(ValueError, match="at least one model"):
        FailoverLLM(llms=[])
    with pytest.raises(TypeError, match="LlamaIndex LLM"):
        FailoverLLM(llms=[openai_llm(), "gpt-4o"])


def test_nested_chains_are_flattened(openai_llm: Make, like_llm: Make) -> None:
    inner = FailoverLLM(llms=[like_llm(), openai_llm(OPENAI_2)])
    outer = FailoverLLM(llms=[openai_llm(), inner])
    assert outer.keys == (f"openai/{OPENAI}", f"openai_like/{LIKE}", f"openai/{OPENAI_2}")


def test_metadata_is_the_common_ground_and_never_raises(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    unknown = OpenAI(
        model="my-finetune", api_base=provider_sim.openai_base_url, api_key="x", max_retries=0
    )
    with pytest.raises(ValueError, match="Unknown model"):
        _ = unknown.metadata
    llm = failover_llm(openai_llm(), like_llm(), unknown)
    meta = llm.metadata
    assert meta.context_window == 32000, "the smallest window any child reports"
    assert meta.is_function_calling_model and meta.is_chat_model
    assert meta.model_name == f"failover:openai/{OPENAI},openai_like/{LIKE},openai/my-finetune"
    assert not failover_llm(MockLLM()).metadata.is_function_calling_model


async def test_one_child_able_to_call_functions_makes_the_chain_function_calling(
    openai_llm: Make, failover_llm: Make
) -> None:
    """Tool requests skip the children that cannot use tools, so FunctionAgent must not
    refuse a chain for one of them."""
    from llama_index.core.agent.workflow import FunctionAgent

    llm = failover_llm(MockLLM(), openai_llm())
    assert llm.metadata.is_function_calling_model
    answer = await FunctionAgent(tools=[], llm=llm).run("hello")
    assert str(answer).endswith("you said: hello")


def test_child_spans_nest_under_the_failover_span(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    handler = SimpleSpanHandler()
    root = get_dispatcher()
    root.add_span_handler(handler)
    try:
        provider_sim.fail(OPENAI, 401)
        failover_llm(openai_llm(), like_llm()).chat(HELLO)
    finally:
        root.span_handlers.remove(handler)
    spans = list(handler.completed_spans) + list(handler.dropped_spans)
    [parent] = [s for s in spans if s.id_.startswith("FailoverLLM.chat")]
    children = [s for s in spans if s.parent_id == parent.id_]
    assert {s.id_.split("-")[0] for s in children} >= {"OpenAI.chat", "OpenAILike.chat"}
    assert any(s.id_.startswith("OpenAI.chat") for s in handler.dropped_spans), (
        "the failed child call shows as a dropped span"
    )


def test_a_child_without_function_calling_is_skipped_for_tools_not_benched(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = failover_llm(MockLLM(), openai_llm())
    response = llm.chat_with_tools([FunctionTool.from_defaults(add)], user_msg="add 20 and 22")
    assert response.additional_kwargs["failover"]["model"] == f"openai/{OPENAI}"
    [call] = llm.get_tool_calls_from_response(response)
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 20, "b": 22})
    assert fc.list_benched() == []
    assert llm.complete("plain text").additional_kwargs["failover"]["model"].startswith("mock")


def test_mock_children_work_offline(failover_llm: Make) -> None:
    class Down(MockLLM):
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise ConnectionError("down")

    llm = failover_llm(Down(), MockLLM(max_tokens=3))
    response = llm.complete("one two three four")
    assert response.additional_kwargs["failover"]["failed_attempts"] == 3
    assert fc.is_benched(llm.keys[0])


def test_children_that_retry_on_their_own_warn_once(provider_sim: ProviderSimulator) -> None:
    def retrying() -> OpenAI:  # llama-index's OpenAI retries 3 times by default
        return OpenAI(model="gpt-4o", api_base=provider_sim.openai_base_url, api_key="x")

    with pytest.warns(fc.SDKRetriesWarning, match="openai/gpt-4o retries on its own") as seen:
        FailoverLLM(llms=[retrying()])
    assert seen[0].filename == __file__, "the warning points at the user's line"
    llm = FailoverLLM(llms=[OpenAI(model=OPENAI, api_key="x", max_retries=0)])
    with pytest.warns(fc.SDKRetriesWarning, match="openai/gpt-4.1 retries") as seen:
        llm.llms = [OpenAI(model="gpt-4.1", api_key="x")]
    assert seen[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FailoverLLM(llms=[retrying()])


def test_children_are_left_alone_and_trace_maps_stay_bounded_over_500_calls() -> None:
    from llama_index.core.callbacks import CallbackManager, LlamaDebugHandler

    quiet_manager = CallbackManager([])
    watched_manager = CallbackManager([LlamaDebugHandler()])
    quiet = MockLLM(callback_manager=quiet_manager)
    watched = MockLLM(callback_manager=watched_manager)
    llm = FailoverLLM(llms={"mock/watched": watched, "mock/quiet": quiet})
    assert quiet.callback_manager is quiet_manager, "a child's manager is never replaced"
    assert watched.callback_manager is watched_manager
    for _ in range(500):
        llm.chat(HELLO)
    # One trace's worth of ids (the last call's), not one per call (1000 on the old design).
    assert sum(len(ids) for ids in watched_manager.trace_map.values()) <= 4
    assert sum(len(ids) for ids in llm.callback_manager.trace_map.values()) <= 4
