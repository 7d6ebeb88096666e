"""Every Python block in the README runs as written."""

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
from pathlib import Path

import pytest
import tomllib

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("readme_block")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, str(README), "exec"), module.__dict__)


BASH = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
ROOT = README.parent


def _lines(marker: str) -> list[str]:
    return [ln.split("#")[0].strip() for b in BASH for ln in b.splitlines() if marker in ln]


def test_readme_scripts_exist() -> None:
    scripts = {ln.split()[1] for ln in _lines("bash scripts/")}
    assert scripts >= {"scripts/demo.sh", "scripts/test.sh"}
    for script in scripts | {"scripts/bench.sh"}:
        assert (ROOT / script).is_file(), script
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text(), "CI runs the README's tests"


def test_readme_extras_exist() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    lines = [ln for ln in _lines("pip install") if "llm-failover[" in ln]
    named = [re.search(r"llm-failover\[([\w,]+)\]", ln) for ln in lines]
    assert named and all(m is not None and set(m.group(1).split(",")) <= set(extras) for m in named)


def test_readme_simulator_cli_block_runs(tmp_path: Path) -> None:
    [block] = [b for b in BASH if "llm-failover-sim" in b]
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
