"""Configuration stays true; prompts, tools and serialization behave as with the child itself."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMChatStartEvent
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.prompts import ChatPromptTemplate, PromptTemplate
from llama_index.core.rate_limiter import BaseRateLimiter
from llama_index.core.tools import FunctionTool

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverLLM
from tests.llamaindex.conftest import LIKE, OPENAI, OPENAI_2

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]


def no_wait(attempt: int) -> float:
    """A picklable backoff (a lambda is not)."""
    return 0.0


# -- 6. assigning a field rebuilds the chain ------------------------------------------


def test_assigning_max_retries_takes_effect(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), like_llm())
    llm.max_retries = 1
    llm.chat(HELLO)
    assert provider_sim.calls(OPENAI) == 1


def test_assigning_llms_takes_effect(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    llm = failover_llm(openai_llm())
    llm.llms = [like_llm(), openai_llm(OPENAI_2)]
    assert llm.keys == (f"openai_like/{LIKE}", f"openai/{OPENAI_2}")
    assert llm.metadata.model_name == f"failover:openai_like/{LIKE},openai/{OPENAI_2}"
    assert llm.chat(HELLO).additional_kwargs["failover"]["model"] == f"openai_like/{LIKE}"


def test_assigning_observer_backoff_cooldown_registry_and_rules_takes_effect(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    llm = failover_llm(openai_llm(), like_llm())
    seen: list[fc.FailoverEvent] = []
    waits: list[int] = []
    own = fc.HealthRegistry()
    llm.observer = seen.append
    llm.backoff = lambda attempt: waits.append(attempt) or 0.0
    llm.cooldown = 60
    llm.registry = own
    llm.rules = [lambda exc: fc.ErrorKind.AUTH_DEAD if fc.status_of(exc) == 409 else None]

    provider_sim.fail(OPENAI, 503, times=1)
    llm.chat(HELLO)
    assert waits == [1]
    provider_sim.fail(OPENAI, 409)
    llm.chat(HELLO)
    [event] = seen
    assert event.kind is fc.ErrorKind.AUTH_DEAD and event.benched_for is not None
    assert event.benched_for.total_seconds() == 60
    assert own.is_benched(f"openai/{OPENAI}") and not fc.is_benched(f"openai/{OPENAI}")


def test_an_invalid_assignment_raises_and_changes_nothing(
    openai_llm: Make, failover_llm: Make
) -> None:
    llm = failover_llm(openai_llm())
    with pytest.raises(fc.ChainConfigError, match="at least one model"):
        llm.llms = []
    with pytest.raises(TypeError, match="backoff must be callable"):
        llm.backoff = 5
    assert llm.keys == (f"openai/{OPENAI}",) and len(llm.llms) == 1
    assert llm.backoff is not None and llm.backoff(1) == 0.0


def test_model_copy_with_update_builds_its_own_chain(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), like_llm())
    copy = llm.model_copy(update={"max_retries": 1, "registry": fc.HealthRegistry()})
    copy.chat(HELLO)
    assert provider_sim.calls(OPENAI) == 1
    llm.chat(HELLO)
    assert provider_sim.calls(OPENAI) == 1 + 3, "the original keeps its own settings"
    other = llm.model_copy(update={"llms": [like_llm()]})
    assert other.keys == (f"openai_like/{LIKE}",) and len(llm.keys) == 2


# -- 15. unknown options --------------------------------------------------------------


def test_an_unknown_option_is_an_error_that_suggests_the_right_one(openai_llm: Make) -> None:
    with pytest.raises(
        TypeError,
        match=r"^FailoverLLM got an unexpected option 'cooldwn'; did you mean 'cooldown'\?$",
    ):
        FailoverLLM(llms=[openai_llm()], cooldwn=5)
    with pytest.raises(TypeError, match=r"^FailoverLLM got an unexpected option 'zzz'$"):
        FailoverLLM(llms=[openai_llm()], zzz=1)
    with pytest.raises(TypeError, match="did you mean 'max_retries'"):
        FailoverLLM(llms=[openai_llm()]).model_copy(update={"max_retries_": 2})


def test_prompt_options_belong_to_the_children(openai_llm: Make) -> None:
    with pytest.raises(TypeError, match=r"'system_prompt'.*set it on each child"):
        FailoverLLM(llms=[openai_llm()], system_prompt="Be brief.")
    llm = FailoverLLM(llms=[openai_llm()])
    with pytest.raises(TypeError, match="'completion_to_prompt'"):
        llm.completion_to_prompt = lambda prompt: prompt


# -- 8. prompts are each child's own --------------------------------------------------


def test_predict_sends_what_the_child_sends_with_its_system_prompt(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    child = openai_llm(system_prompt="Be brief.")
    prompt = PromptTemplate("Say {word}.")
    direct = child.predict(prompt, word="hi")
    through = failover_llm(child).predict(prompt, word="hi")
    [alone, routed] = provider_sim.requests(OPENAI)
    assert routed.body["messages"] == alone.body["messages"]
    assert routed.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert through == direct


async def test_async_and_streamed_predict_use_the_childs_formatting(
    provider_sim: ProviderSimulator, openai_llm: Make, failover_llm: Make
) -> None:
    llm = failover_llm(openai_llm(system_prompt="Be brief."))
    prompt = PromptTemplate("Say {word}.")
    await llm.apredict(prompt, word="a")
    "".join(llm.stream(prompt, word="b"))
    "".join([t async for t in await llm.astream(prompt, word="c")])
    systems = [r.body["messages"][0]["content"] for r in provider_sim.requests(OPENAI)]
    assert systems == ["Be brief."] * 3


def test_completion_children_format_with_their_own_functions(failover_llm: Make) -> None:
    child = MockLLM(  # echoes the prompt it was given
        system_prompt="SYS",
        completion_to_prompt=lambda p: f"[INST] {p} [/INST]",
        messages_to_prompt=lambda ms: " | ".join(f"{m.role.value}: {m.content}" for m in ms),
    )
    plain = PromptTemplate("Say {word}.")
    chat = ChatPromptTemplate.from_messages([("system", "rules"), ("user", "Say {word}.")])
    llm = failover_llm(child)
    for prompt in (plain, chat):
        assert llm.predict(prompt, word="hi") == child.predict(prompt, word="hi")
    assert llm.predict(plain, word="hi") == "SYS\n\n[INST] Say hi. [/INST]"
    assert "system: rules | user: Say hi." in llm.predict(chat, word="hi")


def test_a_query_engine_sends_the_serving_childs_system_prompt(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(
        openai_llm(system_prompt="OpenAI rules"), like_llm(system_prompt="Like rules")
    )
    index = VectorStoreIndex.from_documents(
        [Document(text="Failover moves requests to a healthy model.")],
        embed_model=MockEmbedding(embed_dim=8),
    )
    index.as_query_engine(llm=llm).query("what does failover do?")
    [served] = provider_sim.requests(LIKE)
    assert served.body["messages"][0] == {"role": "system", "content": "Like rules"}


def test_num_output_is_the_largest_known(failover_llm: Make) -> None:
    llm = failover_llm(
        {"a": MockLLM(max_tokens=256), "b": MockLLM(), "c": MockLLM(max_tokens=4096)}
    )
    assert MockLLM().metadata.num_output == -1
    assert llm.metadata.num_output == 4096


@pytest.fixture
def failover_llm(registry: fc.HealthRegistry) -> Callable[..., FailoverLLM]:
    """As conftest's, but a dict of children is passed through as a dict."""

    def make(*llms: Any, **options: Any) -> FailoverLLM:
        options.setdefault("backoff", no_wait)
        chain = llms[0] if len(llms) == 1 and isinstance(llms[0], dict) else list(llms)
        return FailoverLLM(llms=chain, **options)

    return make


# -- 8. tools travel through each child's own tool API --------------------------------


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_tool_requests_carry_no_private_kwarg_and_every_event_serializes(
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    events: list[BaseEvent],
) -> None:
    provider_sim.fail(OPENAI, 401)
    llm = failover_llm(openai_llm(), like_llm())
    response = llm.chat_with_tools([FunctionTool.from_defaults(add)], user_msg="add 2 and 40")
    [call] = llm.get_tool_calls_from_response(response)
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 2, "b": 40})
    starts = [e for e in events if isinstance(e, LLMChatStartEvent)]
    assert len(starts) == 2
    for event in events:
        assert "_failover" not in event.model_dump_json()


@pytest.mark.parametrize("streamed", ["sync", "async"])
async def test_streamed_tool_calls_fail_over_and_are_read_by_the_serving_child(
    streamed: str,
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    llm = failover_llm(openai_llm(), like_llm())
    tools = [FunctionTool.from_defaults(add)]
    if streamed == "sync":
        chunks = list(llm.stream_chat_with_tools(tools, user_msg="add 2 and 40"))
    else:
        gen = await llm.astream_chat_with_tools(tools, user_msg="add 2 and 40")
        chunks = [c async for c in gen]
    assert chunks[-1].additional_kwargs["failover"]["model"] == f"openai_like/{LIKE}"
    [call] = llm.get_tool_calls_from_response(chunks[-1])
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 2, "b": 40})


async def test_async_tool_calls_and_handlers_count_once(
    openai_llm: Make, failover_llm: Make
) -> None:
    handler = TokenCountingHandler()
    llm = failover_llm(openai_llm(), callback_manager=CallbackManager([handler]))
    response = await llm.achat_with_tools([FunctionTool.from_defaults(add)], user_msg="add 1 and 2")
    assert llm.get_tool_calls_from_response(response)[0].tool_kwargs == {"a": 1, "b": 2}
    assert len(handler.llm_token_counts) == 1


# -- 8. serialization round-trips or refuses clearly ----------------------------------


def test_from_dict_refuses_clearly(openai_llm: Make, failover_llm: Make) -> None:
    llm = failover_llm(openai_llm())
    with pytest.raises(TypeError, match="cannot be rebuilt from a dict"):
        FailoverLLM.from_dict(llm.to_dict())
    with pytest.raises(TypeError, match="cannot be written as JSON"):
        llm.to_json()
    with pytest.raises(TypeError, match="cannot be rebuilt from a dict"):
        FailoverLLM.from_json("{}")


def test_pickle_round_trips_every_option(failover_llm: Make) -> None:
    llm = failover_llm(MockLLM(max_tokens=3), max_retries=2, cooldown=42)
    back = pickle.loads(pickle.dumps(llm))
    assert back.backoff is no_wait and back.max_retries == 2
    assert back.failover_chain.policy == llm.failover_chain.policy
    assert back.keys == llm.keys
    assert back.complete("one two").additional_kwargs["failover"]["model"] == llm.keys[0]


def test_pickle_refuses_what_it_cannot_keep(failover_llm: Make) -> None:
    with pytest.raises(TypeError, match="'backoff' cannot be"):
        pickle.dumps(failover_llm(MockLLM(), backoff=lambda attempt: 0.0))
    with pytest.raises(TypeError, match="'registry' cannot be"):
        pickle.dumps(failover_llm(MockLLM(), registry=fc.HealthRegistry()))


class CountingLimiter(BaseRateLimiter):
    """A rate limiter that lets everything through and counts the calls it let through."""

    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self, num_tokens: int = 0) -> None:
        self.acquired += 1

    async def async_acquire(self, num_tokens: int = 0) -> None:
        self.acquired += 1


async def test_a_rate_limiter_on_the_failover_llm_throttles_each_call_once(
    provider_sim: ProviderSimulator, openai_llm: Make, like_llm: Make, failover_llm: Make
) -> None:
    limiter = CountingLimiter()
    provider_sim.fail(OPENAI, 401)
    llm = failover_llm(openai_llm(), like_llm(), rate_limiter=limiter)
    llm.chat(HELLO)
    await llm.acomplete("hi")
    list(llm.stream_chat(HELLO))
    assert limiter.acquired == 3, "once per call, not per attempt"


def test_the_json_refusal_does_not_recommend_a_dict_that_holds_the_keys(
    openai_llm: Make, failover_llm: Make
) -> None:
    llm = failover_llm(openai_llm())
    with pytest.raises(TypeError, match="cannot be written as JSON") as caught:
        llm.to_json()
    assert "to_dict" not in str(caught.value) and "pickle" not in str(caught.value)
