"""Hedged requests with real ChatOpenAI/ChatAnthropic children over the simulator."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from tests.langchain.conftest import CLAUDE, OPENAI, OPENAI_2, ask

Make = Callable[..., Any]
HEDGE = 0.2  # seconds without output before the hedge starts
SLOW = 3.0  # the slow primary's stall; nothing waits it out
SLACK = 0.35  # the fallback's own answer plus scheduling on a busy machine

PATHS = ["invoke", "ainvoke", "stream", "astream"]


async def _disconnected(sim: ProviderSimulator, model: str) -> int:
    for _ in range(50):
        if sim.disconnects(model):
            break
        await asyncio.sleep(0.02)
    return sim.disconnects(model)


@pytest.mark.parametrize("path", PATHS)
async def test_a_slow_primary_is_hedged_and_the_answer_says_so(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    provider_sim.stall_first_token(OPENAI, SLOW, keepalive=0.05)
    seen: list[fc.FailoverEvent] = []
    model = failover(openai_model(), anthropic_model(), hedge_after=HEDGE, observer=seen.append)
    started = time.perf_counter()
    answer = await ask(model, path)
    assert HEDGE <= time.perf_counter() - started < HEDGE + SLACK
    assert answer.content == f"[{CLAUDE}] you said: hello"
    assert answer.response_metadata["failover"] == {
        "model": f"anthropic/{CLAUDE}",
        "failed_attempts": 0,
        "hedged": True,
    }
    assert [(e.reason, e.model, e.next_model) for e in seen] == [
        ("hedge_started", f"openai/{OPENAI}", f"anthropic/{CLAUDE}"),
        ("hedge_won", f"openai/{OPENAI}", f"anthropic/{CLAUDE}"),
    ]
    assert (provider_sim.calls(OPENAI), provider_sim.calls(CLAUDE)) == (1, 1)
    assert fc.list_benched() == []  # slower is not dead
    if path.startswith("a"):  # cancelled: the provider sees the client leave at once
        assert await _disconnected(provider_sim, OPENAI) == 1


@pytest.mark.parametrize("path", PATHS)
async def test_a_fast_primary_is_never_hedged(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    path: str,
) -> None:
    model = failover(openai_model(), anthropic_model(), hedge_after=HEDGE)
    answer = await ask(model, path)
    assert answer.response_metadata["failover"] == {
        "model": f"openai/{OPENAI}",
        "failed_attempts": 0,
    }
    assert provider_sim.calls(CLAUDE) == 0


async def test_adaptive_hedging_learns_the_primarys_latency_then_cuts_its_tail(
    provider_sim: ProviderSimulator, openai_model: Make, anthropic_model: Make, failover: Make
) -> None:
    adaptive = fc.AdaptiveHedge(95, floor=0.05, min_samples=10)
    model = failover(openai_model(), anthropic_model(), hedge_after=adaptive)
    provider_sim.set_latency(OPENAI, 0.01)
    for _ in range(10):  # cold: no hedge while the tracker learns
        await model.ainvoke("hello")
    assert provider_sim.calls(CLAUDE) == 0
    provider_sim.stall_first_token(OPENAI, SLOW)
    started = time.perf_counter()
    answer = await model.ainvoke("hello")
    assert time.perf_counter() - started < 0.05 + SLACK  # the floor, not the 3 s stall
    assert answer.response_metadata["failover"]["hedged"] is True


class _Tracer(BaseTracer):
    """A tracer built as LangSmith's is: every run it started, and the order runs ended in."""

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[UUID, Run] = {}
        self.ended: list[UUID] = []

    def _persist_run(self, run: Run) -> None:
        return None

    def _on_run_create(self, run: Run) -> None:
        self.started[run.id] = run

    def _on_run_update(self, run: Run) -> None:
        self.ended.append(run.id)

    def router(self) -> Run:
        [run] = [r for r in self.started.values() if r.run_type == "chain"]
        return run

    def attempts(self) -> dict[str, Run]:
        """The model runs by model class; each attempt is one run."""
        runs = [r for r in self.started.values() if r.run_type == "llm"]
        assert len(runs) == len({r.name for r in runs})
        return {r.name: r for r in runs}

    async def all_ended(self, within: float = 3.0) -> bool:
        for _ in range(int(within / 0.02)):
            if len(self.ended) >= len(self.started):
                break
            await asyncio.sleep(0.02)
        assert len(self.ended) == len(set(self.ended)), "a run ended twice"
        return set(self.ended) == set(self.started)


def _tracer_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What LangChain logged about its handlers (a tracer's 'No indexed run ID' among it)."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("langchain_core")]


@pytest.mark.parametrize("path", ["ainvoke", "astream"])
async def test_the_cancelled_losers_run_ends_as_an_error_before_the_failover_run_ends(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    provider_sim.stall_first_token(OPENAI, SLOW, keepalive=0.05)
    tracer, usage = _Tracer(), UsageMetadataCallbackHandler()
    model = failover(openai_model(), anthropic_model(), hedge_after=HEDGE)
    await ask(model, path, config={"callbacks": [tracer, usage]})
    router, runs = tracer.router(), tracer.attempts()
    loser, winner = runs["ChatOpenAI"], runs["ChatAnthropic"]
    assert sorted(tracer.ended) == sorted(tracer.started), "every run started has ended, once"
    assert tracer.ended[-1] == router.id  # the attempts first, as a tree is closed
    assert loser.parent_run_id == winner.parent_run_id == router.id
    assert (loser.error or "").startswith(
        f"CancelledError('lost a hedged race to anthropic/{CLAUDE}')"
    )
    assert winner.error is None and router.error is None
    assert list(usage.usage_metadata) == [CLAUDE]  # the loser had reported no usage
    assert _tracer_warnings(caplog) == []


@pytest.mark.parametrize("why", ["deadline", "caller"])
async def test_an_attempt_cancelled_inside_ainvoke_ends_its_run_as_an_error(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    caplog: pytest.LogCaptureFixture,
    why: str,
) -> None:
    provider_sim.stall_first_token(OPENAI, SLOW, keepalive=0.05)
    tracer = _Tracer()
    config: Any = {"callbacks": [tracer]}
    if why == "deadline":
        model = failover(openai_model(), anthropic_model(), timeout=HEDGE, max_retries=1)
        await model.ainvoke("hello", config)
    else:
        model = failover(openai_model(), anthropic_model())
        task = asyncio.ensure_future(model.ainvoke("hello", config))
        await asyncio.sleep(HEDGE)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    router, cancelled = tracer.router(), tracer.attempts()["ChatOpenAI"]
    assert sorted(tracer.ended) == sorted(tracer.started)
    assert tracer.ended[-1] == router.id
    assert cancelled.parent_run_id == router.id
    assert (cancelled.error or "").startswith("CancelledError(")
    assert (router.error is None) == (why == "deadline")
    assert _tracer_warnings(caplog) == []


class _Late(BaseCallbackHandler):
    """Every callback a model run gets, by run id, in order (tokens included)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, UUID]] = []

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        self.seen.append(("token", run_id))

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.seen.append(("end", run_id))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.seen.append(("error", run_id))


@pytest.mark.parametrize("path", ["invoke", "stream"])
@pytest.mark.parametrize("why", ["hedge", "deadline"])
async def test_an_abandoned_sync_attempt_ends_its_run_at_once_and_is_silent_after(
    provider_sim: ProviderSimulator,
    openai_model: Make,
    anthropic_model: Make,
    failover: Make,
    caplog: pytest.LogCaptureFixture,
    path: str,
    why: str,
) -> None:
    provider_sim.stall_first_token(OPENAI, 1.2, keepalive=0.05)  # then it answers, late
    tracer, usage, late = _Tracer(), UsageMetadataCallbackHandler(), _Late()
    if why == "hedge":
        model = failover(openai_model(), anthropic_model(), hedge_after=HEDGE)
    elif path == "invoke":
        model = failover(openai_model(), anthropic_model(), timeout=0.5, max_retries=1)
    else:
        model = failover(openai_model(), anthropic_model(), first_token_timeout=0.5, max_retries=1)
    await ask(model, path, config={"callbacks": [tracer, usage, late]})
    loser = tracer.attempts()["ChatOpenAI"]
    assert sorted(tracer.ended) == sorted(tracer.started), "ended when the call returned"
    assert tracer.ended[-1] == tracer.router().id
    assert loser.parent_run_id == tracer.router().id
    if why == "hedge":
        assert (loser.error or "").startswith(
            f"CancelledError('lost a hedged race to anthropic/{CLAUDE}')"
        )
    else:  # abandoned on its worker, or cut in place by its transport (drivers/bounded.py)
        assert re.search(r"passed its (first_token_)?timeout of 0\.5s", loser.error or "")
    heard = list(late.seen)
    await asyncio.sleep(1.2)  # the abandoned call finishes on its worker: nobody hears
    assert late.seen == heard
    its = [kind for kind, run in heard if run == loser.id]
    assert its[-1:] == ["error"] and set(its[:-1]) <= {"token"}, "a role header at most"
    assert list(usage.usage_metadata) == [CLAUDE], "the late answer is not counted"
    assert provider_sim.calls(OPENAI) == 1
    assert _tracer_warnings(caplog) == []


def test_hedge_after_is_an_option_of_the_model_and_of_from_specs() -> None:
    built = FailoverChatModel.from_specs(
        ["openai:gpt-4o-mini", "anthropic:claude-haiku"], hedge_after="p99", api_key="sk-x"
    )
    assert built.failover_chain.policy.hedge_after == fc.AdaptiveHedge(99.0)
    with pytest.raises(ValueError, match="hedge_after"):
        FailoverChatModel.from_specs(["openai:gpt-4o-mini"], hedge_after=-1, api_key="sk-x")


async def test_a_hedge_never_queues_behind_its_racer_for_a_shared_full_pool(
    provider_sim: ProviderSimulator, openai_model: Make
) -> None:
    """Both children on one HTTP client whose every connection the slow attempts hold:
    the hedges still reach the provider and win (issue 24, item 10)."""
    import httpx

    from failover_core.flow import hedging as _hedge

    _hedge.set_hedging(_hedge.Hedging(_hedge.LatencyTracker(), fc.HedgeBudget(share=1.0, burst=10)))
    provider_sim.hang(OPENAI, 30.0, times=None)  # the hedges must not wait this out
    shared = httpx.AsyncClient(limits=httpx.Limits(max_connections=2))
    model = FailoverChatModel(
        models=[
            openai_model(http_async_client=shared),
            openai_model(OPENAI_2, http_async_client=shared),
        ],
        hedge_after=0.05,
    )
    asked = asyncio.gather(*(model.ainvoke("hello") for _ in range(3)))
    answers = await asyncio.wait_for(asked, 15)
    assert [a.response_metadata["failover"]["model"] for a in answers] == [f"openai/{OPENAI_2}"] * 3
    assert provider_sim.calls(OPENAI_2) == 3
    await shared.aclose()
