"""Every notebook runs top to bottom in a fresh kernel, offline, and draws what it teaches."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# What each notebook's plots show, in its printed output: the story it must tell.
STORIES = {
    "1-langchain-quickstart": [
        "the last request was served by openai/gpt-4o-mini",
        "probes that brought the primary back: requests [19]",  # marked on the plot
    ],
    "2-llamaindex-quickstart": [
        "step 1: llm  gpt-4.1-nano   call multiply(a=6, b=7)   [openai/gpt-4o-mini failed (401)]",
        "step 2: tool multiply",
        "[openai/gpt-4o-mini skipped: benched]",
        "you said: What happens to a benched model?",
    ],
    "3-outage-drawn": [
        "380 requests; served at the end by openai/gpt-4o-mini",
        "benched openai/gpt-4o-mini: requests 301 to 331",  # the hang: two timeouts
    ],
    "4-operating-it": [
        "openai/gpt-4o        auth_dead        HTTP 429",
        # Every failover counted, whichever model it went to (three, not one); the quota's
        # bench is the whole cooldown, so one request leaves gpt-4o for it.
        "failovers (from, reason): {('openai/gpt-4o-mini', 'exhausted'): 3, "
        "('openai/gpt-4o', 'auth_dead'): 1}",
    ],
}


def images(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )


def printed(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_there_are_four_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["1-", "2-", "3-", "4-"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline_and_draws_its_story(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):  # the simulator, never the real APIs
        monkeypatch.delenv(key, raising=False)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    text = printed(nb)
    assert "offline" in text or "requests;" in text, "it ran on the simulator"
    assert images(nb) >= 1, "a notebook people open to look at has a plot"
    for line in STORIES[path.stem]:
        assert line in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_carries_its_outputs_and_plots(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    printing = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and any(line.startswith("print(") for line in c.source.splitlines())
    ]
    assert printing and all(c.outputs for c in printing), f"{path.name} lacks its outputs"
    assert images(nb) >= 1, f"{path.name} was committed without its plots"
    for line in STORIES[path.stem]:
        assert line in printed(nb)


PUBLIC = {
    "failover_core",
    "failover_core.simulator",
    "failover_core.otel",
    "failover_core.redis_store",
}


def code_cells(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_import_only_public_modules(path: Path) -> None:
    imported = {
        m.group(1)
        for source in code_cells(path)
        for m in re.finditer(r"^\s*(?:from|import) (failover_core[\w.]*)", source, re.M)
    }
    assert imported <= PUBLIC, f"{path.name} imports {sorted(imported - PUBLIC)}"


def test_the_docs_count_notebook_3s_requests_as_it_does() -> None:
    [path] = [p for p in NOTEBOOKS if p.stem == "3-outage-drawn"]
    [count] = re.findall(r"(\d+) requests; served at the end", printed(nbformat.read(path, 4)))
    guide = (ROOT / "docs" / "guides" / "notebooks.md").read_text()
    assert f"a scripted incident over {count} requests" in guide
    assert 'fig.suptitle(f"An outage through a three-model failover chain: {len(rows)}' in "".join(
        code_cells(path)
    ), "the title counts the requests it drew"


def test_every_count_axis_has_whole_ticks_a_label_and_a_legend_for_its_colours() -> None:
    cells = [source for path in NOTEBOOKS for source in code_cells(path)]
    histograms = [c for c in cells if ".hist(" in c]
    assert histograms and all("MaxNLocator(integer=True)" in c for c in histograms)
    assert all("overlap" in c for c in histograms if c.count(".hist(") > 1)
    [metrics] = [c for c in cells if "llm_failover.failovers" in c]
    assert metrics.count("set_xlabel(") >= 3 and "set_params(integer=True)" in metrics
