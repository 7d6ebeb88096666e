"""Sixteen provider faults, scored side by side: llm-failover (library defaults and a
documented production configuration), LangChain's ``with_fallbacks`` and LiteLLM's Router.

Every contender calls OpenAI-API models on the simulator with real SDK clients (the
LangChain ones through ``ChatOpenAI``, LiteLLM through its own OpenAI client); each
scenario gets its own model names, so all of them run at once. Scores:

* **pass**: the caller gets the complete answer (for a content filter: the provider's own
  error) and the provider saw well-behaved traffic (Retry-After honoured, no hammering,
  a 400 never resent unchanged, a silent route not retried, the primary back within 30 s
  of recovering);
* **partial**: a rescue with an advisory slip (its first output later than 15 s, or a
  content filter routed around);
* **safe**: a bounded, clean error;
* **fail**: a hang (no outcome within the cap), a truncated or garbled answer presented
  as a success, or misbehaviour toward the provider.

Run: ``python -m benchmarks.faults`` (about four minutes: the silent provider and the
minute-long outage run in real time).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI

from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel

from ._common import Table

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

CAP = 180.0  # seconds: a scenario with no outcome by then is a hang
SLIP = 15.0  # seconds to first output past which a rescue is "partial"
PROMPT = "tell me about failover"
PRODUCTION: dict[str, Any] = {
    "timeout": 30,  # a non-streamed answer, end to end
    "first_token_timeout": 10,
    "idle_timeout": 10,
    "hedge_after": 4,  # no output after 4 s: race the next healthy model
}
"""The production configuration of docs/guides/faults.md, plus ``resume_streams`` naming
the fallbacks that can continue a broken stream (set per chain below)."""


def full(model: str) -> str:
    return f"[{model}] you said: {PROMPT}"


# -- contenders: one call surface over each library ----------------------------------------


@dataclass
class Answer:
    text: str
    first: float  # seconds to first output (the whole answer when not streamed)
    model: str | None = None  # the serving model, as the answer tells it
    usage: bool = False


class Client:
    def invoke(self) -> Answer:
        raise NotImplementedError

    def stream(self) -> Answer:
        raise NotImplementedError


class LangChainClient(Client):
    def __init__(self, runnable: Any) -> None:
        self.runnable = runnable

    def invoke(self) -> Answer:
        started = time.monotonic()
        message: AIMessage = self.runnable.invoke(PROMPT)
        meta = message.response_metadata
        return Answer(
            str(message.content),
            time.monotonic() - started,
            meta.get("model_name"),
            bool(message.usage_metadata),
        )

    def stream(self) -> Answer:
        started, first, parts = time.monotonic(), None, []
        for chunk in self.runnable.stream(PROMPT):
            if chunk.content and first is None:
                first = time.monotonic() - started
            parts.append(str(chunk.content))
        return Answer("".join(parts), first if first is not None else time.monotonic() - started)


class LiteLLMClient(Client):
    def __init__(self, router: Any) -> None:
        self.router = router

    def _messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": PROMPT}]

    def invoke(self) -> Answer:
        started = time.monotonic()
        response = self.router.completion(model="m0", messages=self._messages())
        text = response.choices[0].message.content or ""
        return Answer(
            text,
            time.monotonic() - started,
            str(getattr(response, "model", "") or ""),
            bool(getattr(response, "usage", None)),
        )

    def stream(self) -> Answer:
        started, first, parts = time.monotonic(), None, []
        for chunk in self.router.completion(model="m0", messages=self._messages(), stream=True):
            piece = chunk.choices[0].delta.content if chunk.choices else None
            if piece:
                if first is None:
                    first = time.monotonic() - started
                parts.append(piece)
        return Answer("".join(parts), first if first is not None else time.monotonic() - started)


def _chat(sim: ProviderSimulator, name: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=name,
        base_url=sim.openai_base_url,
        api_key="sim",  # type: ignore[arg-type]
        stream_usage=True,
        **kwargs,
    )


def defaults(sim: ProviderSimulator, names: list[str]) -> Client:
    # The README's set-up: children that leave retrying to the failover model.
    return LangChainClient(FailoverChatModel(models=[_chat(sim, n, max_retries=0) for n in names]))


def production(sim: ProviderSimulator, names: list[str]) -> Client:
    keys = [f"openai/{n}" for n in names[1:]]  # the fallbacks continue prefills
    return LangChainClient(
        FailoverChatModel(
            models=[_chat(sim, n, max_retries=0) for n in names],
            resume_streams=keys,
            **PRODUCTION,
        )
    )


def with_fallbacks(sim: ProviderSimulator, names: list[str]) -> Client:
    primary, *rest = [_chat(sim, n) for n in names]  # ChatOpenAI's defaults
    return LangChainClient(primary.with_fallbacks(rest))


def litellm_router(sim: ProviderSimulator, names: list[str]) -> Client:
    import litellm
    from litellm import Router

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    params = {"api_base": sim.openai_base_url, "api_key": "sim"}
    model_list = [
        {"model_name": f"m{i}", "litellm_params": {"model": f"openai/{n}", **params}}
        for i, n in enumerate(names)
    ]
    fallbacks = [{"m0": [f"m{i}" for i in range(1, len(names))]}]
    return LiteLLMClient(Router(model_list=model_list, fallbacks=fallbacks))


CONTENDERS: dict[str, Callable[[ProviderSimulator, list[str]], Client]] = {
    "llm-failover, defaults": defaults,
    "llm-failover, production": production,
    "LangChain with_fallbacks": with_fallbacks,
    "LiteLLM Router": litellm_router,
}


# -- scenarios -----------------------------------------------------------------------------


@dataclass
class Outcome:
    score: str  # pass, partial, safe, fail
    note: str = ""


@dataclass
class Run:
    sim: ProviderSimulator
    names: list[str]
    client: Client

    @property
    def primary(self) -> str:
        return self.names[0]

    def calls(self, i: int = 0) -> int:
        return self.sim.calls(self.names[i])

    def times(self, i: int = 0) -> list[float]:
        return [r.at for r in self.sim.requests(self.names[i])]


def _complete(run: Run, answer: Answer, *, allowed: list[str] | None = None) -> bool:
    return answer.text in [full(n) for n in (allowed or run.names)]


def _judge_answer(run: Run, answer: Answer, *, stream: bool = False) -> Outcome:
    """A complete answer: pass, or partial when its first output came late; anything
    else presented as a success is a fail."""
    if not _complete(run, answer):
        return Outcome("fail", f"answer presented as complete: {answer.text[:40]!r}")
    if answer.first > SLIP:
        return Outcome("partial", f"first output after {answer.first:.0f} s")
    return Outcome("pass", f"{answer.first:.1f} s")


def _error(exc: BaseException) -> Outcome:
    return Outcome("safe", f"{type(exc).__name__}")


def s_429_retry_after(run: Run) -> Outcome:
    run.sim.fail(run.primary, 429, retry_after=2, times=1)
    answer = run.client.invoke()
    times = run.times()
    if len(times) > 1 and times[1] - times[0] < 1.9:
        return Outcome("fail", f"retried after {times[1] - times[0]:.2f} s, Retry-After 2 s")
    return _judge_answer(run, answer)


def s_429(run: Run) -> Outcome:
    run.sim.fail(run.primary, 429, times=1)
    answer = run.client.invoke()
    if run.calls() > 3:
        return Outcome("fail", f"{run.calls()} calls to a rate-limited model")
    return _judge_answer(run, answer)


def s_500_once(run: Run) -> Outcome:
    run.sim.fail(run.primary, 500, times=1)
    return _judge_answer(run, run.client.invoke())


def _sequential(run: Run, n: int) -> Outcome:
    worst = Outcome("pass")
    for _ in range(n):
        outcome = _judge_answer(run, run.client.invoke())
        if outcome.score != "pass":
            worst = outcome
    if run.calls() > 3 * n:
        return Outcome("fail", f"{run.calls()} calls to the primary for {n} requests")
    if worst.score == "pass":
        return Outcome("pass", f"{run.calls()} calls to the primary for {n} requests")
    return worst


def s_503_always(run: Run) -> Outcome:
    run.sim.fail(run.primary, 503, times=None)
    return _sequential(run, 5)


def s_reset(run: Run) -> Outcome:
    run.sim.fail(run.primary, reset=True, times=None)
    return _sequential(run, 3)


def s_silent(run: Run) -> Outcome:
    run.sim.hang(run.primary, 120, times=None)  # accepts, then nothing; closes at 120 s
    answer = run.client.invoke()
    if run.calls() > 1:
        return Outcome("fail", f"silent route called {run.calls()} times in one request")
    return _judge_answer(run, answer)


def s_slow_first_token(run: Run) -> Outcome:
    run.sim.stall_first_token(run.primary, 20, keepalive=1.0, times=None)
    return _judge_answer(run, run.client.stream(), stream=True)


def s_stream_cut(run: Run) -> Outcome:
    run.sim.fail(run.primary, after_chunks=2, disconnect=True, times=1)
    return _judge_answer(run, run.client.stream(), stream=True)


def s_stream_stall(run: Run) -> Outcome:
    run.sim.stall_after_chunks(run.primary, 2, 30, keepalive=1.0, times=1)
    return _judge_answer(run, run.client.stream(), stream=True)


def s_malformed(run: Run) -> Outcome:
    run.sim.fail(run.primary, malformed_after=2, times=1)
    return _judge_answer(run, run.client.stream(), stream=True)


def s_no_done(run: Run) -> Outcome:
    run.sim.fail(run.primary, no_done=True, times=1)
    return _judge_answer(run, run.client.stream(), stream=True)


def s_context_length(run: Run) -> Outcome:
    run.sim.fail(run.primary, 400, code="context_length_exceeded", times=None)
    answer = run.client.invoke()
    if run.calls() > 1:
        return Outcome("fail", f"the same 400 sent {run.calls()} times")
    return _judge_answer(run, answer)


def s_content_filter(run: Run) -> Outcome:
    run.sim.fail(
        run.primary,
        400,
        code="content_policy_violation",
        message="Your request was rejected as a result of our safety system.",
        times=None,
    )
    try:
        answer = run.client.invoke()
    except Exception as exc:
        text = f"{exc} {exc.__cause__}"
        if "content_policy_violation" in text or "safety system" in text:
            if run.calls(1) == 0 and run.calls() == 1:
                return Outcome("pass", "the provider's refusal, at once")
            return Outcome("fail", "the refusal resent")
        return _error(exc)
    if _complete(run, answer):
        return Outcome("partial", "routed around the filter")
    return Outcome("fail", "garbled answer")


def s_prefill_rejected(run: Run) -> Outcome:
    # The first fallback rejects an assistant prefill (400); the second continues one.
    run.sim.set_prefill(run.names[1], "reject")
    run.sim.fail(run.primary, after_chunks=2, disconnect=True, times=1)
    answer = run.client.stream()
    if run.sim.calls(run.names[1]) > 1:
        return Outcome("fail", "a rejected prefill resent")
    return _judge_answer(run, answer, stream=True)


def s_outage(run: Run) -> Outcome:
    run.sim.fail(run.primary, 503, times=None)
    start = time.monotonic()
    timer = threading.Timer(60, run.sim.clear, args=(run.primary,))
    timer.daemon = True
    timer.start()
    served: list[tuple[float, bool]] = []
    for n in range(20):
        wait = start + 4 * n - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        at = time.monotonic() - start
        answer = run.client.invoke()
        if not _complete(run, answer):
            return Outcome("fail", f"request {n}: {answer.text[:40]!r}")
        served.append((at, answer.text == full(run.primary)))
    windows: dict[int, int] = {}
    for t in run.times():
        if t - start < 60:
            windows[int((t - start) // 4)] = windows.get(int((t - start) // 4), 0) + 1
    if max(windows.values(), default=0) > 3:
        return Outcome("fail", f"{max(windows.values())} primary calls in one 4 s window")
    back = next((at for at, primary in served if primary and at >= 60), None)
    if back is None or back - 60 > 30:
        return Outcome("fail", "the recovered primary was not used again")
    return Outcome("pass", f"back {back - 60:.0f} s after recovery, {sum(windows.values())} calls")


def s_accounting(run: Run) -> Outcome:
    run.sim.fail(run.primary, 503, times=None)
    answer = run.client.invoke()
    outcome = _judge_answer(run, answer)
    if outcome.score != "pass":
        return outcome
    if not answer.model or run.names[1] not in answer.model or not answer.usage:
        return Outcome("partial", "the answer does not say who served it, or its usage")
    return Outcome("pass", f"served by {answer.model}, usage reported")


@dataclass
class Scenario:
    name: str
    run: Callable[[Run], Outcome]
    models: int = 2
    prefill: bool = True  # the fallbacks continue prefills (they can, on these servers)


SCENARIOS = [
    Scenario("429 with Retry-After", s_429_retry_after),
    Scenario("429 without Retry-After", s_429),
    Scenario("500 once", s_500_once),
    Scenario("503 always", s_503_always),
    Scenario("TCP reset before headers", s_reset),
    Scenario("no response (silent 120 s)", s_silent),
    Scenario("slow first token (20 s)", s_slow_first_token),
    Scenario("stream cut after 2 chunks", s_stream_cut),
    Scenario("stream stall (30 s)", s_stream_stall),
    Scenario("malformed chunk", s_malformed),
    Scenario("no [DONE]", s_no_done),
    Scenario("context length (400)", s_context_length),
    Scenario("content filter (400)", s_content_filter),
    Scenario("fallback rejects prefill", s_prefill_rejected, models=3),
    Scenario("primary down 60 s, then healthy", s_outage),
    Scenario("fail-over accounting", s_accounting),
]


# -- the run -----------------------------------------------------------------------------


@dataclass
class Cell:
    outcome: Outcome | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _play(
    sim: ProviderSimulator, scenario: Scenario, names: list[str], make: Any, cell: Cell
) -> None:
    try:
        if scenario.prefill:
            for name in names[1:]:
                sim.set_prefill(name, "continue")
        run = Run(sim, names, make(sim, names))
        try:
            cell.outcome = scenario.run(run)
        except Exception as exc:
            cell.outcome = _error(exc)
    except Exception as exc:  # the contender could not be built
        cell.outcome = Outcome("fail", f"set-up: {type(exc).__name__}: {exc}"[:80])
    finally:
        cell.done.set()


def run(only: list[str] | None = None) -> Table:
    """Every scenario for every contender, at once; a table of scores and a tally."""
    contenders = {k: v for k, v in CONTENDERS.items() if not only or k in only}
    try:
        import litellm  # noqa: F401
    except ImportError:
        contenders.pop("LiteLLM Router", None)
    cells: dict[tuple[str, str], Cell] = {}
    with ProviderSimulator() as sim:
        started = time.monotonic()
        for s, scenario in enumerate(SCENARIOS):
            for c, (label, make) in enumerate(contenders.items()):
                names = [f"s{s}c{c}m{i}" for i in range(scenario.models)]
                cell = cells[(scenario.name, label)] = Cell()
                threading.Thread(
                    target=_play, args=(sim, scenario, names, make, cell), daemon=True
                ).start()
        for cell in cells.values():
            cell.done.wait(max(0.0, started + CAP + 100 - time.monotonic()))
        elapsed = time.monotonic() - started
    table = Table(
        "Sixteen provider faults (pass / partial / safe / fail)",
        ["scenario", *contenders],
    )
    tally = {label: {"pass": 0, "partial": 0, "safe": 0, "fail": 0} for label in contenders}
    for scenario in SCENARIOS:
        row = [scenario.name]
        for label in contenders:
            outcome = cells[(scenario.name, label)].outcome or Outcome(
                "fail", f"no outcome in {CAP:.0f} s"
            )
            tally[label][outcome.score] += 1
            row.append(f"{outcome.score}: {outcome.note}" if outcome.note else outcome.score)
        table.rows.append(row)
    table.rows.append(
        ["**total (pass/partial/safe/fail)**"]
        + ["**{pass}/{partial}/{safe}/{fail}**".format(**tally[label]) for label in contenders]
    )
    table.notes += [
        f"All {len(SCENARIOS) * len(contenders)} runs at once on the simulator, in "
        f"{elapsed:.0f} s; OpenAI-API models; a run with no outcome in {CAP:.0f} s is a hang.",
        "llm-failover defaults: `FailoverChatModel(models=[ChatOpenAI(..., max_retries=0), ...])`"
        " and nothing else. Production: `"
        + ", ".join(f"{k}={v!r}" for k, v in PRODUCTION.items())
        + ", resume_streams=[the fallbacks]` (docs/guides/faults.md).",
        "Peers with their defaults: `ChatOpenAI(...).with_fallbacks([...])` (the SDK's 2 "
        "retries) and `Router(model_list, fallbacks=...)`.",
        "The fallbacks are servers that continue an assistant prefill (vLLM-style); in "
        "'fallback rejects prefill' the first of two fallbacks answers such a request 400.",
    ]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="a contender's label (repeatable)")
    args = parser.parse_args()
    logging.getLogger("llm_failover").setLevel(logging.ERROR)
    logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
    logging.getLogger("LiteLLM Router").setLevel(logging.CRITICAL)
    print(run(args.only).markdown())


if __name__ == "__main__":
    main()
