"""Every model call is reported once: the failover model is a router in traces.

Its own run is a chain run; each attempt is the child's own chat-model run under it. These
tests attach what users attach (usage counters, a tracer built on ``BaseTracer``,
``astream_events``, LangGraph's stream modes) and count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import UsageMetadataCallbackHandler, get_usage_metadata_callback
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run
from pydantic import BaseModel

from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from tests.langchain.conftest import CLAUDE, OPENAI, CountingLimiter, ask

Make = Callable[..., Any]


class RunTree(BaseTracer):
    """A tracer that keeps every finished root run with its tree of child runs."""

    def __init__(self) -> None:
        super().__init__()
        self.roots: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        self.roots.append(run)

    def runs(self) -> Iterator[Run]:
        stack = list(self.roots)
        while stack:
            run = stack.pop()
            yield run
            stack.extend(run.child_runs)

    def model_runs(self) -> list[Run]:
        return sorted(
            (r for r in self.runs() if r.run_type == "llm"), key=lambda r: r.dotted_order or ""
        )

    def failover_runs(self) -> list[Run]:
        return [r for r in self.runs() if r.name == "FailoverChatModel"]


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"sunny in {city}"


class Weather(BaseModel):
    """The weather in a city."""

    city: str


PATHS = ["invoke", "ainvoke", "stream", "astream", "batch", "abatch"]


def _usage(handler: UsageMetadataCallbackHandler) -> dict[str, tuple[int, int]]:
    return {
        name: (usage["input_tokens"], usage["output_tokens"])
        for name, usage in handler.usage_metadata.items()
    }


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("outage", [False, True], ids=["healthy", "failover"])
async def test_usage_is_counted_once_as_if_the_serving_model_were_called_directly(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
    outage: bool,
) -> None:
    if outage:
        provider_sim.fail(OPENAI, 401, times=None)
    serving = anthropic_model() if outage else openai_model()
    direct = UsageMetadataCallbackHandler()
    await ask(serving, path, "count my tokens", {"callbacks": [direct]})

    through = UsageMetadataCallbackHandler()
    model = failover(openai_model(), anthropic_model())
    await ask(model, path, "count my tokens", {"callbacks": [through]})
    assert _usage(through) == _usage(direct)
    assert sum(n for pair in _usage(through).values() for n in pair) > 0


def test_usage_context_manager_counts_an_agent_run_once(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    from langchain.agents import create_agent

    question = {"messages": [HumanMessage("weather in 'Paris'?")]}
    with get_usage_metadata_callback() as direct:
        create_agent(anthropic_model(), tools=[get_weather]).invoke(question)
    provider_sim.fail(OPENAI, 503, times=None)
    agent = create_agent(failover(openai_model(), anthropic_model()), tools=[get_weather])
    with get_usage_metadata_callback() as usage:
        agent.invoke(question)
    # Two model calls each (the tool call, then the answer), all served by Claude.
    assert provider_sim.calls(CLAUDE) == 4
    assert usage.usage_metadata == direct.usage_metadata
    assert list(usage.usage_metadata) == [CLAUDE]


@pytest.mark.parametrize("outage", [False, True], ids=["healthy", "failover"])
@pytest.mark.parametrize("bound", ["plain", "tools", "structured"])
async def test_astream_events_carry_each_token_once(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    outage: bool,
    bound: str,
) -> None:
    if outage:
        provider_sim.fail(OPENAI, 503, times=None)
    model = failover(openai_model(), anthropic_model())
    runnable: Any = {
        "plain": model,
        "tools": model.bind_tools([get_weather]),
        "structured": model.with_structured_output(Weather),
    }[bound]
    text: list[str] = []
    tool_args: list[str] = []
    ends, outputs = 0, []
    async for event in runnable.astream_events("weather in 'Oslo'", version="v2"):
        if event["event"] == "on_chat_model_stream":
            chunk = event["data"]["chunk"]
            text.append(chunk.text)
            tool_args += [c.get("args") or "" for c in chunk.tool_call_chunks]
        elif event["event"] == "on_chat_model_end":
            ends += 1
            outputs.append(event["data"]["output"])
    assert ends == 1, "one model run ended: the serving child's"
    [answer] = outputs
    assert "".join(text) == answer.text
    if bound == "plain":
        assert answer.text == f"[{CLAUDE if outage else OPENAI}] you said: weather in 'Oslo'"
    elif bound == "tools":
        assert "Oslo" in "".join(tool_args), "tool-call arguments streamed once"
    else:  # each child's own structured output: OpenAI's JSON schema, Claude's tool call
        assert "Oslo" in "".join(text + tool_args), "the structured answer streamed once"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", ["plain", "lcel_tools", "structured"])
async def test_every_attempt_nests_under_one_failover_chain_run(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
    shape: str,
) -> None:
    provider_sim.fail(OPENAI, 503, times=2)  # two errored attempts, then the primary answers
    model = failover(openai_model(), anthropic_model())
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    runnable: Any = {
        "plain": model,
        "lcel_tools": prompt | model.bind_tools([get_weather]),
        "structured": model.with_structured_output(Weather),
    }[shape]
    tracer = RunTree()
    text = "weather in 'Rome'"
    await ask(
        runnable, path, {"q": text} if shape == "lcel_tools" else text, {"callbacks": [tracer]}
    )

    assert len(tracer.roots) == 1, "one trace per call"
    [router] = tracer.failover_runs()
    assert router.run_type == "chain"
    attempts = tracer.model_runs()
    assert [r.parent_run_id for r in attempts] == [router.id] * 3
    assert [r.error is not None for r in attempts] == [True, True, False]
    assert [r.extra["metadata"]["ls_model_name"] for r in attempts] == [OPENAI] * 3
    assert provider_sim.calls(OPENAI) == 3


def test_an_agent_traces_each_model_call_once_under_its_failover_run(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    from langchain.agents import create_agent

    provider_sim.fail(OPENAI, 401, times=None)
    agent = create_agent(failover(openai_model(), anthropic_model()), tools=[get_weather])
    tracer = RunTree()
    agent.invoke({"messages": [HumanMessage("weather in 'Lima'?")]}, {"callbacks": [tracer]})
    assert len(tracer.roots) == 1
    routers = {r.id for r in tracer.failover_runs()}
    attempts = tracer.model_runs()
    assert len(routers) == 2, "two model steps"
    assert all(r.parent_run_id in routers for r in attempts)
    assert [r.extra["metadata"]["ls_model_name"] for r in attempts if r.error is None] == [
        CLAUDE,
        CLAUDE,
    ]
    assert provider_sim.calls(OPENAI) == 1, "benched after its 401"


@pytest.mark.parametrize("maker", ["create_agent", "create_react_agent"])
def test_langgraph_messages_mode_streams_each_token_once(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    maker: str,
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    model = failover(openai_model(), anthropic_model())
    if maker == "create_agent":
        from langchain.agents import create_agent

        agent: Any = create_agent(model, tools=[get_weather])
    else:
        from langgraph.prebuilt import create_react_agent

        agent = create_react_agent(model, tools=[get_weather])
    question = {"messages": [HumanMessage("weather in 'Kyiv'?")]}
    final = agent.invoke(question)["messages"][-1].text
    provider_sim.reset()
    provider_sim.fail(OPENAI, 503, times=None)
    tokens: list[str] = []
    updates: list[str] = []
    for mode, data in agent.stream(question, stream_mode=["messages", "updates"]):
        if mode == "messages":
            chunk, _meta = data
            if isinstance(chunk, AIMessageChunk) and not chunk.tool_call_chunks:
                tokens.append(chunk.text)
        else:
            for update in data.values():
                updates += [m.text for m in (update or {}).get("messages", []) if m.type == "ai"]
    assert "".join(tokens) == final
    assert updates.count(final) == 1


def test_the_childs_message_and_cache_entry_are_left_alone(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    from langchain_core.caches import InMemoryCache

    cache = InMemoryCache()
    child = openai_model(cache=cache)
    first = failover(child).invoke("hello")
    second = failover(child).invoke("hello")
    assert first.response_metadata["failover"]["model"] == f"openai/{OPENAI}"
    assert second.response_metadata["failover"]["failed_attempts"] == 0
    assert provider_sim.calls(OPENAI) == 1, "the child's cache answered the second call"
    [cached] = cache._cache.values()
    assert "failover" not in cached[0].message.response_metadata
    assert child.callbacks is None


def test_handlers_on_the_failover_model_see_child_usage_and_the_child_stays_clean(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    counter = UsageMetadataCallbackHandler()
    child = openai_model()
    model = failover(child, callbacks=[counter], tags=["mine"])
    model.invoke("hi")
    assert counter.usage_metadata[OPENAI]["total_tokens"] > 0
    before = dict(counter.usage_metadata)
    child.invoke("used elsewhere")
    assert counter.usage_metadata == before, "the child does not report to our handlers"


def test_run_name_tags_and_metadata_reach_the_trace(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    tracer = RunTree()
    model = failover(openai_model(), tags=["router-tag"], metadata={"team": "a"})
    model.invoke("hi", {"callbacks": [tracer], "run_name": "my-router", "tags": ["call"]})
    [root] = tracer.roots
    assert root.name == "my-router" and root.run_type == "chain"
    assert {"router-tag", "call"} <= set(root.tags or [])
    [attempt] = tracer.model_runs()
    assert {"router-tag", "call"} <= set(attempt.tags or [])
    assert attempt.extra["metadata"]["team"] == "a"


def test_a_rate_limiter_and_disable_streaming_on_the_failover_model_apply(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    limiter = CountingLimiter()
    model = failover(openai_model(), rate_limiter=limiter, disable_streaming=True)
    chunks = list(model.stream("hi"))
    assert len(chunks) == 1 and chunks[0].text == f"[{OPENAI}] you said: hi"
    assert not provider_sim.requests(OPENAI)[0].stream
    model.invoke("again")
    assert limiter.acquired == 2


def test_a_cache_set_on_the_failover_model_answers_without_any_child(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make
) -> None:
    from langchain_core.caches import InMemoryCache

    model = failover(openai_model(), cache=InMemoryCache())
    first = model.invoke("same question")
    second = model.invoke("same question")
    assert first.text == second.text
    assert provider_sim.calls(OPENAI) == 1


# -- configuration stays true ------------------------------------------------------------


def test_assigning_a_field_rebuilds_the_chain(
    openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    model = failover(openai_model(), anthropic_model())
    model.max_retries = 1
    assert model.failover_chain.policy.max_retries == 1
    assert model._identifying_params["max_retries"] == 1
    model.models = [anthropic_model()]
    assert model.keys == (f"anthropic/{CLAUDE}",)
    assert model._identifying_params["models"] == [f"anthropic/{CLAUDE}"]
    with pytest.raises(ValueError, match="negative"):
        model.cooldown = -5
    assert model.cooldown is None, "a refused value leaves the model as it was"


def test_model_copy_with_an_update_rebuilds_the_copy_only(
    openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    model = failover(openai_model())
    copy = model.model_copy(update={"models": [anthropic_model()], "max_retries": 5})
    assert copy.keys == (f"anthropic/{CLAUDE}",)
    assert copy.failover_chain.policy.max_retries == 5
    assert model.keys == (f"openai/{OPENAI}",)


# -- profile -----------------------------------------------------------------------------


def test_profile_is_the_common_ground_of_the_children(provider_sim: ProviderSimulator) -> None:
    from langchain.agents.middleware import SummarizationMiddleware
    from langchain_anthropic import ChatAnthropic
    from langchain_openai import ChatOpenAI

    gpt = ChatOpenAI(model="gpt-4o-mini", api_key="x", max_retries=0)
    claude = ChatAnthropic(model="claude-haiku-4-5", api_key="x", max_retries=0)  # type: ignore[call-arg]
    assert gpt.profile and claude.profile
    model = FailoverChatModel(models=[gpt, claude])
    assert model.profile is not None
    assert model.profile["max_input_tokens"] == min(
        gpt.profile["max_input_tokens"], claude.profile["max_input_tokens"]
    )
    assert model.profile["tool_calling"] is True
    assert model.profile["reasoning_output"] is False, "only Claude reasons"
    SummarizationMiddleware(model=model, trigger=("fraction", 0.8))
    custom = FailoverChatModel(models=[gpt], profile={"max_input_tokens": 1000})
    assert custom.profile == {"max_input_tokens": 1000}


# -- LangSmith, turned on by environment variable ----------------------------------------


class LangSmithRuns:
    """What the real LangChainTracer sent: each run posted (name, trace, parent) and each
    run patched at its end (name, error)."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, Any, Any]] = []
        self.patched: list[tuple[str, str | None]] = []
        self.sent: list[dict[str, Any]] = []  # each run as its end sent it (events, extra)


@pytest.fixture
def langsmith(monkeypatch: pytest.MonkeyPatch) -> LangSmithRuns:
    """The real LangChainTracer, configured from the environment; only its transport (the
    run tree's post/patch) records instead of sending."""
    from langsmith import utils as ls_utils
    from langsmith.run_trees import RunTree as LangSmithRun

    runs = LangSmithRuns()

    def post(self: LangSmithRun, exclude_child_runs: bool = True) -> None:
        runs.posted.append((self.name, self.trace_id, self.parent_run_id))

    def patch(self: LangSmithRun, *, exclude_inputs: bool = False) -> None:
        runs.patched.append((self.name, self.error))
        runs.sent.append(self._get_dicts_safe())

    monkeypatch.setattr(LangSmithRun, "post", post)
    monkeypatch.setattr(LangSmithRun, "patch", patch)
    for name, value in {
        "LANGSMITH_TRACING": "true",
        "LANGSMITH_API_KEY": "lsv2-test",
        "LANGSMITH_ENDPOINT": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    ls_utils.get_env_var.cache_clear()  # langsmith caches what it read of the environment
    return runs


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "astream"])
async def test_langsmith_by_env_var_makes_one_trace_per_call_without_tracer_errors(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
    langsmith: LangSmithRuns,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider_sim.fail(OPENAI, 503, times=1)  # a retry: on_retry reaches the tracer too
    model = failover(openai_model(), anthropic_model())
    with caplog.at_level("WARNING"):
        await ask(model, path, "traced", {})
    from langchain_core.tracers.langchain import wait_for_all_tracers

    wait_for_all_tracers()
    assert [name for name, *_ in langsmith.posted] == [
        "FailoverChatModel",
        "ChatOpenAI",
        "ChatOpenAI",
    ]
    assert len({trace for _, trace, _ in langsmith.posted}) == 1, "one trace"
    errors = [r.getMessage() for r in caplog.records if "Error in" in r.getMessage()]
    assert errors == []


@pytest.mark.parametrize("path", ["ainvoke", "astream"])
async def test_langsmith_gets_the_end_of_a_hedges_cancelled_loser_before_the_failover_run(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
    langsmith: LangSmithRuns,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider_sim.stall_first_token(OPENAI, 3.0, keepalive=0.05)
    model = failover(openai_model(), anthropic_model(), hedge_after=0.2)
    with caplog.at_level("WARNING"):
        await ask(model, path, "traced", {})
    from langchain_core.tracers.langchain import wait_for_all_tracers

    wait_for_all_tracers()
    assert sorted(name for name, *_ in langsmith.posted) == [
        "ChatAnthropic",
        "ChatOpenAI",
        "FailoverChatModel",
    ]
    ended = {name: error for name, error in langsmith.patched}
    assert len(langsmith.patched) == len(ended) == 3, "each run ends once"
    assert langsmith.patched[-1] == ("FailoverChatModel", None)
    assert (ended["ChatOpenAI"] or "").startswith(
        f"CancelledError('lost a hedged race to anthropic/{CLAUDE}')"
    )
    assert ended["ChatAnthropic"] is None
    errors = [r.getMessage() for r in caplog.records if "Error in" in r.getMessage()]
    assert errors == []


@pytest.fixture(autouse=True)
def _langsmith_env_cache() -> Iterator[None]:
    """Tests here change LangSmith's environment; its cached reading must not leak."""
    from langsmith import utils as ls_utils

    yield
    ls_utils.get_env_var.cache_clear()


@pytest.mark.parametrize("path", ["invoke", "stream"])
async def test_get_openai_callback_counts_one_request_and_its_cost(
    provider_sim: ProviderSimulator, openai_model: Make, failover: Make, path: str
) -> None:
    community = pytest.importorskip("langchain_community.callbacks")
    with community.get_openai_callback() as direct:
        await ask(openai_model(), path, "what does it cost", {})
    with community.get_openai_callback() as through:
        await ask(failover(openai_model()), path, "what does it cost", {})
    assert direct.successful_requests == through.successful_requests == 1
    assert (through.total_tokens, through.total_cost) == (direct.total_tokens, direct.total_cost)
    assert through.total_cost > 0


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "astream"])
async def test_langsmith_shows_each_decision_on_the_failover_run(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
    langsmith: LangSmithRuns,
) -> None:
    provider_sim.fail(OPENAI, 503, times=None)
    model = failover(openai_model(), anthropic_model(), max_retries=2)
    await ask(model, path, "traced", {})
    from langchain_core.tracers.langchain import wait_for_all_tracers

    wait_for_all_tracers()
    [router] = [run for run in langsmith.sent if run["name"] == "FailoverChatModel"]
    decisions = [e["kwargs"] for e in router["events"] if e["name"] == "failover"]
    assert [(d["reason"], d["model"], d["next_model"]) for d in decisions] == [
        ("exhausted", f"openai/{OPENAI}", f"anthropic/{CLAUDE}")
    ]
    assert decisions[0]["benched"] is True and "503" in decisions[0]["error"]
    assert [e["name"] for e in router["events"]].count("retry") == 1
    assert router["extra"]["metadata"]["failover_decisions"] == ["exhausted"]


async def test_the_custom_event_says_why_a_hedge_and_a_503_differ(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    provider_sim.stall_first_token(OPENAI, 3.0, keepalive=0.05)
    model = failover(openai_model(), anthropic_model(), hedge_after=0.2)
    reasons = [
        event["data"]["reason"]
        async for event in model.astream_events("hello", version="v2")
        if event["event"] == "on_custom_event" and event["name"] == "failover"
    ]
    assert reasons == ["hedge_started", "hedge_won"]
    provider_sim.reset()
    provider_sim.fail(OPENAI, 401)
    reasons = [
        event["data"]["reason"]
        async for event in model.astream_events("hello", version="v2")
        if event["event"] == "on_custom_event"
    ]
    assert reasons == ["auth_dead"]
