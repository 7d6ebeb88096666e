"""FailoverChatModel as a LangChain citizen: construction, callbacks, events, streaming."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel, SDKRetriesWarning, key_of
from tests.langchain.conftest import CLAUDE, OPENAI, OPENAI_2, CountingLimiter

Make = Callable[..., Any]


class Recorder(BaseCallbackHandler):
    """Records chain and chat-model runs, retries and custom events with their run ids."""

    def __init__(self) -> None:
        self.chains: list[tuple[str, UUID, UUID | None]] = []
        self.starts: list[tuple[str, UUID, UUID | None, list[str]]] = []
        self.retries: list[tuple[int, UUID]] = []
        self.custom: list[tuple[str, dict[str, Any], UUID]] = []
        self.tokens: list[tuple[str, UUID]] = []

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.chains.append((str(kwargs.get("name")), run_id, parent_run_id))

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        name = (kwargs.get("metadata") or {}).get("ls_model_name", "")
        self.starts.append((str(name), run_id, parent_run_id, tags or []))

    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.retries.append((retry_state.attempt_number, run_id))

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.custom.append((name, data, run_id))

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        self.tokens.append((token, run_id))


# -- construction ------------------------------------------------------------------------


def test_keys_come_from_each_childs_provider_and_model(
    openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    model = failover(openai_model(), anthropic_model())
    assert model.keys == (f"openai/{OPENAI}", f"anthropic/{CLAUDE}")
    assert key_of(openai_model(OPENAI_2)) == f"openai/{OPENAI_2}"


def test_a_dict_sets_keys_and_duplicates_are_refused(openai_model: Make) -> None:
    model = FailoverChatModel(models={"primary": openai_model(), "backup": openai_model()})
    assert model.keys == ("primary", "backup")
    # pydantic reports it as a ValidationError, which is a ValueError like ChainConfigError.
    with pytest.raises(ValueError, match=f"duplicate model key.*openai/{OPENAI}"):
        FailoverChatModel(models=[openai_model(), openai_model()])
    with pytest.raises(ValueError, match="at least one model"):
        FailoverChatModel(models=[])


def test_bad_children_and_options_fail_at_construction(openai_model: Make) -> None:
    with pytest.raises(TypeError, match=r"models\[1\] is the string .gpt-4o."):
        FailoverChatModel(models=[openai_model(), "gpt-4o"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="negative"):
        FailoverChatModel(models=[openai_model()], cooldown=-1)
    with pytest.raises(TypeError, match="backoff must be callable"):
        FailoverChatModel(models=[openai_model()], backoff=3)


def test_nested_failover_models_are_flattened(
    openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    inner = failover(anthropic_model(), openai_model(OPENAI_2))
    outer = failover(openai_model(), inner)
    assert outer.keys == (f"openai/{OPENAI}", f"anthropic/{CLAUDE}", f"openai/{OPENAI_2}")


def test_children_that_retry_on_their_own_warn_once(provider_sim: ProviderSimulator) -> None:
    def retrying() -> ChatOpenAI:
        return ChatOpenAI(
            model="retrying-model", base_url=provider_sim.openai_base_url, api_key="x"
        )  # SDK default: max_retries=2

    with pytest.warns(SDKRetriesWarning, match="max_retries=its SDK's default"):
        FailoverChatModel(models=[retrying()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FailoverChatModel(models=[retrying()])  # the same key warns only once


def test_from_specs_builds_with_init_chat_model_and_no_sdk_retries(
    provider_sim: ProviderSimulator,
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    model = FailoverChatModel.from_specs(
        f"openai:{OPENAI}, openai:{OPENAI_2}",
        base_url=provider_sim.openai_base_url,
        api_key="sk-test",
        max_retries=1,
        backoff=lambda n: 0,
    )
    assert model.keys == (f"openai/{OPENAI}", f"openai/{OPENAI_2}")
    assert all(getattr(e.model, "max_retries", None) == 0 for e in model.failover_chain.entries)
    answer = model.invoke("hi")
    assert answer.response_metadata["failover"]["model"] == f"openai/{OPENAI_2}"
    assert provider_sim.calls(OPENAI) == 1, "one failover attempt, no hidden SDK retries"


def test_from_specs_gives_each_provider_its_own_key(provider_sim: ProviderSimulator) -> None:
    model = FailoverChatModel.from_specs(
        f"openai:{OPENAI}, anthropic:{CLAUDE}",
        per_provider={
            "openai": {"api_key": "sk-openai", "base_url": provider_sim.openai_base_url},
            "anthropic": {"api_key": "sk-ant", "base_url": provider_sim.anthropic_base_url},
        },
    )
    gpt, claude = (e.model for e in model.failover_chain.entries)
    assert gpt.openai_api_key.get_secret_value() == "sk-openai"  # type: ignore[attr-defined]
    assert claude.anthropic_api_key.get_secret_value() == "sk-ant"  # type: ignore[attr-defined]
    assert model.invoke("hi").content == f"[{OPENAI}] you said: hi"


def test_from_specs_without_langchain_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "langchain.chat_models", None)
    with pytest.raises(fc.SpecError, match="pip install langchain"):
        FailoverChatModel.from_specs("openai:gpt-4o-mini", api_key="x")


def test_from_specs_names_a_bad_spec() -> None:
    with pytest.raises(fc.SpecError, match="'gpt-4o'"):
        FailoverChatModel.from_specs(["openai:gpt-4o-mini", "gpt-4o"], api_key="x")
    with pytest.raises(fc.SpecError, match="no valid specs"):
        FailoverChatModel.from_specs(" , ")


def test_standard_params_reach_every_child_and_model_names_never_leak(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 400)
    model = failover(openai_model(), anthropic_model(), temperature=0.25, max_tokens=77)
    model.invoke("hi", model="failover-placeholder")
    [to_openai], [to_claude] = provider_sim.requests(OPENAI), provider_sim.requests(CLAUDE)
    assert to_openai.body["temperature"] == 0.25 and to_claude.body["temperature"] == 0.25
    assert to_claude.body["max_tokens"] == 77
    assert (to_openai.body["model"], to_claude.body["model"]) == (OPENAI, CLAUDE)


# -- answers say who served --------------------------------------------------------------


async def test_every_path_reports_the_serving_model(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 401, times=None)
    model = failover(openai_model(), anthropic_model())
    expected = f"anthropic/{CLAUDE}"
    assert (await model.ainvoke("a")).response_metadata["failover"]["model"] == expected
    streamed = None
    async for chunk in model.astream("b"):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None and streamed.response_metadata["failover"]["model"] == expected
    for answer in await model.abatch(["c", "d"]):
        assert answer.response_metadata["failover"] == {"model": expected, "failed_attempts": 0}


def test_streaming_flag_makes_invoke_stream_from_children(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    model = failover(openai_model(), anthropic_model(), streaming=True)
    answer = model.invoke("hi")
    assert answer.content == f"[{OPENAI}] you said: hi"
    assert provider_sim.requests(OPENAI)[0].stream


# -- callbacks ---------------------------------------------------------------------------


def _check_tree(rec: Recorder) -> UUID:
    """The failover run is a chain run at the root; every model run is its child."""
    [(name, root, parent)] = rec.chains
    assert (name, parent) == ("FailoverChatModel", None)
    assert rec.starts, "the child model's run was reported"
    for child_name, _, child_parent, tags in rec.starts:
        assert child_parent == root
        assert not child_name.startswith("failover")
        assert "nostream" not in tags
    return root


def test_invoke_nests_children_and_reports_retries_and_decisions(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    rec = Recorder()
    failover(openai_model(), anthropic_model()).invoke("hi", config={"callbacks": [rec]})
    root = _check_tree(rec)
    assert [name for name, *_ in rec.starts] == [OPENAI, OPENAI, OPENAI, CLAUDE]
    assert rec.retries == [(1, root), (2, root)]
    [(name, data, run_id)] = rec.custom
    assert (name, run_id) == ("failover", root)
    assert data["model"] == f"openai/{OPENAI}" and data["next_model"] == f"anthropic/{CLAUDE}"
    assert (data["kind"], data["attempt"], data["benched"], data["cooldown"]) == (
        "transient",
        3,
        True,
        8.0,  # a transient bench starts short (transient_cooldown)
    )
    assert "503" in data["error"] or "unavailable" in data["error"].lower()


def test_stream_nests_children_and_reports_decisions_too(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 401)
    rec = Recorder()
    model = failover(openai_model(), anthropic_model())
    list(model.stream("hi", config={"callbacks": [rec]}))
    root = _check_tree(rec)
    assert [(n, r) for n, _, r in rec.custom] == [("failover", root)]
    serving = rec.starts[-1][1]
    assert {run for _, run in rec.tokens} == {serving}, "tokens are reported once, by the child"


async def test_astream_events_show_the_custom_event_and_the_child_run(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.fail(OPENAI, 400, code="context_length_exceeded")
    model = failover(openai_model(), anthropic_model())
    seen: list[tuple[str, str]] = []
    custom: list[dict[str, Any]] = []
    async for event in model.astream_events("hi", version="v2"):
        if event["event"] == "on_custom_event":
            custom.append(event["data"])
        if event["event"] in ("on_chain_start", "on_chat_model_start", "on_custom_event"):
            seen.append((event["event"], event["name"]))
    assert seen == [
        ("on_chain_start", "FailoverChatModel"),
        ("on_chat_model_start", "ChatOpenAI"),
        ("on_custom_event", "failover"),
        ("on_chat_model_start", "ChatAnthropic"),
    ]
    assert custom[0]["kind"] == "request_specific" and custom[0]["benched"] is False


def test_an_agent_streaming_messages_sees_each_token_once(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    from langchain.agents import create_agent

    provider_sim.fail(OPENAI, 503, times=None)
    agent = create_agent(failover(openai_model(), anthropic_model()), tools=[])
    tokens = [
        chunk.content
        for chunk, _meta in agent.stream(
            {"messages": [HumanMessage("count the tokens")]}, stream_mode="messages"
        )
        if isinstance(chunk, AIMessage) and isinstance(chunk.content, str)
    ]
    assert "".join(tokens) == f"[{CLAUDE}] you said: count the tokens"


def test_observer_failure_does_not_fail_the_request(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    def broken(event: fc.FailoverEvent) -> None:
        raise RuntimeError("observer bug")

    provider_sim.fail(OPENAI, 401)
    answer = failover(openai_model(), anthropic_model(), observer=broken).invoke("hi")
    assert answer.content == f"[{CLAUDE}] you said: hi"


def test_fake_children_work_without_any_network() -> None:
    class Flaky(GenericFakeChatModel):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("no answer")

    flaky = Flaky(messages=iter([]))
    good = GenericFakeChatModel(messages=iter([AIMessage("from the fake")]))
    model = FailoverChatModel(models={"fake/flaky": flaky, "fake/good": good}, backoff=lambda n: 0)
    assert model.invoke("hi").content == "from the fake"


def test_without_handlers_children_keep_their_own_callbacks_and_rate_limiter(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    limiter = CountingLimiter()
    rec = Recorder()
    limited = failover(openai_model(rate_limiter=limiter))
    watched = failover(openai_model(OPENAI_2, callbacks=[rec]))
    assert limited.invoke("a").content == f"[{OPENAI}] you said: a"
    assert watched.invoke("b").content == f"[{OPENAI_2}] you said: b"
    assert limiter.acquired == 1
    assert [name for name, *_ in rec.starts] == [OPENAI_2]


def test_the_llm_cache_hits_for_the_failover_model(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    from langchain_core.caches import InMemoryCache
    from langchain_core.globals import get_llm_cache, set_llm_cache

    cache, previous = InMemoryCache(), get_llm_cache()
    set_llm_cache(cache)
    try:
        model = failover(openai_model())
        rec = Recorder()
        first = model.invoke("cached?", config={"callbacks": [rec]})
        second = model.invoke("cached?", config={"callbacks": [rec]})
    finally:
        set_llm_cache(previous)
    assert first.content == second.content
    assert provider_sim.calls(OPENAI) == 1, "the second answer came from the cache"
    assert len(cache._cache) <= 2, "one entry per prompt, not one per call"


def test_tokens_are_counted_by_the_first_model() -> None:
    from langchain_core.messages.utils import trim_messages

    def words(text: str) -> list[int]:
        return list(range(len(text.split())))

    primary = GenericFakeChatModel(messages=iter([]), custom_get_token_ids=words)
    model = FailoverChatModel(
        models={"fake/primary": primary, "fake/backup": GenericFakeChatModel(messages=iter([]))}
    )
    assert model.get_num_tokens("one two three") == 3
    history = [HumanMessage("one two three four"), AIMessage("five six"), HumanMessage("seven")]
    kept = trim_messages(history, max_tokens=9, token_counter=model, strategy="last")
    assert kept == history[1:]


def test_a_misspelt_option_is_refused_with_the_one_meant(openai_model: Make) -> None:
    with pytest.raises(TypeError, match="unexpected option 'cooldwn'; did you mean 'cooldown'"):
        FailoverChatModel(models=[openai_model()], cooldwn=5)
    with pytest.raises(TypeError, match="'max_retires'; did you mean 'max_retries'"):
        FailoverChatModel(models=[openai_model()], max_retires=7)
    model = FailoverChatModel(models=[openai_model()])
    with pytest.raises(TypeError, match="'modles'; did you mean 'models'"):
        model.model_copy(update={"modles": []})


def test_a_spec_string_for_models_points_to_from_specs() -> None:
    with pytest.raises(TypeError, match=r"list or a dict of LangChain chat models.*from_specs"):
        FailoverChatModel(models="openai:gpt-4o-mini")
