"""The offline demo: a scripted outage through a LangChain chain and a LlamaIndex query engine.

Both frameworks share one health registry, so a model benched by a LangChain request is
skipped by the next LlamaIndex query too. Everything runs against the bundled provider
simulator with real SDK clients over loopback: no API key, no network, well under a minute.

    python examples/outage_demo.py            # live display in a terminal, a log otherwise
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from langchain_anthropic import ChatAnthropic
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.llms.openai import OpenAI
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from llamaindex_failover import FailoverLLM

PRIMARY, BACKUP, LAST = "gpt-4o-mini", "claude-haiku-4-5", "gpt-4.1-nano"
REQUESTS = 40
COOLDOWN = 3.0


@dataclass
class Served:
    n: int
    framework: str
    model: str
    decisions: int
    ms: float
    text: str


@dataclass
class Board:
    """What the display shows: recent requests, recent decisions, the script's phase."""

    served: list[Served] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    phase: str = "all providers healthy"

    def observe(self, event: fc.FailoverEvent) -> None:
        bench = (
            f"benched {event.benched_for.total_seconds():.0f}s"
            if event.benched_for
            else "not benched"
        )
        self.decisions.append(
            f"{event.model}: {event.kind.value} (HTTP {event.status}), attempt {event.attempt}, "
            f"{bench} -> {event.next_model or 'nothing left'}"
        )

    def render(self) -> Group:
        requests = Table(title="requests", expand=True)
        for column in ("#", "via", "served by", "decisions", "ms", "answer"):
            requests.add_column(column, no_wrap=column != "answer")
        for s in self.served[-12:]:
            style = "green" if s.model.endswith(PRIMARY) else "yellow"
            requests.add_row(
                str(s.n),
                s.framework,
                f"[{style}]{s.model}[/]",
                str(s.decisions),
                f"{s.ms:.0f}",
                escape(s.text[:48]),
            )
        benches = Table(title="bench (shared by both frameworks)", expand=True)
        for column in ("model", "for", "fails", "manual"):
            benches.add_column(column)
        now = datetime.now(timezone.utc)
        for b in fc.list_benched():
            benches.add_row(
                b.model,
                f"{(b.until - now).total_seconds():.1f}s",
                str(b.consecutive_fails),
                str(b.manual),
            )
        decisions = escape("\n".join(self.decisions[-6:])) or "none yet"
        return Group(
            Panel(self.phase, title="phase"),
            requests,
            benches,
            Panel(decisions, title="failover decisions"),
        )


def build(
    sim: ProviderSimulator, board: Board
) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """A LangChain LCEL chain and a LlamaIndex query engine, each over a failover model."""
    options = {
        "max_retries": 2,
        "cooldown": COOLDOWN,
        "backoff": lambda n: 0.05,
        "observer": board.observe,
    }
    lc_model = FailoverChatModel(
        models=[
            ChatOpenAI(model=PRIMARY, base_url=sim.openai_base_url, api_key="sim", max_retries=0),
            ChatAnthropic(
                model=BACKUP,
                base_url=sim.anthropic_base_url,  # type: ignore[call-arg]
                api_key="sim",
                max_retries=0,
            ),
            ChatOpenAI(model=LAST, base_url=sim.openai_base_url, api_key="sim", max_retries=0),
        ],
        **options,
    )
    prompt = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{q}")])
    lc_chain = prompt | lc_model | StrOutputParser()

    li_llm = FailoverLLM(
        llms=[
            OpenAI(model=PRIMARY, api_base=sim.openai_base_url, api_key="sim", max_retries=0),
            OpenAI(model=LAST, api_base=sim.openai_base_url, api_key="sim", max_retries=0),
        ],
        **options,
    )
    docs = [
        Document(text="Failover sends a request to the next healthy model."),
        Document(text="A benched model rests for its cooldown, then is tried again."),
    ]
    engine = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    query_engine = engine.as_query_engine(llm=li_llm)

    def ask_langchain(q: str) -> str:
        return str(lc_chain.invoke({"q": q}))

    def ask_llamaindex(q: str) -> str:
        return str(query_engine.query(q))

    return ask_langchain, ask_llamaindex


SCRIPT: dict[int, tuple[str, Callable[[ProviderSimulator], object]]] = {
    9: (f"{PRIMARY} starts returning 503s", lambda sim: sim.fail(PRIMARY, 503, times=None)),
    17: (f"{BACKUP}'s key is revoked (401)", lambda sim: sim.fail(BACKUP, 401, times=None)),
    25: ("providers recover; benches run out their cooldown", lambda sim: sim.clear()),
}


def main() -> None:
    # The decisions are on screen already; the library's own warnings would tear the display.
    logging.getLogger("llm_failover").setLevel(logging.ERROR)
    console = Console()
    board = Board()
    started = time.perf_counter()
    with ProviderSimulator() as sim:
        sim.set_latency("*", 0.02)
        ask_langchain, ask_llamaindex = build(sim, board)
        live = (
            Live(board.render(), console=console, refresh_per_second=8, transient=False)
            if console.is_terminal
            else None
        )
        if live is not None:
            live.start()
        recovered_at = time.perf_counter()
        try:
            for n in range(1, REQUESTS + 1):
                if n in SCRIPT:
                    board.phase, action = SCRIPT[n]
                    action(sim)
                    if live is None:
                        console.print(f"--- {board.phase}")
                if n == 25:
                    recovered_at = time.perf_counter()
                if n == 33:  # wait out the rest of the cooldown
                    time.sleep(max(0.0, COOLDOWN + 0.1 - (time.perf_counter() - recovered_at)))
                    board.phase = "cooldowns over: the primary is tried again"
                    if live is None:
                        console.print(f"--- {board.phase}")
                framework, ask = (
                    ("LangChain", ask_langchain) if n % 2 else ("LlamaIndex", ask_llamaindex)
                )
                seen = len(board.decisions)
                t0 = time.perf_counter()
                answer = ask(f"question {n}: what does failover do?")
                ms = (time.perf_counter() - t0) * 1000
                model = answer.split("]")[0].lstrip("[")
                key = next(
                    k
                    for k in (f"openai/{PRIMARY}", f"anthropic/{BACKUP}", f"openai/{LAST}")
                    if k.endswith(model)
                )
                failed = len(board.decisions) - seen
                board.served.append(Served(n, framework, key, failed, ms, answer))
                if live is not None:
                    live.update(board.render())
                else:
                    for decision in board.decisions[seen:]:
                        console.print(f"    ! {decision}")
                    console.print(f"#{n:02d} {framework:<10} served by {key:<26} {ms:6.0f} ms")
        finally:
            if live is not None:
                live.stop()
        calls = sim.state.call_counts()

    by_model = Counter(s.model for s in board.served)
    latencies = sorted(s.ms for s in board.served)
    console.print(
        Panel.fit(
            "\n".join(
                [
                    f"{len(board.served)} requests served, none failed, in "
                    f"{time.perf_counter() - started:.1f}s",
                    "served by: " + ", ".join(f"{m} x{c}" for m, c in by_model.most_common()),
                    f"failover decisions: {len(board.decisions)}",
                    "calls that reached each model: "
                    + ", ".join(f"{m} x{c}" for m, c in calls.items()),
                    f"latency p50 {statistics.median(latencies):.0f} ms, "
                    f"max {latencies[-1]:.0f} ms",
                ]
            ),
            title="summary",
        )
    )


if __name__ == "__main__":
    main()
