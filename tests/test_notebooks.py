"""Every notebook runs top to bottom in a fresh kernel, offline."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_four_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["1-", "2-", "3-", "4-"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "offline" in text or "requests in" in text, "it ran on the simulator"


def test_committed_notebooks_carry_their_outputs() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        printing = [
            c
            for c in nb.cells
            if c.cell_type == "code"
            and any(line.startswith("print(") for line in c.source.splitlines())
        ]
        assert printing and all(c.outputs for c in printing), (
            f"{path.name} was committed without outputs"
        )
    outage = nbformat.read(NOTEBOOKS[2], as_version=4)
    assert any(
        "image/png" in o.get("data", {})
        for c in outage.cells
        if c.cell_type == "code"
        for o in c.outputs
    ), "the outage plot is committed"
