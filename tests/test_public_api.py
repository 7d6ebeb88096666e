"""The public surface: complete, sorted, and free of the frameworks in the core."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

PACKAGES = ["failover_core", "failover_core.simulator", "langchain_failover", "llamaindex_failover"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_every_public_name_is_exported(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and n not in {"annotations"}
    }
    assert public <= set(exported), f"not in __all__: {sorted(public - set(exported))}"
    for exported_name in exported:
        assert hasattr(module, exported_name)


def test_core_imports_neither_framework() -> None:
    code = (
        "import sys, failover_core, failover_core.simulator; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'langchain', 'llama_index')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
