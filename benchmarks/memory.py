"""Resident memory over many requests through a healthy chain: flat, not growing."""

from __future__ import annotations

import gc
from pathlib import Path

from llama_index.core.llms import ChatMessage, MockLLM

from langchain_failover import FailoverChatModel
from llamaindex_failover import FailoverLLM

from ._common import FastChat, Table


def rss_mib() -> float:
    """Current resident set size, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(requests: int = 100_000, checkpoints: int = 10) -> Table:
    lc = FailoverChatModel(models={"fast/a": FastChat(), "fast/b": FastChat()})
    li = FailoverLLM(llms={"mock/a": MockLLM(), "mock/b": MockLLM()})
    messages = [ChatMessage(role="user", content="hi")]
    step = requests // checkpoints
    table = Table(
        f"Memory: resident set over {requests:,} requests through a healthy chain",
        [
            "adapter",
            *[f"{(i + 1) * step // 1000}k" for i in range(checkpoints)],
            "growth after the first checkpoint",
        ],
    )
    for name, call in (
        ("FailoverChatModel", lambda: lc.invoke("hi")),
        ("FailoverLLM", lambda: li.chat(messages)),
    ):
        samples = []
        for _ in range(checkpoints):
            for _ in range(step):
                call()
            gc.collect()
            samples.append(rss_mib())
        growth = samples[-1] - samples[0]
        table.rows.append([name, *[f"{s:.0f}" for s in samples], f"{growth:+.1f} MiB"])
    table.notes.append("MiB after each checkpoint; fake children, so only the wrappers allocate.")
    return table
