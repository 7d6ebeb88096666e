"""The held-out corpus: providers and servers the rules were not written against, each
through every client that reaches it (see ``_more_cases`` and ``_more_clients``)."""

from __future__ import annotations

import json

import pytest

import failover_core as fc
from tests.providers._cases import T
from tests.providers._clients import HI
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


def _sse(*events: dict[str, object]) -> str:
    return "".join(f"data: {json.dumps(event)}\n\n" for event in events)


def _failed(code: str, message: str) -> dict[str, object]:
    """A Responses API ``response.failed`` event."""
    response = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4.1",
        "status": "failed",
        "output": [],
        "error": {"code": code, "message": message},
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    return {"type": "response.failed", "sequence_number": 1, "response": response}


RESPONSE_EVENTS = [
    pytest.param(
        _failed("server_error", "The model failed to generate a response."),
        T,
        id="failed-server_error",
    ),
    pytest.param(
        _failed("rate_limit_exceeded", "Rate limit reached for gpt-4.1."), T, id="failed-rate_limit"
    ),
    pytest.param(
        {
            "type": "error",
            "sequence_number": 1,
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached.",
            "param": None,
        },
        T,
        id="error-rate_limit",
    ),
]


@pytest.mark.parametrize(("event", "kind"), RESPONSE_EVENTS)
def test_a_responses_stream_event_decides_by_its_code(
    error_server: ErrorServer, event: dict[str, object], kind: fc.ErrorKind
) -> None:
    """LangChain raises the event as a bare ValueError carrying its code."""
    pytest.importorskip("langchain_openai")
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model="gpt-4.1",
        base_url=error_server.url + "/v1",
        api_key="k",  # type: ignore[arg-type]
        max_retries=0,
        use_responses_api=True,
    )
    error_server.reply = Reply(200, _sse(event), content_type="text/event-stream")
    exc = raised_by(lambda: list(model.stream("hi")), error_server)
    assert type(exc) is ValueError, chain_of(exc)
    assert fc.classify(exc) is kind, chain_of(exc)


def _chunk(**extra: object) -> dict[str, object]:
    return {"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m-1", **extra}


OPENROUTER_MID_STREAM = _sse(
    _chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]),
    _chunk(
        provider="Together",
        error={"code": "server_error", "message": "Provider disconnected unexpectedly"},
        choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    ),
)


@pytest.mark.parametrize("client", ["openai", "langchain-openai"])
def test_an_openrouter_mid_stream_error_chunk_is_transient(
    error_server: ErrorServer, client: str
) -> None:
    pytest.importorskip("langchain_openai")
    import openai
    from langchain_openai import ChatOpenAI

    url = error_server.url + "/api/v1"
    if client == "openai":
        sdk = openai.OpenAI(base_url=url, api_key="k", max_retries=0)
        call = lambda: list(sdk.chat.completions.create(model="m-1", messages=HI, stream=True))  # type: ignore[arg-type]  # noqa: E731
    else:
        model = ChatOpenAI(model="m-1", base_url=url, api_key="k", max_retries=0)  # type: ignore[arg-type]
        call = lambda: list(model.stream("hi"))  # noqa: E731
    error_server.reply = Reply(200, OPENROUTER_MID_STREAM, content_type="text/event-stream")
    exc = raised_by(call, error_server)
    assert fc.status_of(exc) is None
    assert fc.classify(exc) is T, chain_of(exc)
