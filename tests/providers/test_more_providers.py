"""The held-out corpus: providers and servers the rules were not written against, each
through every client that reaches it (see ``_more_cases`` and ``_more_clients``)."""

from __future__ import annotations

import pytest

import failover_core as fc
from tests.providers._more_cases import MORE_CASES
from tests.providers._more_clients import MORE_CLIENTS
from tests.providers._server import ErrorServer, Reply, chain_of, raised_by
from tests.providers.test_documented_errors import _call

ROWS = [
    pytest.param(client, case, id=f"{client.name}-{case.id}")
    for provider, clients in MORE_CLIENTS.items()
    for client in clients
    for case in MORE_CASES[provider]
]


@pytest.mark.parametrize(("client", "case"), ROWS)
def test_held_out_error_gets_its_kind(
    error_server: ErrorServer, client: object, case: object
) -> None:
    call = _call(client, error_server.url)  # type: ignore[arg-type]
    error_server.reply = Reply(case.status, case.body, case.headers, case.content_type)  # type: ignore[attr-defined]
    exc = raised_by(call, error_server)
    assert fc.classify(exc) is case.kind, chain_of(exc)  # type: ignore[attr-defined]
