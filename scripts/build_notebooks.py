"""Write the notebooks in notebooks/ from the cells below, then run them to store outputs.

    .venv/bin/python scripts/build_notebooks.py          # rebuild and re-execute all four

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
        "## Decisions as LangChain events\n\nEvery decision also reaches callback handlers as "
        'the custom event `"failover"`, so it shows in `astream_events` and in LangSmith '
        "traces, where the child model's run is nested under the failover run."
    ),
    code("""
from failover_core import unbench_model

unbench_model(primary_key := model.keys[0])  # give the primary another chance
async for event in model.astream_events("hello again", version="v2"):
    if event["event"] == "on_custom_event":
        print(event["name"], event["data"]["model"], event["data"]["kind"],
              "->", event["data"]["next_model"])
    elif event["event"] == "on_chat_model_start":
        print("start", event["name"])
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
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding

index = VectorStoreIndex.from_documents(
    [Document(text="A failover model sends each request to the first healthy model."),
     Document(text="A benched model rests for its cooldown before it is tried again.")],
    embed_model=MockEmbedding(embed_dim=8),
)
response = index.as_query_engine(llm=llm).query("What happens to a benched model?")
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

A scripted incident through a LangChain failover model, a few hundred requests long:

1. all healthy;
2. the primary (`gpt-4o-mini`) starts returning 503s;
3. the backup's key is revoked (401), so the third model carries the load;
4. the providers recover.

When a cooldown ends, one request probes the model: a failed probe benches it again for
twice as long (the longer bars), a successful one brings it back for everyone.

The incident needs fault injection, so this notebook always runs on the simulator.
"""),
    code("""
import time

from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel

sim = ProviderSimulator().start()
sim.set_latency("*", 0.004)
children = [
    ChatOpenAI(model="gpt-4o-mini", base_url=sim.openai_base_url, api_key="sim", max_retries=0),
    ChatAnthropic(model="claude-haiku-4-5", base_url=sim.anthropic_base_url, api_key="sim",
                  max_retries=0),
    ChatOpenAI(model="gpt-4.1-nano", base_url=sim.openai_base_url, api_key="sim", max_retries=0),
]
benches = []  # (model, start, end) in seconds since the incident began
model = FailoverChatModel(
    models=children, max_retries=2, cooldown=1.0, backoff=lambda n: 0.02,
    observer=lambda e: e.benched and benches.append((e.model, time.time(), e.until.timestamp())),
)
model.keys
"""),
    code("""
script = {
    60: ("primary returns 503", lambda: sim.fail("gpt-4o-mini", 503, times=None)),
    140: ("backup gets 401", lambda: sim.fail("claude-haiku-4-5", 401, times=None)),
    220: ("providers recover", sim.clear),
}
rows, phases = [], []
t0 = time.time()
for n in range(300):
    if n in script:
        title, action = script[n]
        action()
        phases.append((time.time() - t0, title))
    started = time.perf_counter()
    answer = model.invoke(f"request {n}")
    meta = answer.response_metadata["failover"]
    rows.append((time.time() - t0, meta["model"], (time.perf_counter() - started) * 1000,
                 meta["failed_attempts"]))
    time.sleep(0.01)
benches = [(m, start - t0, end - t0) for m, start, end in benches]
sim.stop()
print(f"{len(rows)} requests in {rows[-1][0]:.1f}s; calls per model: {sim.state.call_counts()}")
"""),
    code("""
%matplotlib inline
import matplotlib.pyplot as plt

keys = list(model.keys)
colors = dict(zip(keys, ["tab:green", "tab:orange", "tab:blue"], strict=True))
fig, (served_ax, latency_ax, bench_ax) = plt.subplots(3, 1, figsize=(11, 8), sharex=True,
                                                      gridspec_kw={"height_ratios": [2, 2, 1.4]})
for key in keys:
    points = [(t, keys.index(m)) for t, m, _, _ in rows if m == key]
    served_ax.scatter([p[0] for p in points], [p[1] for p in points], s=8, color=colors[key],
                      label=key)
served_ax.set_yticks(range(len(keys)), keys)
served_ax.set_title("which model served each request")
ts = [r[0] for r in rows]
latency_ax.scatter(ts, [r[2] for r in rows], s=6, c=[colors[r[1]] for r in rows])
latency_ax.set_yscale("log")
latency_ax.set_ylabel("latency (ms)")
latency_ax.set_title("latency per request (spikes: retries before a failover)")
for key, start, end in benches:
    bench_ax.broken_barh([(start, end - start)], (keys.index(key) - 0.35, 0.7),
                         color=colors[key], alpha=0.6)
bench_ax.set_yticks(range(len(keys)), keys)
bench_ax.set_ylim(-0.6, len(keys) - 0.4)
bench_ax.set_title("when each model was benched")
bench_ax.set_xlabel("seconds since the incident began")
for ax in (served_ax, latency_ax, bench_ax):
    for t, _title in phases:
        ax.axvline(t, color="grey", linestyle=":", linewidth=1)
for t, title in phases:
    served_ax.annotate(title, (t, len(keys) - 0.6), fontsize=8, rotation=0, xytext=(3, 0),
                       textcoords="offset points")
fig.tight_layout()
"""),
    code("""
from collections import Counter

failovers = sum(1 for r in rows if r[3])
print("served:", dict(Counter(r[1] for r in rows)))
print(f"requests that needed a failover or a retry: {failovers} of {len(rows)}")
print("benches:", [(m, round(s, 2), round(e, 2)) for m, s, e in benches])
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
        "## Classification\n\nHow errors are read: specific codes on the exception or any of "
        "its causes (body, type, quota), then the HTTP status (refined by documented phrases), "
        "then transport errors; an error with none of these was raised before sending and "
        "skips without a bench. Here are the simulator's errors, raised by the real `openai` SDK:"
    ),
    code("""
import openai
from IPython.display import Markdown

from failover_core.simulator import ProviderSimulator

cases = [
    {"status": 503}, {"status": 429}, {"status": 529}, {"status": 401}, {"status": 404},
    {"status": 429, "code": "insufficient_quota"}, {"status": 400},
    {"status": 400, "code": "context_length_exceeded"},
    {"status": 400, "code": "content_policy_violation"},
]
rows = ["| fault | exception | status | kind |", "|---|---|---|---|"]
with ProviderSimulator() as probe:
    client = openai.OpenAI(base_url=probe.openai_base_url, api_key="sim", max_retries=0)
    for fault in cases:
        probe.fail("m", **fault)
        try:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        except openai.APIError as exc:
            rows.append(f"| {fault} | {type(exc).__name__} | {fc.status_of(exc)} | "
                        f"{fc.classify(exc).value} |")
Markdown("\\n".join(rows))
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
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = OUT / name
    nbformat.write(nb, path)
    # The notebooks are linted and format-checked with the code: format them first.
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(path)], check=True)
    nb = nbformat.read(path, as_version=4)
    if execute:
        env_keys = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
        saved = {k: os.environ.pop(k) for k in env_keys if k in os.environ}
        try:
            NotebookClient(
                nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(OUT)}}
            ).execute()
        finally:
            os.environ.update(saved)
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    wanted = sys.argv[1:] or list(NOTEBOOKS)
    for notebook in wanted:
        build(notebook, NOTEBOOKS[notebook])
