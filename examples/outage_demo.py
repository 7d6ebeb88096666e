"""The offline demo: a scripted incident through a LangChain chain and a LlamaIndex engine.

Requests alternate between a LangChain LCEL chain and a LlamaIndex query engine, each over
a failover model, while the bundled provider simulator plays an incident phase by phase
(see PHASES). Both frameworks share one health registry, so a model benched by a LangChain
request is skipped by the next LlamaIndex query too. Real SDK clients talk HTTP to
127.0.0.1: no API key, no network.

The health registry runs on a demo clock that advances a fixed step per request, so the
story (who serves, what is benched and for how long) is the same on any machine; the
pace only decides how fast a person sees it.

    python examples/outage_demo.py              # live display in a terminal, a log otherwise
    python examples/outage_demo.py --pace 0     # as fast as it goes (the same story)
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from failover_core import FailoverEvent
    from failover_core.simulator import ProviderSimulator

PRIMARY, BACKUP, LAST = "gpt-4o-mini", "claude-haiku-4-5", "gpt-4.1-nano"
MODELS = (PRIMARY, BACKUP, LAST)
KEYS = {"openai/" + PRIMARY: PRIMARY, "anthropic/" + BACKUP: BACKUP, "openai/" + LAST: LAST}
CHAINS = {"LangChain": (PRIMARY, BACKUP, LAST), "LlamaIndex": (PRIMARY, BACKUP, LAST)}
COOLDOWN = 8.0  # demo seconds a failed model's first bench lasts (it doubles on a failed probe)
DEADLINE = 1.0  # real seconds an attempt may take (to its first token, streaming)
STEP = 0.6  # demo seconds per request; --pace sets the real seconds
LONG_PROMPT = "summarise this contract: " + "clause " * 400


@dataclass(frozen=True)
class Phase:
    """One step of the incident: what breaks (``start``), and what to watch for."""

    title: str
    watch: str
    requests: int
    start: Callable[[ProviderSimulator], object] = lambda sim: None
    prompt: str | None = None  # the phase's first request asks this instead


PHASES: Sequence[Phase] = (
    Phase("all providers healthy", f"{PRIMARY}, first in both chains, serves everything", 6),
    Phase(
        f"{PRIMARY}: a burst of 429 rate limits",
        "retried after a backoff: the same model serves, nothing is benched",
        6,
        lambda sim: sim.fail(PRIMARY, 429, times=2),
    ),
    Phase(
        "an over-long prompt (400 context_length_exceeded)",
        "the next model answers it; a bad request benches nobody",
        4,
        lambda sim: sim.fail(PRIMARY, 400, code="context_length_exceeded", times=1),
        prompt=LONG_PROMPT,
    ),
    Phase(
        f"{PRIMARY} is down: 503 on every call",
        "3 tries, then benched: every request skips it, in both frameworks",
        8,
        lambda sim: sim.fail(PRIMARY, 503, times=None),
    ),
    Phase(
        f"{BACKUP}'s key is revoked (401); {PRIMARY} is fixed",
        f"a 401 benches at once; one probe (◆) brings {PRIMARY} back",
        10,
        lambda sim: (sim.clear(PRIMARY), sim.fail(BACKUP, 401, times=None)),
    ),
    Phase(
        f"{PRIMARY} hangs: it takes requests and never answers",
        f"each try cut at {DEADLINE:.0f} s, the next model answers; 3 timeouts bench it",
        6,
        lambda sim: (sim.clear(PRIMARY), sim.hang(PRIMARY, 10, times=None)),
    ),
    Phase(
        "all providers healthy again",
        f"{PRIMARY} back after its bench and a probe; the outage stays drawn",
        16,
        lambda sim: sim.clear(),
    ),
)


@dataclass
class Request:
    """One request as the display shows it."""

    n: int
    phase: int
    framework: str
    served: str
    failed: Counter[str]  # failed calls per model, counted by the simulator
    skipped: frozenset[str]  # models of its chain benched when it started
    ms: float
    answer: str


@dataclass
class Bench:
    model: str
    why: str
    at: int  # request number
    seconds: float  # the cooldown the registry applied (the event's benched_for)


@dataclass
class Board:
    """Everything the display shows, fed by the loop and the failover observer."""

    clock: float = 0.0
    phase: int = 0
    requests: list[Request] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    benches: list[Bench] = field(default_factory=list)
    probes: set[int] = field(default_factory=set)  # requests that brought a model back
    strikes: Counter[str] = field(default_factory=Counter)  # failures since it last served
    current: int = 0

    def observe(self, event: FailoverEvent) -> None:
        short = KEYS.get(event.model, event.model)
        self.strikes[short] += 1
        probe = self.probing(short)  # benched before and not served since: this try probed it
        status = event.status
        what = f"{status} {event.kind.value}" if status else event.kind.value
        if event.reason == "timeout":
            what = f"no answer in {DEADLINE:.0f} s (timeout)"
        if event.benched:
            why = {
                "exhausted": f"{what}, {event.attempt} tries failed",
                "auth_dead": f"{what}: bad key",
                "timeout": f"hung: {self.strikes[short]} timeouts",
            }.get(event.reason, what)
            if probe:
                why = f"{'hung' if event.reason == 'timeout' else what}: probe failed"
            seconds = event.benched_for.total_seconds() if event.benched_for else 0.0
            self.benches.append(Bench(short, why, self.current, seconds))
            outcome = f"benched {seconds:.0f} s"
        else:
            outcome = "not benched"
        nxt = KEYS.get(event.next_model or "", event.next_model or "nothing left")
        what = f"probe: {what}" if probe else what
        self.decisions.append(f"#{self.current:<3}{short} {what} -> {outcome} -> {nxt}")

    def probing(self, model: str) -> bool:
        """Whether the model was benched and has served nothing since: a try is its probe."""
        last = next((b for b in reversed(self.benches) if b.model == model), None)
        return last is not None and not any(
            r.served == model for r in self.requests if r.n > last.at
        )

    def served(self, req: Request) -> None:
        """Record a request; a benched model's first answer is the probe that brought it back."""
        back = self.probing(req.served)
        self.requests.append(req)
        self.strikes[req.served] = 0
        if back:
            self.probes.add(req.n)
            self.decisions.append(
                f"#{req.n:<3}{req.served} probed: it answered, back for every request"
            )


# -- drawing -----------------------------------------------------------------------------

SERVED, RETRIED, FAILED, BENCHED, PROBE = "█", "▓", "x", "·", "◆"
LEGEND = (
    f"{SERVED} served {RETRIED} after retries {FAILED} failed, moved on "
    f"{BENCHED} benched {PROBE} probe: back"
)
LABEL = max(len(m) for m in MODELS) + 1


def cell(req: Request, model: str, probes: set[int]) -> str:
    if req.served == model:
        if req.n in probes:
            return PROBE
        return RETRIED if req.failed[model] else SERVED
    if req.failed[model]:
        return FAILED
    return BENCHED if model in req.skipped else " "


def timeline(board: Board) -> list[tuple[str, str]]:
    """(text, style) lines: a phase ruler and one row per model, a column per request."""
    ruler = "".join(str(i + 1) * p.requests for i, p in enumerate(PHASES))
    lines = [("phase".ljust(LABEL) + ruler, "dim")]
    for model in MODELS:
        row = "".join(cell(r, model, board.probes) for r in board.requests)
        lines.append((model.ljust(LABEL) + row, "bold" if model == PRIMARY else ""))
    return lines


def benched_rows(board: Board, now: float) -> list[str]:
    """The models benched now: why, time left, failed calls so far."""
    import failover_core as fc

    rows = []
    failed = sum((r.failed for r in board.requests), Counter[str]())
    for b in fc.list_benched():
        model = KEYS.get(b.model, b.model)
        why = next((x.why for x in reversed(board.benches) if x.model == model), "")
        left = b.until.timestamp() - now
        calls = plural(failed[model], "failed call")
        rows.append(f"{model:<{LABEL}}{why:<31}{left:4.1f} s left, {calls}")
    return rows or ["nothing benched"]


def plural(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def request_line(r: Request, answer: bool = True) -> str:
    """Who served a request, after how many failed calls, how fast (and what it said)."""
    fails = sum(r.failed.values())
    after = f"after {plural(fails, 'failed call')}" if fails else "first try"
    line = f"#{r.n:<3}{r.framework:<11}{r.served:<{LABEL}}{after:<22}{r.ms:5.0f} ms"
    return f"{line}  {' '.join(r.answer.split())}" if answer else line


def frame_lines(board: Board) -> list[tuple[str, str]]:
    """The live display's (text, style) lines: 22 at most, each under 80 columns."""
    phase = PHASES[board.phase]
    lines: list[tuple[str, str]] = [
        (f"phase {board.phase + 1}/{len(PHASES)}: {phase.title}", "bold reverse"),
        (f"  watch: {phase.watch}", "italic"),
        *timeline(board),
        (LEGEND, "dim"),
        (f"benched at t={board.clock:.1f} s (one registry for both frameworks)", "bold underline"),
        *[(row, "yellow") for row in benched_rows(board, board.clock)],
        ("failover decisions", "bold underline"),
        *[(d, "") for d in board.decisions[-4:]],
        ("last requests", "bold underline"),
        *[(request_line(r, answer=False), "") for r in board.requests[-3:]],
    ]
    return lines


def frame(board: Board, width: int) -> Any:
    """The live display, every line cut to the terminal's width (a narrow one crops)."""
    from rich.text import Text

    lines = frame_lines(board)
    text = Text(no_wrap=True, overflow="crop")
    for i, (line, style) in enumerate(lines):
        text.append(line[: width - 1], style=style)
        if i < len(lines) - 1:
            text.append("\n")
    return text


def summary(board: Board, seconds: float) -> list[str]:
    """The final screen: the whole run's timeline, the phases, and three lines of totals."""
    served = Counter(r.served for r in board.requests)
    failed = sum((r.failed for r in board.requests), Counter[str]())
    lines = [
        f"llm-failover demo: {len(board.requests)} requests, every one answered, in "
        f"{seconds:.0f} s",
        *[text for text, _ in timeline(board)],
        LEGEND,
        *[f"{i + 1} {p.title}" for i, p in enumerate(PHASES)],
        "served by    " + ", ".join(f"{m} {served[m]}" for m in MODELS if served[m]),
        f"failed calls {sum(failed.values())}, none seen by a caller: "
        + ", ".join(f"{m} {failed[m]}" for m in MODELS if failed[m]),
        "benched          requests, cooldown, why; how the bench ended",
        *[bench_line(board, b) for b in board.benches],
    ]
    return lines


def bench_line(board: Board, bench: Bench) -> str:
    """When a model was benched, why, for how long, and how the bench ended.

    A bench ends with the probe that brings the model back, or with a probe that fails
    (and benches it again: the next line), or is still running when the demo ends.
    """
    rebench = next((b.at for b in board.benches if b.model == bench.model and b.at > bench.at), 0)
    later = [r for r in board.requests if r.n > bench.at and (not rebench or r.n < rebench)]
    back = next((r.n for r in later if r.served == bench.model), None)
    if back:
        span, end = f"#{bench.at}-#{back - 1}", f"back at #{back} {PROBE}"
    elif rebench:
        span, end = f"#{bench.at}-#{rebench - 1}", f"probe #{rebench} failed"
    else:
        span, end = f"#{bench.at}-#{board.requests[-1].n}", "still benched"
    return f"{bench.model:<{LABEL}}{span:<8}{bench.seconds:3.0f} s  {bench.why}; {end}"


# -- the run -----------------------------------------------------------------------------


def build(sim: ProviderSimulator, board: Board) -> dict[str, Callable[[str], str]]:
    """A LangChain LCEL chain and a LlamaIndex query engine, each over a failover model.

    Both chains hold the same three models, and share one health registry: a model a
    LangChain request benched is skipped by the next LlamaIndex query too.
    """
    from langchain_anthropic import ChatAnthropic
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI
    from llama_index.core import Document, PromptTemplate, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.llms.anthropic import Anthropic
    from llama_index.llms.openai import OpenAI

    from langchain_failover import FailoverChatModel
    from llamaindex_failover import FailoverLLM

    options: dict[str, Any] = {
        "max_retries": 3,
        "transient_cooldown": COOLDOWN,
        "dead_cooldown": COOLDOWN,
        "cooldown": 4 * COOLDOWN,  # the longest a bench grows to
        "backoff": lambda n: 0.05,
        "observer": board.observe,
        "timeout": DEADLINE,
        "first_token_timeout": DEADLINE,
    }
    openai_kw = {"base_url": sim.openai_base_url, "api_key": "sim", "max_retries": 0}
    lc_model = FailoverChatModel(
        models=[
            ChatOpenAI(model=PRIMARY, **openai_kw),
            ChatAnthropic(
                model=BACKUP,  # type: ignore[call-arg]
                base_url=sim.anthropic_base_url,
                api_key="sim",
                max_retries=0,
            ),
            ChatOpenAI(model=LAST, **openai_kw),
        ],
        **options,
    )
    prompt = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{q}")])
    lc_chain = prompt | lc_model | StrOutputParser()

    li_kw = {"api_base": sim.openai_base_url, "api_key": "sim", "max_retries": 0}
    claude = Anthropic(model=BACKUP, base_url=sim.anthropic_base_url, api_key="sim", max_retries=0)
    li_llm = FailoverLLM(
        llms=[OpenAI(model=PRIMARY, **li_kw), claude, OpenAI(model=LAST, **li_kw)], **options
    )
    docs = [
        Document(text="Failover sends a request to the next healthy model."),
        Document(text="A benched model rests for its cooldown, then one request probes it."),
    ]
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    # The question first, so the simulator's echo shows it (its default template starts
    # with "Context information is below").
    qa = PromptTemplate("{query_str}\n\nAnswer from this context:\n{context_str}")
    engine = index.as_query_engine(llm=li_llm, text_qa_template=qa)

    return {
        "LangChain": lambda q: str(lc_chain.invoke({"q": q})),
        "LlamaIndex": lambda q: str(engine.query(q)),
    }


def served_by(answer: str) -> str:
    """The simulator names the model that answered: "[gpt-4o-mini] you said: ..."."""
    return answer.split("]", 1)[0].lstrip("[")


LOADING = (
    ("LangChain", ("langchain_core.prompts", "langchain_openai", "langchain_anthropic")),
    ("LlamaIndex", ("llama_index.core", "llama_index.llms.openai", "llama_index.llms.anthropic")),
    ("llm-failover", ("langchain_failover", "llamaindex_failover", "failover_core.simulator")),
)


def load(say: Callable[[str], None]) -> None:
    """Import the frameworks, one line each with its time: the first import takes seconds."""
    for label, modules in LOADING:
        started = time.perf_counter()
        say(f"Loading {label}...")
        for module in modules:
            importlib.import_module(module)
        say(f" {time.perf_counter() - started:.1f} s\n")


def run(
    pace: float,
    live: Callable[[Board], None],
    log: Callable[[str], None],
    say: Callable[[str], None] = lambda text: None,
) -> Board:
    import failover_core as fc
    from failover_core.simulator import ProviderSimulator

    board = Board()
    # The registry reads the demo clock: benches last COOLDOWN demo seconds on any machine.
    old = fc.set_health_registry(fc.HealthRegistry(clock=lambda: board.clock))
    try:
        with ProviderSimulator() as sim:
            sim.set_latency("*", 0.01)
            say("Building the chains and warming up the clients...")
            started = time.perf_counter()
            ask = build(sim, board)
            for framework in ask.values():  # warm the clients: the first call pays imports
                framework("warm up")
            say(f" {time.perf_counter() - started:.1f} s\n")
            sim.reset()
            sim.set_latency("*", 0.01)
            n = 0
            for index, phase in enumerate(PHASES):
                board.phase = index
                phase.start(sim)
                log(f"--- phase {index + 1}/{len(PHASES)}: {phase.title} ({phase.watch})")
                live(board)
                time.sleep(pace)  # a moment to read what the new phase is about
                for i in range(phase.requests):
                    n += 1
                    board.current = n
                    started = time.perf_counter()
                    framework = "LangChain" if n % 2 else "LlamaIndex"
                    question = phase.prompt if i == 0 and phase.prompt else "what is failover?"
                    benched = {KEYS[b.model] for b in fc.list_benched()}
                    skipped = frozenset(benched.intersection(CHAINS[framework]))
                    calls = Counter(sim.state.call_counts())
                    seen = len(board.decisions)
                    answer = ask[framework](f"question {n}: {question}")
                    model = served_by(answer)
                    failed = Counter(sim.state.call_counts()) - calls
                    failed[model] -= 1
                    ms = (time.perf_counter() - started) * 1000
                    req = Request(n, index, framework, model, +failed, skipped, ms, answer)
                    board.served(req)
                    for decision in board.decisions[seen:]:
                        log(f"    ! {decision}")
                    log(request_line(req))
                    live(board)
                    board.clock += STEP
                    time.sleep(max(0.0, pace - (time.perf_counter() - started)))
    finally:
        fc.set_health_registry(old)
    return board


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--pace", type=float, default=STEP, help=f"real seconds per request (default {STEP})"
    )
    args = parser.parse_args(argv)
    tty = sys.stdout.isatty()
    total = sum(p.requests for p in PHASES)
    how_long = (
        f"about {(total + len(PHASES)) * args.pace:.0f} s after loading"
        if args.pace
        else "as fast as it goes"
    )
    print(
        f"llm-failover outage demo: {total} requests in {len(PHASES)} phases, {how_long}.\n"
        f"LangChain chain:  {PRIMARY} > {BACKUP} > {LAST}\n"
        f"LlamaIndex chain: {PRIMARY} > {BACKUP} > {LAST}\n"
        "  (one health registry: either chain skips a model the other benched)",
        flush=True,
    )

    def say(text: str) -> None:
        print(text, end="", flush=True)

    load(say)
    # The decisions are on screen already; the library's own warnings would tear the display.
    logging.getLogger("llm_failover").setLevel(logging.ERROR)
    started = time.perf_counter()
    if tty:
        from rich.console import Console
        from rich.live import Live

        console = Console()
        width = shutil.get_terminal_size().columns
        # Started at the first frame, so the loading lines before it print as they come.
        display = Live(console=console, auto_refresh=False, transient=True)

        def show(board: Board) -> None:
            if not display.is_started:
                display.start()
            display.update(frame(board, width), refresh=True)

        try:
            board = run(args.pace, show, lambda line: None, say)
        finally:
            display.stop()
        for line in summary(board, time.perf_counter() - started):
            console.print(line[: width - 1], highlight=False, markup=False, soft_wrap=True)
    else:
        board = run(args.pace, lambda board: None, print, say)
        print()
        print("\n".join(summary(board, time.perf_counter() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
