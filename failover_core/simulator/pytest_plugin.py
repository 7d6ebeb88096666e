"""pytest fixtures: ``provider_sim``, a fresh-state simulator per test.

Enable with ``pytest_plugins = ["failover_core.simulator.pytest_plugin"]`` in a
``conftest.py``. One server runs per session; each test gets it with no faults, no
latency and zero counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._server import ProviderSimulator


@pytest.fixture(scope="session")
def provider_sim_server() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def provider_sim(provider_sim_server: ProviderSimulator) -> Iterator[ProviderSimulator]:
    provider_sim_server.reset()
    yield provider_sim_server
    provider_sim_server.reset()
