"""A missing extra is named, with the pip line that installs it."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_without(modules: list[str], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where ``modules`` cannot be imported."""
    hide = "".join(f"sys.modules[{m!r}] = None; " for m in modules)
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {hide}{code}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("package", "framework", "extra"),
    [
        ("langchain_failover", "langchain_core", "langchain"),
        ("llamaindex_failover", "llama_index", "llamaindex"),
    ],
)
def test_importing_an_adapter_without_its_framework_names_the_extra(
    package: str, framework: str, extra: str
) -> None:
    out = run_without([framework], f"import {package}")
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert f'pip install "llm-failover[{extra}]"' in last
    assert framework in last


def test_the_simulator_cli_without_the_sim_extra_says_which_extra_to_install() -> None:
    out = run_without(
        ["uvicorn"],
        "from failover_core.simulator.__main__ import main; sys.exit(main(['--port', '0']))",
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "llm-failover-sim needs the [sim] extra ('uvicorn' is not installed): "
        'pip install "llm-failover[sim]"'
    )


def test_the_simulator_class_without_the_sim_extra_says_which_extra_to_install() -> None:
    out = run_without(["uvicorn"], "from failover_core.simulator import ProviderSimulator")
    assert 'pip install "llm-failover[sim]"' in out.stderr.strip().splitlines()[-1]
    # The fault plans and the payload sampler need nothing extra.
    ok = run_without(["uvicorn"], "from failover_core.simulator import Fault, sample_from_schema")
    assert ok.returncode == 0, ok.stderr
