"""Every Python block in the README and the docs runs as written.

The quickstarts against the real providers read their keys and endpoints from the
environment, as the SDKs do; here the environment points at the simulator, so they run
verbatim, offline (``OPENAI_API_BASE``, ``ANTHROPIC_API_URL`` and their kin).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

from failover_core.simulator import ProviderSimulator

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = {lang: re.compile(rf"```{lang}\n(.*?)```", re.DOTALL) for lang in ("python", "bash")}


def _blocks(lang: str, pages: list[Path]) -> list[tuple[Path, str]]:
    return [(page, code) for page in pages for code in FENCE[lang].findall(page.read_text())]


BLOCKS = _blocks("python", PAGES)
README_BLOCKS = _blocks("python", [README])
BASH = [code for _, code in _blocks("bash", PAGES)]
README_BASH = [code for _, code in _blocks("bash", [README])]


def _block_id(page: Path, code: str) -> str:
    same = [c for p, c in BLOCKS if p == page]
    return f"{page.relative_to(ROOT)}:{same.index(code)}"


def test_the_readme_has_python_examples() -> None:
    assert len(README_BLOCKS) >= 4
    assert len(BLOCKS) > len(README_BLOCKS), "the guides' examples are collected too"


def test_the_readme_is_a_front_page_of_at_most_350_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 350
    text = "\n".join(lines)
    for must in ("## Quickstart: LangChain", "## Quickstart: LlamaIndex", "## Glossary"):
        assert must in text
    # The quickstarts use the real providers: no simulator in them.
    quick = [code for code in FENCE["python"].findall(text) if "FailoverChatModel(" in code]
    assert "ProviderSimulator" not in quick[0] and "base_url" not in quick[0]
    for word in ("bench", "probe", "strike", "model key", "cooldown", "hedge", "resume"):
        assert re.search(rf"^\| \*\*{word}\*\* \|", text, re.MULTILINE), word


def test_every_readme_link_to_the_docs_exists() -> None:
    targets = re.findall(r"\]\(((?:docs/|CONTRIBUTING)[^)#]*)", README.read_text())
    assert len(targets) >= 15
    for target in targets:
        assert (ROOT / target).is_file(), target


@pytest.fixture
def providers_in_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderSimulator]:
    """The environment a real-provider quickstart reads, pointing at the simulator."""
    with ProviderSimulator() as sim:
        for name in ("OPENAI_API_BASE", "OPENAI_BASE_URL"):
            monkeypatch.setenv(name, sim.openai_base_url)
        for name in ("ANTHROPIC_API_URL", "ANTHROPIC_BASE_URL"):
            monkeypatch.setenv(name, sim.anthropic_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        yield sim


@pytest.mark.parametrize(("page", "code"), BLOCKS, ids=[_block_id(p, c) for p, c in BLOCKS])
def test_doc_block_runs(
    page: Path, code: str, monkeypatch: pytest.MonkeyPatch, providers_in_env: ProviderSimulator
) -> None:
    module = types.ModuleType("readme_block")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, str(page), "exec"), module.__dict__)


def test_the_real_provider_quickstarts_reach_the_providers(
    providers_in_env: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    quickstarts = [c for c in FENCE["python"].findall(README.read_text()) if "Keys come" in c]
    assert len(quickstarts) == 2
    for code in quickstarts:
        module = types.ModuleType("readme_block")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        exec(compile(code, str(README), "exec"), module.__dict__)
    assert providers_in_env.calls("gpt-4o-mini") == 2, "one request from each quickstart"


def _lines(marker: str, blocks: list[str]) -> list[str]:
    return [ln.split("#")[0].strip() for b in blocks for ln in b.splitlines() if marker in ln]


def test_readme_scripts_exist() -> None:
    scripts = {ln.split()[1] for ln in _lines("bash scripts/", README_BASH)}
    assert scripts >= {"scripts/demo.sh", "scripts/test.sh"}
    for script in scripts | {"scripts/bench.sh"}:
        assert (ROOT / script).is_file(), script
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text(), "CI runs the README's tests"


def test_the_test_command_builds_the_docs_strictly() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "mkdocs build --strict" in script and "docs" in script.split("EXTRAS=")[1].split()[0]


def test_readme_extras_exist() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    lines = [ln for ln in _lines("pip install", BASH) if "llm-failover[" in ln]
    named = [re.search(r"llm-failover\[([\w,]+)\]", ln) for ln in lines]
    assert named and all(m is not None and set(m.group(1).split(",")) <= set(extras) for m in named)


def test_the_bench_script_writes_the_docs_page() -> None:
    from benchmarks import run

    assert run.PAGE == ROOT / "docs" / "benchmarks.md"
    text = run.PAGE.read_text()
    assert run.START in text and run.END in text
    assert run.START not in README.read_text(), "the tables live in the docs, not the README"


def test_readme_simulator_cli_block_runs(tmp_path: Path) -> None:
    [block] = [b for b in BASH if "llm-failover-sim --port" in b]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    lines = [ln.split(" #")[0].strip().replace("8099", port) for ln in block.splitlines()]
    cli = shutil.which("llm-failover-sim", path=str(Path(sys.executable).parent))
    assert cli is not None, "the package installs the llm-failover-sim command"
    server = subprocess.Popen(
        [cli, *shlex.split(lines[0].rstrip("&"))[1:]], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and "simulator on" in server.stdout.readline()
        if shutil.which("curl") is None:
            if os.environ.get("CI"):
                pytest.fail("curl is missing: .ci/run installs it")
            pytest.skip("curl is not installed")
        outputs = [
            subprocess.run(shlex.split(ln), capture_output=True, text=True, check=True).stdout
            for ln in lines[1:]
            if ln
        ]
        state_after_fault = json.loads(outputs[1])
        assert state_after_fault["plans"]["gpt-4o"]["faults"][0]["status"] == 401
        assert state_after_fault["plans"]["gpt-4o-mini"]["faults"][0]["times"] is None
        assert json.loads(outputs[2])["plans"] == {}
    finally:
        server.terminate()
        server.wait(timeout=10)
