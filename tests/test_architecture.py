"""The floor plan: no import circles, stores that do not know the registry, the public
import paths that existed before the package had folders."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("failover_core", "langchain_failover", "llamaindex_failover")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of ours that ``name`` imports, wherever the import stands (type-checking
    blocks and function bodies included: a circle hidden in a function is still a circle)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                target = f"{base}.{alias.name}"
                out.add(target if target in modules else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "failover_core.flow.engine" in graph
    assert "failover_core.health.registry" in graph["failover_core.flow.engine"]
    assert "failover_core.drivers.chain" in graph["failover_core"]


def test_no_module_imports_itself_back_through_others() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


@pytest.mark.parametrize(
    "store",
    [
        "failover_core.health.memory",
        "failover_core.health.failopen",
        "failover_core.health.redis.store",
        "failover_core.health.redis.codec",
        "failover_core.health.redis.tally",
    ],
)
def test_no_store_imports_the_registry(store: str) -> None:
    graph = _graph()
    assert "failover_core.health.registry" not in graph[store]
    assert "failover_core.health.default" not in graph[store]


def test_the_flow_does_no_io() -> None:
    """The sans-IO flow imports neither drivers nor concrete stores."""
    graph = _graph()
    for module in ("failover_core.flow.engine", "failover_core.flow.hedging"):
        assert not {m for m in graph[module] if ".drivers" in m or ".health.redis" in m}


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("failover_core.redis_store", "RedisHealthStore"),
        ("failover_core.redis_store", "HedgeTally"),
        ("failover_core.otel", "instrument_metrics"),
        ("failover_core.otel", "FailoverMetrics"),
        ("failover_core.simulator", "ProviderSimulator"),
        ("failover_core.cli", "main"),
        ("langchain_failover", "FailoverChatModel"),
        ("langchain_failover.chat_models", "FailoverChatModel"),
        ("llamaindex_failover", "FailoverLLM"),
        ("llamaindex_failover.llms", "FailoverLLM"),
    ],
)
def test_public_import_paths_stay(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)
