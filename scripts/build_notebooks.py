"""Write the notebooks in notebooks/ from the cells below, then run them to store outputs.

    .venv/bin/python scripts/build_notebooks.py          # rebuild and re-execute all four
    .venv/bin/python scripts/build_notebooks.py 3 4      # only these (by name or number)

The notebooks are the artifact people open; this script keeps their source reviewable in
one place. The test suite executes the committed notebooks in a fresh kernel, offline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"

REAL_PROVIDERS = """# ==== REAL PROVIDERS (optional) ==========================================
# With OPENAI_API_KEY and ANTHROPIC_API_KEY set, this notebook talks to the real
# APIs instead of the bundled simulator; the outage is then a primary with a
# revoked key (a real 401). Without them everything stays on 127.0.0.1.
import os

USE_REAL_PROVIDERS = bool(os.environ.get("OPENAI_API_KEY") and os.environ.get("ANTHROPIC_API_KEY"))
print("real providers" if USE_REAL_PROVIDERS else "offline: the provider simulator")"""


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(text.strip())


LANGCHAIN = [
    md("""
# LangChain quickstart: a chain and an agent that survive an outage

`FailoverChatModel` is a real `BaseChatModel`: anything that takes a chat model takes it,
agents included. It tries its models in order, retries transient errors, benches a dead
model for every chain in the process, and reports each decision.
"""),
    code(REAL_PROVIDERS),
    md(
        "## The models\n\nOffline, the simulator stands in for OpenAI and Anthropic: the "
        "clients are the real SDKs, talking HTTP to 127.0.0.1. Each child has `max_retries=0`:"
        " the failover model is the one retry layer."
    ),
    code("""
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

from langchain_failover import FailoverChatModel

if USE_REAL_PROVIDERS:
    sim = None
    primary = ChatOpenAI(model="gpt-4o-mini", api_key="sk-revoked-for-the-demo", max_retries=0)
    backup = ChatAnthropic(model="claude-haiku-4-5", max_retries=0)
else:
    from failover_core.simulator import ProviderSimulator

    sim = ProviderSimulator().start()
    primary = ChatOpenAI(model="gpt-4o-mini", base_url=sim.openai_base_url, api_key="sim",
                         max_retries=0)
    backup = ChatAnthropic(model="claude-haiku-4-5", base_url=sim.anthropic_base_url,
                           api_key="sim", max_retries=0)
    sim.fail("gpt-4o-mini", status=503, times=None)  # the primary is down from now on

events = []
model = FailoverChatModel(models=[primary, backup], cooldown=60, backoff=lambda n: 0.05,
                          observer=events.append)
model.keys
"""),
    md(
        "## A chain\n\nThe primary fails; the chain never notices. The answer says who served "
        "it and after how many failed attempts."
    ),
    code("""
from langchain_core.prompts import ChatPromptTemplate

prompt = ChatPromptTemplate.from_messages([("system", "Answer in one line."), ("human", "{q}")])
answer = (prompt | model).invoke({"q": "What is a failover model?"})
print(answer.content)
answer.response_metadata["failover"]
"""),
    code("""
for e in events:
    print(f"{e.model}: {e.kind.value}, HTTP {e.status}, attempt {e.attempt}, "
          f"benched={e.benched}, next={e.next_model}")
"""),
    md(
        "## An agent with a tool\n\n`create_agent` takes the failover model as it is. The "
        "benched primary is skipped: no time is spent on it."
    ),
    code('''
from langchain.agents import create_agent
from langchain_core.tools import tool


@tool
def order_status(order_id: int) -> str:
    """Look up the status of an order."""
    return f"order {order_id} shipped yesterday"


agent = create_agent(model, tools=[order_status])
result = agent.invoke({"messages": [("user", "Where is order 4242?")]})
for message in result["messages"]:
    served = message.response_metadata.get("failover", {}).get("model", "")
    print(f"{message.type:>5} {served:<28} {message.content or message.tool_calls}")
'''),
    md(
        "## Decisions as LangChain events\n\nIn traces the failover model is a router, like "
        "`with_fallbacks`: its own run is a chain run, and each attempt is the child model's own "
        "run under it, so usage and streamed tokens are counted once. Every decision also "
        'reaches callback handlers as the custom event `"failover"`, so it shows in '
        "`astream_events` and in LangSmith."
    ),
    code("""
from failover_core import unbench_model

unbench_model(primary_key := model.keys[0])  # give the primary another chance
tokens = []
async for event in model.astream_events("hello again", version="v2"):
    kind = event["event"]
    if kind == "on_custom_event":
        print("  decision:", event["data"]["model"], event["data"]["kind"],
              "->", event["data"]["next_model"])
    elif kind in ("on_chain_start", "on_chat_model_start"):
        print(kind, event["name"])
    elif kind == "on_chat_model_stream":
        tokens.append(event["data"]["chunk"].text)
print("streamed once:", "".join(tokens))
"""),
    md(
        "## A long answer cut midway, finished by the next model\n\n"
        "With `resume_streams=True`, a plain-text stream that breaks after some text goes on "
        "on the next model able to continue it (Anthropic's API continues a prefilled "
        "assistant turn): the caller's stream carries on, nothing repeated, nothing lost. "
        "Offline, the simulator breaks the primary's stream after six chunks."
    ),
    code("""
if sim is not None:
    sim.clear()
    unbench_model(model.keys[0])
    sim.fail("gpt-4o-mini", status=503, after_chunks=6)  # the next stream breaks midway
    resumed = []
    resuming = FailoverChatModel(models=[primary, backup], resume_streams=True,
                                 observer=resumed.append)
    question = "Why should a long answer survive a provider that fails halfway through it?"
    by_model, current = {}, None
    for chunk in resuming.stream(question):
        info = chunk.response_metadata.get("failover")
        if info:  # on the first chunk, and on the first chunk of the continuation
            current = info.get("resumed_on", info.get("model"))
        by_model[current] = by_model.get(current, "") + chunk.text
    for key, text in by_model.items():
        print(f"{key:>28}: {text!r}")
    print("the caller saw:", "".join(by_model.values()))
    [event] = resumed
    print(f"{event.reason}: {event.model} -> {event.next_model} "
          f"after {event.error.characters} characters")
"""),
    md(
        "## Who served each request across an outage\n\n"
        "Forty requests; offline, the primary returns 503 from request 10 to 17. The health "
        "registry here runs on a virtual clock, one second per request, so the picture is the "
        "same on any machine: the primary fails its retries once, is benched for 8 seconds "
        "(every request in between goes straight to the backup), and when the bench ends one "
        "request probes it and brings it back. With real providers the primary's key is "
        "revoked throughout, so the backup serves every request after the first."
    ),
    code("""
import failover_core as fc

virtual = {"now": 0.0}  # seconds; the registry reads this instead of the wall clock
real_registry = fc.set_health_registry(fc.HealthRegistry(clock=lambda: virtual["now"]))
benches = []
outage_model = FailoverChatModel(
    models=[primary, backup], cooldown=8, backoff=lambda n: 0.01,
    observer=lambda e: e.benched and benches.append((virtual["now"], e.until.timestamp())),
)
served = []
if sim is not None:
    sim.clear()  # healthy again: the outage below is scripted
for n in range(40):
    virtual["now"] = float(n)
    if sim is not None and n == 10:
        sim.fail("gpt-4o-mini", status=503, times=None)
    if sim is not None and n == 18:
        sim.clear()
    served.append(outage_model.invoke(f"request {n}").response_metadata["failover"])
fc.set_health_registry(real_registry)
print("served by:", {k: sum(s["model"] == k for s in served) for k in outage_model.keys})
print("the last request was served by", served[-1]["model"])
"""),
    code("""
%matplotlib inline
import matplotlib.pyplot as plt

keys = list(outage_model.keys)
fig, ax = plt.subplots(figsize=(10, 3))
for row, (key, color) in enumerate(zip(keys, ["tab:green", "tab:orange"], strict=True)):
    xs = [n for n, s in enumerate(served) if s["model"] == key]
    ax.scatter(xs, [row] * len(xs), marker="s", s=70, color=color, label=f"served by {key}")
retried = [n for n, s in enumerate(served) if s["failed_attempts"]]
ax.scatter(retried, [keys.index(served[n]["model"]) - 0.28 for n in retried], marker="v",
           color="tab:red", label="after failed attempts on the primary")
# The probe: the primary's first answer after a bench, which brings it back for everyone.
probes = [n for n in range(1, len(served)) if served[n]["model"] == keys[0]
          and served[n - 1]["model"] != keys[0] and any(start < n for start, _ in benches)]
ax.scatter(probes, [0] * len(probes), marker="*", s=320, color="tab:blue", zorder=3,
           label="the probe that brought the primary back")
for n in probes:
    ax.annotate("probe", (n, 0), xytext=(n + 1.2, 0.55), fontsize=9, color="tab:blue",
                arrowprops={"arrowstyle": "->", "color": "tab:blue"})
along = ax.get_xaxis_transform()  # x in requests, y in axes fractions
for start, end in benches:
    ax.axvspan(start + 0.5, end + 0.5, color="grey", alpha=0.15)
    ax.text(start + 0.7, 0.04, "primary benched", transform=along, fontsize=9, color="dimgrey")
if sim is not None:
    ax.axvspan(9.5, 17.5, ymin=0.9, color="tab:red", alpha=0.5)
    ax.text(9.7, 0.84, "primary returns 503", transform=along, fontsize=9, color="tab:red",
            va="top")
ax.set_yticks(range(len(keys)), keys)
ax.set_ylim(-0.6, 1.6)
ax.invert_yaxis()  # the primary on top
ax.set_xlim(-1, len(served))
ax.set_xlabel("request number")
ax.set_title("Who served each request across an outage")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)
fig.tight_layout()
print("probes that brought the primary back: requests", probes)
"""),
    code("""
if sim is not None:
    sim.stop()
"""),
]

LLAMAINDEX = [
    md("""
# LlamaIndex quickstart: a query engine and an agent on `FailoverLLM`

`FailoverLLM` is a function-calling `LLM`: set it as `Settings.llm` or hand it to a query
engine, a chat engine or an agent. Health is shared with every other failover model in
the process, LangChain's included.
"""),
    code(REAL_PROVIDERS),
    code("""
from llama_index.llms.openai import OpenAI

from llamaindex_failover import FailoverLLM

if USE_REAL_PROVIDERS:
    sim = None
    primary = OpenAI(model="gpt-4o-mini", api_key="sk-revoked-for-the-demo", max_retries=0)
    backup = OpenAI(model="gpt-4.1-nano", max_retries=0)
else:
    from failover_core.simulator import ProviderSimulator

    sim = ProviderSimulator().start()
    primary = OpenAI(model="gpt-4o-mini", api_base=sim.openai_base_url, api_key="sim",
                     max_retries=0)
    backup = OpenAI(model="gpt-4.1-nano", api_base=sim.openai_base_url, api_key="sim",
                    max_retries=0)
    sim.fail("gpt-4o-mini", status=401, times=None)  # the primary's key is revoked

llm = FailoverLLM(llms=[primary, backup], cooldown=60, backoff=lambda n: 0.05)
llm.metadata
"""),
    md(
        "## Decisions as instrumentation events\n\nA root event handler receives a "
        "`FailoverDecisionEvent` per decision, inside the `FailoverLLM` span."
    ),
    code("""
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler

from llamaindex_failover import FailoverDecisionEvent


class PrintDecisions(BaseEventHandler):
    @classmethod
    def class_name(cls) -> str:
        return "PrintDecisions"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, FailoverDecisionEvent):
            print(f"decision: {event.model} {event.kind} (HTTP {event.status}), "
                  f"benched={event.benched}, next={event.next_model}")


get_dispatcher().add_event_handler(PrintDecisions())
"""),
    md(
        "## A query engine\n\nA vector index (with a mock embedding, so it runs offline) "
        "answers through the failover LLM."
    ),
    code("""
from llama_index.core import Document, PromptTemplate, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding

index = VectorStoreIndex.from_documents(
    [Document(text="A failover model sends each request to the first healthy model."),
     Document(text="A benched model rests for its cooldown before it is tried again.")],
    embed_model=MockEmbedding(embed_dim=8),
)
# The question first: offline, the simulator answers by echoing the start of the prompt.
qa = PromptTemplate("{query_str}\\n\\nAnswer from this context:\\n{context_str}")
response = index.as_query_engine(llm=llm, text_qa_template=qa).query(
    "What happens to a benched model?")
print(str(response)[:200])
"""),
    md(
        "## An agent with a tool\n\n`FunctionAgent` calls tools through the failover LLM; "
        "tool calls are read by the child that produced them."
    ),
    code('''
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm)
print(await agent.run("What is 6 times 7?"))
'''),
    md(
        "## The agent's steps, and which model served each\n\n"
        "The same agent again, after unbenching the primary, with its steps recorded from "
        "the workflow's event stream and the failover decisions from an observer-like "
        "instrumentation handler. Each model call is one step; the tool runs between them."
    ),
    code("""
from llama_index.core.agent.workflow import AgentOutput, ToolCallResult

from failover_core import is_benched, unbench_model


decisions = []  # the failover decisions since the last step


class RecordDecisions(BaseEventHandler):
    @classmethod
    def class_name(cls) -> str:
        return "RecordDecisions"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, FailoverDecisionEvent):
            decisions.append(event)


get_dispatcher().add_event_handler(RecordDecisions())
unbench_model(llm.keys[0])  # the primary gets another chance

steps = []  # (kind, served by, what happened, decisions in it, models skipped as benched)
handler = agent.run("What is 6 times 7?")
async for ev in handler.stream_events():
    if isinstance(ev, AgentOutput):
        raw = ev.raw if isinstance(ev.raw, dict) else {}
        model = str(raw.get("model") or "?")
        what = (", ".join(f"call {c.tool_name}(" + ", ".join(f"{k}={v}" for k, v in
                                                         c.tool_kwargs.items()) + ")"
                          for c in ev.tool_calls)
                or "answer: " + str(ev.response.content)[:40])
        failed = {d.model for d in decisions}
        skipped = [k for k in llm.keys if is_benched(k) and k not in failed]
        steps.append(("llm", model, what, list(decisions), skipped))
        decisions.clear()
    elif isinstance(ev, ToolCallResult):
        steps.append(("tool", ev.tool_name, f"{ev.tool_name} -> {ev.tool_output.content}", [], []))
print(await handler)
for i, (kind, who, what, failures, skipped) in enumerate(steps, 1):
    notes = [f"{d.model} failed ({d.status})" for d in failures]
    notes += [f"{k} skipped: benched" for k in skipped]
    print(f"step {i}: {kind:<4} {who:<14} {what}" + (f"   [{'; '.join(notes)}]" if notes else ""))
"""),
    code("""
%matplotlib inline
import matplotlib.pyplot as plt

rows = [key.split("/", 1)[1] for key in llm.keys] + ["tool"]
fig, ax = plt.subplots(figsize=(10, 3.2))
for x, (kind, who, what, failures, skipped) in enumerate(steps, 1):
    for key in skipped:
        y = rows.index(key.split("/", 1)[1])
        ax.scatter(x, y, marker="o", s=160, facecolors="none", edgecolors="grey")
        ax.annotate("benched", (x, y), xytext=(0, -18), textcoords="offset points",
                    ha="center", fontsize=8, color="grey")
    for d in failures:
        y = rows.index(d.model.split("/", 1)[1])
        ax.scatter(x, y, marker="X", s=160, color="tab:red")
        ax.annotate(f"{d.status} {d.kind}", (x, y), xytext=(0, -18), textcoords="offset points",
                    ha="center", fontsize=8, color="tab:red")
    y = rows.index("tool") if kind == "tool" else next(
        (i for i, r in enumerate(rows) if who.startswith(r)), len(rows) - 1)
    ax.scatter(x, y, marker="D" if kind == "tool" else "s", s=160,
               color="tab:blue" if kind == "tool" else "tab:green")
    ax.annotate(what, (x, y), xytext=(0, 12), textcoords="offset points", ha="center",
                fontsize=8)
ax.scatter([], [], marker="s", color="tab:green", label="model call, served")
ax.scatter([], [], marker="X", color="tab:red", label="model call failed, failed over")
ax.scatter([], [], marker="o", facecolors="none", edgecolors="grey", label="benched, skipped")
ax.scatter([], [], marker="D", color="tab:blue", label="tool run")
ax.set_yticks(range(len(rows)), rows)
ax.set_ylim(-0.7, len(rows) - 0.3)
ax.set_xticks(range(1, len(steps) + 1), [f"step {i}" for i in range(1, len(steps) + 1)])
ax.set_xlim(0.4, len(steps) + 0.6)
ax.set_title("A FunctionAgent's steps, and which model served each")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=4, frameon=False)
fig.tight_layout()
"""),
    code("""
from failover_core import list_benched

list_benched()
"""),
    code("""
if sim is not None:
    sim.stop()
"""),
]

OUTAGE = [
    md("""
# An outage, drawn

A scripted incident through a LangChain failover model, 380 requests long:

1. requests 0-59: all healthy;
2. from request 60 the primary (`gpt-4o-mini`) returns 503s;
3. from request 140 the backup's key is revoked too (401), so the third model carries the load;
4. from request 220 the providers recover;
5. from request 300 the primary hangs: it takes requests and never answers. Each try is cut
   at the 0.3 s deadline and the next model answers at once; two timeouts bench it;
6. from request 330 it answers again.

When a cooldown ends, one request probes the model: a failed probe benches it again for
twice as long (the longer bars), a successful one brings it back for everyone.

The health registry runs on a virtual clock, a tenth of a second per request, so the
incident plays out the same way on any machine, however fast it runs the requests. The
incident needs fault injection, so this notebook always runs on the simulator.
"""),
    code("""
import logging

from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel

logging.getLogger("llm_failover").setLevel(logging.ERROR)  # the plots tell the story below
SECONDS_PER_REQUEST = 0.1
virtual = {"now": 0.0}  # the registry's clock, advanced per request
fc.set_health_registry(fc.HealthRegistry(clock=lambda: virtual["now"]))

sim = ProviderSimulator().start()
sim.set_latency("*", 0.004)
children = [
    ChatOpenAI(model="gpt-4o-mini", base_url=sim.openai_base_url, api_key="sim", max_retries=0),
    ChatAnthropic(model="claude-haiku-4-5", base_url=sim.anthropic_base_url, api_key="sim",
                  max_retries=0),
    ChatOpenAI(model="gpt-4.1-nano", base_url=sim.openai_base_url, api_key="sim", max_retries=0),
]
for child in children:  # warm the clients: the first call of each pays for imports
    child.invoke("warm up")
benches = []  # (model, first request, last request) benched
model = FailoverChatModel(
    models=children, max_retries=2, cooldown=3.0, backoff=lambda n: 0.02,
    timeout=0.3, first_token_timeout=0.3,  # a hung attempt costs a request 0.3 s at most
    observer=lambda e: e.benched and benches.append((e.model, virtual["now"], e.until.timestamp())),
)
model.keys
"""),
    code("""
import time

phases = {0: "all healthy", 60: "primary returns 503", 140: "backup gets 401 too",
          220: "providers recover", 300: "primary hangs", 330: "answers again"}
actions = {60: lambda: sim.fail("gpt-4o-mini", 503, times=None),
           140: lambda: sim.fail("claude-haiku-4-5", 401, times=None),
           220: sim.clear,
           300: lambda: sim.hang("gpt-4o-mini", 5, times=None),
           330: sim.clear}
rows = []  # (request, served by, latency ms, failed attempts)
for n in range(380):
    virtual["now"] = n * SECONDS_PER_REQUEST
    if n in actions:
        actions[n]()
    started = time.perf_counter()
    meta = model.invoke(f"request {n}").response_metadata["failover"]
    rows.append((n, meta["model"], (time.perf_counter() - started) * 1000,
                 meta["failed_attempts"]))
benches = [(m, start / SECONDS_PER_REQUEST, end / SECONDS_PER_REQUEST)
           for m, start, end in benches]
sim.stop()
print(f"{len(rows)} requests; served at the end by {rows[-1][1]}")
"""),
    code("""
%matplotlib inline
import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

keys = list(model.keys)
colors = dict(zip(keys, ["tab:green", "tab:orange", "tab:blue"], strict=True))
fig, (served_ax, latency_ax, bench_ax) = plt.subplots(
    3, 1, figsize=(11, 8.5), sharex=True, gridspec_kw={"height_ratios": [2, 2, 1.5]})
fig.suptitle(f"An outage through a three-model failover chain: {len(rows)} requests",
             fontsize=14)

for key in keys:
    ns = [n for n, m, _, _ in rows if m == key]
    served_ax.scatter(ns, [keys.index(key)] * len(ns), s=10, color=colors[key], label=key)
served_ax.set_yticks(range(len(keys)), keys)
served_ax.set_ylim(-0.6, len(keys) + 0.1)
served_ax.set_title("which model served each request")

for key in keys:
    points = [(n, ms) for n, m, ms, _ in rows if m == key]
    latency_ax.scatter([p[0] for p in points], [p[1] for p in points], s=8, color=colors[key],
                       label=f"served by {key}")
latency_ax.set_yscale("log")
low, high = min(r[2] for r in rows), max(r[2] for r in rows)
ticks = [t for t in (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000)
         if low / 1.5 <= t <= high * 1.5]
latency_ax.yaxis.set_major_locator(FixedLocator(ticks))
latency_ax.yaxis.set_major_formatter(ScalarFormatter())
latency_ax.yaxis.set_minor_locator(NullLocator())
latency_ax.yaxis.set_minor_formatter(NullFormatter())
latency_ax.set_ylabel("latency (ms)")
latency_ax.set_title("latency per request (the spikes: retries and backoff, or a 0.3 s deadline, "
                     "before a failover)")
latency_ax.legend(loc="upper left", fontsize=8)

for key, start, end in benches:
    bench_ax.broken_barh([(start, end - start)], (keys.index(key) - 0.35, 0.7),
                         color=colors[key], alpha=0.6, edgecolor="white", linewidth=2)
bench_ax.set_yticks(range(len(keys)), keys)
bench_ax.set_ylim(-0.6, len(keys) - 0.4)
bench_ax.set_title("when each model was benched (a failed probe doubles the next cooldown)")
bench_ax.set_xlabel("request number (0.1 s apart on the registry's clock)")
bench_ax.set_xlim(-5, len(rows) + 5)

for ax in (served_ax, latency_ax, bench_ax):
    for start in phases:
        if start:
            ax.axvline(start, color="grey", linestyle=":", linewidth=1)
for i, (start, title) in enumerate(phases.items()):  # alternate heights: labels never touch
    served_ax.text(start + 2, 0.98 - 0.09 * (i % 2), title,
                   transform=served_ax.get_xaxis_transform(),
                   fontsize=8, va="top", ha="left",
                   bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
fig.tight_layout()
"""),
    code("""
from collections import Counter

failovers = sum(1 for r in rows if r[3])
print("served:", dict(Counter(r[1] for r in rows)))
print(f"requests that needed a failover or a retry: {failovers} of {len(rows)}")
for m, start, end in benches:
    print(f"benched {m}: requests {start:.0f} to {end:.0f}")
"""),
    md(
        "## A slow tail, hedged\n\n"
        "Deadlines handle a provider that hangs; a provider that answers but whose tail "
        "stretches needs something else. Here the primary's time to first token is "
        "heavy-tailed (median 100 ms, p99 1.5 s) and the backup is steady (median 100 ms, "
        "p99 150 ms). The same 300 streamed requests, 6 at a time, without hedging and with "
        '`hedge_after="p95"`: once the primary has 20 samples, a request with no first token '
        "after the primary's own 95th percentile starts the backup beside it, and the first "
        "to answer wins."
    ),
    code("""
import asyncio
import numpy as np

fc.set_health_registry(fc.HealthRegistry())  # a real clock again


async def first_tokens(hedge_after, n=300, at_once=6):
    fc.reset_hedging()  # each run learns the primary's latencies from scratch
    with ProviderSimulator() as lab:
        lab.set_latency("gpt-4o-mini", 0.1, p99=1.5, seed=1)
        lab.set_latency("gpt-4.1-nano", 0.1, p99=0.15, seed=2)
        chain = FailoverChatModel(
            models=[ChatOpenAI(model=m, base_url=lab.openai_base_url, api_key="sim",
                               max_retries=0) for m in ("gpt-4o-mini", "gpt-4.1-nano")],
            hedge_after=hedge_after,
        )
        gate = asyncio.Semaphore(at_once)

        async def one(i):
            async with gate:
                started = time.perf_counter()
                async for chunk in chain.astream(f"request {i}"):
                    if chunk.content:
                        return (time.perf_counter() - started) * 1000

        times = await asyncio.gather(*(one(i) for i in range(n)))
        return np.array(times), lab.calls() - n


plain, _ = await first_tokens(None)
hedged, extra = await first_tokens("p95")
for name, t in (("no hedging", plain), ('hedge_after="p95"', hedged)):
    print(f"{name:>18}: p50 {np.percentile(t, 50):4.0f} ms, p99 {np.percentile(t, 99):5.0f} ms, "
          f"max {t.max():5.0f} ms")
print(f"extra calls with hedging: {extra} of 300 ({extra / 3:.1f}%)")
"""),
    code("""
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

fig, ax = plt.subplots(figsize=(10, 3.6))
bins = np.logspace(np.log10(20), np.log10(4000), 50)
ax.hist(plain, bins=bins, alpha=0.55, color="tab:red", label="no hedging")
ax.hist(hedged, bins=bins, alpha=0.55, color="tab:blue", label='hedge_after="p95"')
for t, color in ((plain, "tab:red"), (hedged, "tab:blue")):
    ax.axvline(np.percentile(t, 99), color=color, linestyle="--", linewidth=1)
ax.set_xscale("log")
ax.xaxis.set_major_locator(FixedLocator([50, 100, 200, 500, 1000, 2000]))
ax.xaxis.set_major_formatter(ScalarFormatter())
ax.xaxis.set_minor_locator(NullLocator())
ax.set_xlabel("time to first token (ms, log scale); dashed: each run's p99")
ax.set_ylabel("requests")
ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: whole requests
ax.set_title("A heavy-tailed primary, with and without hedging (300 streamed requests each)")
# Where the bars overlap, blue is drawn over red: that blend gets a legend entry of its own.
red, blue = np.array(to_rgb("tab:red")), np.array(to_rgb("tab:blue"))
over_red = 0.55 * red + 0.45 * np.ones(3)
both = 0.55 * blue + 0.45 * over_red
handles, names = ax.get_legend_handles_labels()
ax.legend([*handles, Patch(color=both)], [*names, "both runs (overlap)"])
fig.tight_layout()
"""),
]

OPERATING = [
    md("""
# Operating it

The observer, the bench table by hand, defaults, logs, and the error classification.
"""),
    code(REAL_PROVIDERS),
    code("""
from datetime import timedelta

import failover_core as fc

fc.list_benched()
"""),
    md(
        "## Benching by hand\n\nAn operator can take a model out (an incident, a cost "
        "spike) and bring it back early. A manual bench is marked as such."
    ),
    code("""
until = fc.bench_model("openai/gpt-4o", timedelta(minutes=30))
print(fc.is_benched("openai/gpt-4o"), until)
fc.list_benched()
"""),
    code("""
print("was benched:", fc.unbench_model("openai/gpt-4o"))
print("again:", fc.unbench_model("openai/gpt-4o"))
"""),
    md(
        "## Defaults\n\n3 attempts per model, a 5-minute cooldown. Models built after a change "
        "pick it up."
    ),
    code("""
print(fc.get_failover_defaults())
fc.set_failover_defaults(max_retries=2, cooldown=timedelta(minutes=1))
print(fc.get_failover_defaults())
_ = fc.set_failover_defaults(max_retries=3, cooldown=timedelta(minutes=5))  # back to the defaults
"""),
    md(
        "## The observer and the logs\n\nEach decision is a `FailoverEvent` for the observer "
        "and a warning on the `llm_failover` logger with the same fields. The log never holds "
        "the prompt or the provider's error text; the observer gets everything, request "
        "included."
    ),
    code("""
import logging
import sys

from langchain_openai import ChatOpenAI

from langchain_failover import FailoverChatModel

handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
logging.getLogger("llm_failover").addHandler(handler)

if USE_REAL_PROVIDERS:
    sim = None
    broken = ChatOpenAI(model="gpt-4o-mini", api_key="sk-revoked-for-the-demo", max_retries=0)
    working = ChatOpenAI(model="gpt-4.1-nano", max_retries=0)
else:
    from failover_core.simulator import ProviderSimulator

    sim = ProviderSimulator().start()
    sim.fail("gpt-4o-mini", status=401, times=None)
    broken = ChatOpenAI(model="gpt-4o-mini", base_url=sim.openai_base_url, api_key="sim",
                        max_retries=0)
    working = ChatOpenAI(model="gpt-4.1-nano", base_url=sim.openai_base_url, api_key="sim",
                         max_retries=0)


def observer(event: fc.FailoverEvent) -> None:
    print("observer saw:", event.as_dict())


model = FailoverChatModel(models=[broken, working], observer=observer)
print(model.invoke("my secret prompt").response_metadata["failover"])
logging.getLogger("llm_failover").removeHandler(handler)
"""),
    md(
        "## Benches over time, from an observer\n\n"
        "An observer sees every decision, so it can draw the health of a chain. Here a "
        "three-model chain meets an outage on the simulator: the primary returns 503s from "
        "second 5, the second model runs out of quota (429 `insufficient_quota`, billing, "
        "so benched at once) from second 12, and both recover at second 30. Each failed probe "
        "benches a model for twice as long, so they come back a while after their providers "
        "do. The registry runs on a virtual clock, one second per request, so the picture is "
        "the same on any machine."
    ),
    code("""
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from failover_core.otel import instrument_metrics, uninstrument_metrics
from failover_core.simulator import ProviderSimulator

metrics_reader = InMemoryMetricReader()  # the same incident feeds the metrics drawn below
instrument_metrics(MeterProvider(metric_readers=[metrics_reader]))
logging.getLogger("llm_failover").setLevel(logging.ERROR)  # the observer prints them below
virtual = {"now": 0.0}
real_registry = fc.set_health_registry(fc.HealthRegistry(clock=lambda: virtual["now"]))
seen = []  # (seconds, event) as the observer received them
with ProviderSimulator() as lab:
    def child(name):
        return ChatOpenAI(model=name, base_url=lab.openai_base_url, api_key="sim", max_retries=0)

    chain = FailoverChatModel(
        models=[child("gpt-4o-mini"), child("gpt-4o"), child("gpt-4.1-nano")],
        # a transient bench starts at 5 s and doubles on each failed probe, up to 20 s
        max_retries=2, transient_cooldown=5, cooldown=20, backoff=lambda n: 0.01,
        observer=lambda e: seen.append((virtual["now"], e)),
    )
    script = {5: lambda: lab.fail("gpt-4o-mini", 503, times=None),
              12: lambda: lab.fail("gpt-4o", 429, code="insufficient_quota", times=None),
              30: lab.clear}
    for n in range(60):
        virtual["now"] = float(n)
        if n in script:
            script[n]()
        chain.invoke(f"request {n}")
fc.set_health_registry(real_registry)
logging.getLogger("llm_failover").setLevel(logging.NOTSET)
for t, e in seen:
    until = f"until t={e.until.timestamp():.0f}s" if e.until else "not benched"
    print(f"t={t:4.0f}s {e.model:<20} {e.kind.value:<16} HTTP {e.status}  {until}")
"""),
    code("""
%matplotlib inline
import matplotlib.pyplot as plt

keys = list(chain.keys)
kind_colors = {"transient": "tab:orange", "auth_dead": "tab:red",
               "request_specific": "tab:purple", "unknown": "tab:grey"}
fig, ax = plt.subplots(figsize=(10, 3.2))
for t, e in seen:
    y = keys.index(e.model)
    color = kind_colors[e.kind.value]
    if e.benched:
        ax.broken_barh([(t, e.until.timestamp() - t)], (y - 0.3, 0.6), color=color, alpha=0.5)
    ax.plot(t, y, marker="|", markersize=18, color=color)
    ax.annotate(f"{e.status}", (t, y), xytext=(2, 9), textcoords="offset points", fontsize=8)
for start, label in ((5, "503s start"), (12, "quota runs out"), (30, "both recover")):
    ax.axvline(start, color="grey", linestyle=":", linewidth=1)
    ax.text(start + 0.3, 0.03, label, transform=ax.get_xaxis_transform(), fontsize=8)
for kind, color in kind_colors.items():
    if any(e.kind.value == kind for _, e in seen):
        ax.broken_barh([], (0, 0), color=color, alpha=0.5, label=f"benched: {kind}")
ax.set_yticks(range(len(keys)), keys)
ax.set_ylim(-0.6, len(keys) - 0.1)
ax.invert_yaxis()  # the primary on top
ax.set_xlim(0, 60)
ax.set_xlabel("seconds (the registry's virtual clock, one request per second)")
ax.set_title("Benches over time, as an observer saw them")
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
fig.tight_layout()
"""),
    md(
        "## The same incident as metrics\n\n"
        "Dashboards read counters, not traces. `failover_core.otel.instrument_metrics()` "
        "records every chain's attempts, failovers, benches and probes through OpenTelemetry "
        "(here into the SDK's in-memory reader; in production a Prometheus or OTLP exporter). "
        "These are the counters the incident above produced:"
    ),
    code("""
def counter(name, *keys):
    out = {}
    for rm in metrics_reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:  # other attributes: summed
                        key = tuple(point.attributes[k] for k in keys)
                        out[key] = out.get(key, 0) + point.value
    return out


uninstrument_metrics()
attempts = counter("llm_failover.attempts", "llm_failover.model", "llm_failover.outcome")
failovers = counter("llm_failover.failovers", "llm_failover.from_model", "llm_failover.reason")
probes = counter("llm_failover.probes", "llm_failover.model", "llm_failover.result")
outcome_colors = {"success": "tab:green", "transient": "tab:orange", "auth_dead": "tab:red",
                  "request_specific": "tab:purple", "timeout": "tab:brown",
                  "unknown": "tab:grey", "cancelled": "black"}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
left = {key: 0 for key in keys}
for outcome, color in outcome_colors.items():
    values = [attempts.get((key, outcome), 0) for key in keys]
    if any(values):
        axes[0].barh(keys, values, left=[left[k] for k in keys], color=color, label=outcome)
        for key, v in zip(keys, values, strict=True):
            left[key] += v
axes[0].invert_yaxis()
axes[0].set_title("llm_failover.attempts")
axes[0].set_xlabel("attempts, by outcome")
axes[0].set_ylabel("model")
axes[0].legend(fontsize=8, frameon=False)
labels = [f"{m.split('/')[1]}: {r}" for m, r in failovers]
axes[1].barh(labels, list(failovers.values()), color="tab:blue")
axes[1].invert_yaxis()
axes[1].set_title("llm_failover.failovers (from, reason)")
axes[1].set_xlabel("requests that left the model")
plabels = [f"{m.split('/')[1]}: {r}" for m, r in probes]
axes[2].barh(plabels, list(probes.values()),
             color=["tab:green" if r == "recovered" else "tab:red" for _, r in probes])
axes[2].invert_yaxis()
axes[2].set_title("llm_failover.probes (model, result)")
axes[2].set_xlabel("probes")
for ax in axes:
    ax.xaxis.get_major_locator().set_params(integer=True)
fig.suptitle("The incident above, as OpenTelemetry counters")
fig.tight_layout()
print("failovers (from, reason):", failovers)
"""),
    md(
        "## Classification\n\nHow errors are read: specific codes on the exception or any of "
        "its causes (body, type, quota), then the HTTP status (refined by documented phrases), "
        "then transport errors; an error with none of these was raised before sending and "
        "skips without a bench. Here is a batch of the simulator's errors, raised by the real "
        "`openai` and `anthropic` SDKs, and the kind each is given:"
    ),
    code("""
import anthropic
import openai
from IPython.display import Markdown

cases = [
    {"status": 503}, {"status": 529}, {"status": 500}, {"status": 429}, {"status": 408},
    {"status": 401}, {"status": 403}, {"status": 404},
    {"status": 429, "code": "insufficient_quota"}, {"status": 400},
    {"status": 400, "code": "context_length_exceeded"},
    {"status": 400, "code": "content_policy_violation"}, {"status": 413}, {"status": 422},
]
results = {}  # (fault, sdk) -> (exception type, kind)
with ProviderSimulator() as probe:
    clients = {
        "openai": lambda: openai.OpenAI(
            base_url=probe.openai_base_url, api_key="sim", max_retries=0
        ).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]),
        "anthropic": lambda: anthropic.Anthropic(
            base_url=probe.anthropic_base_url, api_key="sim", max_retries=0
        ).messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "x"}]),
    }
    for fault in cases:
        label = " ".join(str(v) for v in fault.values())
        for sdk, call in clients.items():
            probe.clear()
            probe.fail("m", **fault)
            try:
                call()
            except Exception as exc:
                results[(label, sdk)] = (type(exc).__name__, fc.classify(exc).value)
rows = ["| fault | openai | anthropic |", "|---|---|---|"]
for fault in cases:
    label = " ".join(str(v) for v in fault.values())
    cells = [f"{results[(label, sdk)][0]}: **{results[(label, sdk)][1]}**" for sdk in clients]
    rows.append(f"| {label} | " + " | ".join(cells) + " |")
Markdown("\\n".join(rows))
"""),
    code("""
from matplotlib.patches import Patch, Rectangle

labels = [" ".join(str(v) for v in fault.values()) for fault in cases]
sdks = ["openai", "anthropic"]
fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.2))
for i, label in enumerate(labels):
    for j, sdk in enumerate(sdks):
        exc, kind = results[(label, sdk)]
        ax.add_patch(Rectangle((j, i), 0.97, 0.92, color=kind_colors[kind], alpha=0.55))
        ax.text(j + 0.48, i + 0.46, exc, ha="center", va="center", fontsize=8)
ax.set_xlim(0, len(sdks))
ax.set_ylim(len(labels), 0)
ax.set_xticks([j + 0.48 for j in range(len(sdks))], [f"{s} SDK" for s in sdks])
ax.xaxis.tick_top()
ax.set_yticks([i + 0.46 for i in range(len(labels))], labels)
ax.set_ylabel("simulated fault (status, code)")
ax.tick_params(length=0)
for side in ax.spines.values():
    side.set_visible(False)
ax.legend(handles=[Patch(color=c, alpha=0.55, label=k) for k, c in kind_colors.items()
                   if any(v[1] == k for v in results.values())],
          loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, title="classified as")
ax.set_title("How real SDK errors are classified", pad=28)
fig.tight_layout()
"""),
    md(
        "## Extending it\n\nA rule returns a kind, or `None` to defer. Add it globally, or per "
        "model with `rules=[...]`."
    ),
    code('''
class BudgetExceeded(Exception):
    """Our own gateway's error when a team runs out of budget."""


@fc.add_classifier_rule
def budget_is_billing(exc: BaseException) -> fc.ErrorKind | None:
    return fc.ErrorKind.AUTH_DEAD if isinstance(exc, BudgetExceeded) else None


print(fc.classify(BudgetExceeded()))
fc.remove_classifier_rule(budget_is_billing)
print(fc.classify(BudgetExceeded()))
'''),
    code("""
if sim is not None:
    sim.stop()
"""),
]

NOTEBOOKS = {
    "1-langchain-quickstart.ipynb": LANGCHAIN,
    "2-llamaindex-quickstart.ipynb": LLAMAINDEX,
    "3-outage-drawn.ipynb": OUTAGE,
    "4-operating-it.ipynb": OPERATING,
}


def build(name: str, cells: list[nbformat.NotebookNode], execute: bool = True) -> None:
    """Write one notebook from its cells, then execute it in a fresh kernel, offline.

    Deterministic where it can be: cell ids follow the cell's position, no execution
    timestamps are stored, and the incidents run on virtual clocks. A notebook that raises
    or draws no plot is an error, so a broken adapter cannot be committed silently.
    """
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.from_dict(dict(c)) for c in cells]
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name.split('-', 1)[0]}-{i:02d}"
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    path = OUT / name
    nbformat.write(nb, path)
    # The notebooks are linted and format-checked with the code: fix and format them first.
    subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--fix", "--quiet", str(path)], check=True
    )
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(path)], check=True)
    nb = nbformat.read(path, as_version=4)
    if execute:
        env_keys = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
        saved = {k: os.environ.pop(k) for k in env_keys if k in os.environ}
        try:
            NotebookClient(
                nb,
                timeout=300,
                kernel_name="python3",
                record_timing=False,
                resources={"metadata": {"path": str(OUT)}},
            ).execute()
        finally:
            os.environ.update(saved)
        images = [
            o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
        ]
        if not images:
            raise SystemExit(f"{name}: executed, but drew no plot")
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    # Names, or their starts: `build_notebooks.py 3` rebuilds 3-outage-drawn.ipynb only.
    wanted = [next(k for k in NOTEBOOKS if k.startswith(a)) for a in sys.argv[1:]]
    for notebook in wanted or list(NOTEBOOKS):
        build(notebook, NOTEBOOKS[notebook])
