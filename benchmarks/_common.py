"""Shared pieces: fake chat models, percentiles, the table type, machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from failover_core.simulator import RemoteSimulator

# LiteLLM fetches a model price list from the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


class FastChat(BaseChatModel):
    """A chat model that answers at once: what is left to measure is the wrapper."""

    answer: str = "ok"

    @property
    def _llm_type(self) -> str:
        return "fast"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.answer))])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return self._generate(messages)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Table:
    """One section of the results: a title, columns, rows, and notes."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "---|" * len(self.columns),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def machine() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    packages = ["langchain-core", "llama-index-core", "openai", "litellm"]
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {sys.version.split()[0]}; " + ", ".join(f"{p} {version(p)}" for p in packages)
    )


@contextlib.contextmanager
def simulator_process() -> Iterator[RemoteSimulator]:
    """The simulator in a process of its own, so it does not share a GIL with the clients."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "failover_core.simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        sim = RemoteSimulator(base_url)
        yield sim
        sim.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def litellm_router(openai_base_url: str, primary: str, backup: str, **options: Any) -> Any:
    """LiteLLM's Router over two OpenAI-compatible deployments, the backup as fallback."""
    import litellm
    from litellm import Router

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    params = {"api_base": openai_base_url, "api_key": "sim"}
    return Router(
        model_list=[
            {"model_name": "primary", "litellm_params": {"model": f"openai/{primary}", **params}},
            {"model_name": "backup", "litellm_params": {"model": f"openai/{backup}", **params}},
        ],
        fallbacks=[{"primary": ["backup"]}],
        **options,
    )
