"""Every documented error of every provider, through every client that reaches it.

Each row is a real HTTP response on loopback; the SDK (or its LangChain, LlamaIndex or
LiteLLM integration) builds its own exception from it, and the kind must be the same
whichever wrapper carries it.
"""

from __future__ import annotations

import pytest

import failover_core as fc
from tests.providers._cases import CASES, Case
from tests.providers._clients import CLIENTS, Call, Client
from tests.providers._server import ErrorServer, Reply, chain_of, raised_by

ROWS = [
    pytest.param(client, case, id=f"{client.name}-{case.id}")
    for provider, clients in CLIENTS.items()
    for client in clients
    for case in CASES[provider]
]

_calls: dict[str, Call] = {}


def _call(client: Client, url: str) -> Call:
    for module in client.needs:
        pytest.importorskip(module)
    reason = client.broken()
    if reason is not None:
        pytest.skip(reason)
    if client.name not in _calls:
        _calls[client.name] = client.make(url)
    return _calls[client.name]


@pytest.mark.parametrize(("client", "case"), ROWS)
def test_documented_error_gets_its_kind(
    error_server: ErrorServer, client: Client, case: Case
) -> None:
    call = _call(client, error_server.url)
    error_server.reply = Reply(case.status, case.body, case.headers, case.content_type)
    exc = raised_by(call, error_server)
    assert fc.classify(exc) is case.kind, chain_of(exc)
