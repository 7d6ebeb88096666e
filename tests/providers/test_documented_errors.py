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
from tests.providers._server import ErrorServer, Reply

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


def chain_of(exc: BaseException) -> str:
    """The exception chain, for a failure message that shows what the wrapper raised."""
    parts, seen = [], set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        parts.append(f"{type(link).__module__}.{type(link).__name__}: {str(link)[:160]}")
        link = link.__cause__ or link.__context__
    return " <- ".join(parts)


def raised_by(call: Call, server: ErrorServer) -> BaseException:
    sent = len(server.paths)
    try:
        call()
    except Exception as exc:
        assert len(server.paths) > sent, f"raised before any request: {chain_of(exc)}"
        return exc
    raise AssertionError("the client did not raise")


@pytest.mark.parametrize(("client", "case"), ROWS)
def test_documented_error_gets_its_kind(
    error_server: ErrorServer, client: Client, case: Case
) -> None:
    call = _call(client, error_server.url)
    error_server.reply = Reply(case.status, case.body, case.headers, case.content_type)
    exc = raised_by(call, error_server)
    assert fc.classify(exc) is case.kind, chain_of(exc)
