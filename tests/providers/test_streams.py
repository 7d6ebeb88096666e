"""Errors that arrive after a 200: Bedrock's mid-stream exceptions (AWS event stream, parsed
by botocore itself) and LlamaIndex's Gemini safety blocks (raised from a 200 response)."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest

import failover_core as fc
from tests.providers._server import ErrorServer, Reply, chain_of, raised_by

T, A, R = fc.ErrorKind.TRANSIENT, fc.ErrorKind.AUTH_DEAD, fc.ErrorKind.REQUEST_SPECIFIC


def _event(headers: dict[str, str], payload: Any) -> bytes:
    """One AWS event-stream message: prelude, string headers, JSON payload, two CRCs."""
    head = b"".join(
        bytes([len(name)])
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value))
        + value.encode()
        for name, value in headers.items()
    )
    body = json.dumps(payload).encode()
    total = 12 + len(head) + len(body) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + head + body
    return message + struct.pack(">I", zlib.crc32(message))


def converse_stream(exception: str, message: str) -> bytes:
    """A ConverseStream body: a start, some text, then the exception event."""
    event = {":message-type": "event", ":content-type": "application/json"}
    return b"".join(
        [
            _event({**event, ":event-type": "messageStart"}, {"role": "assistant"}),
            _event(
                {**event, ":event-type": "contentBlockDelta"},
                {"contentBlockIndex": 0, "delta": {"text": "Hel"}},
            ),
            _event(
                {
                    ":message-type": "exception",
                    ":exception-type": exception,
                    ":content-type": "application/json",
                },
                {"message": message},
            ),
        ]
    )


STREAM_ERRORS = [
    ("throttlingException", "Too many requests, please wait before trying again.", T),
    ("modelStreamErrorException", "The model stream failed.", T),
    ("internalServerException", "An internal server error occurred.", T),
    ("serviceUnavailableException", "Bedrock is unable to process your request.", T),
    ("validationException", "Input is too long for requested model.", R),
]
_MODEL = "anthropic.claude-3-5-sonnet-20241022-v2:0"
_AWS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}


def _boto_stream(url: str) -> Any:
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}),
        **_AWS,
    )
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    return lambda: list(client.converse_stream(modelId=_MODEL, messages=messages)["stream"])


def _langchain_stream(url: str) -> Any:
    pytest.importorskip("boto3")
    pytest.importorskip("langchain_aws")
    from botocore.config import Config
    from langchain_aws import ChatBedrockConverse

    model = ChatBedrockConverse(
        model=_MODEL,
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}),
        **_AWS,  # type: ignore[arg-type]
    )
    return lambda: list(model.stream("hi"))


def _llamaindex_stream(url: str) -> Any:
    pytest.importorskip("boto3")
    pytest.importorskip("llama_index.llms.bedrock_converse")
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.bedrock_converse import BedrockConverse

    llm = BedrockConverse(
        model=_MODEL, region_name="us-east-1", endpoint_url=url, max_retries=1, **_AWS
    )
    return lambda: list(llm.stream_chat([ChatMessage(role="user", content="hi")]))


@pytest.mark.parametrize("make", [_boto_stream, _langchain_stream, _llamaindex_stream])
@pytest.mark.parametrize(("code", "message", "kind"), STREAM_ERRORS)
def test_bedrock_mid_stream_exception_gets_its_kind(
    error_server: ErrorServer, make: Any, code: str, message: str, kind: fc.ErrorKind
) -> None:
    call = make(error_server.url)
    error_server.reply = Reply(
        200, converse_stream(code, message), content_type="application/vnd.amazon.eventstream"
    )
    exc = raised_by(call, error_server)
    assert any(type(link).__name__ == "EventStreamError" for link in _links(exc)), chain_of(exc)
    assert fc.classify(exc) is kind, chain_of(exc)


def _links(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in out:
        out.append(link)
        link = link.__cause__ or link.__context__
    return out


_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
]
GEMINI_BLOCKS = [
    pytest.param(
        {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": _SAFETY_RATINGS}]},
        "terminated early: SAFETY",
        id="finish-SAFETY",
    ),
    pytest.param(
        {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}},
        "no candidates",
        id="prompt-blocked",
    ),
]


@pytest.mark.parametrize(("body", "says"), GEMINI_BLOCKS)
def test_llamaindex_gemini_safety_block_is_skipped_without_a_bench(
    error_server: ErrorServer, body: dict[str, Any], says: str
) -> None:
    """A content filter: the next model may answer; this one is healthy."""
    pytest.importorskip("google.genai")
    pytest.importorskip("llama_index.llms.google_genai")
    from google.genai import types
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.google_genai import GoogleGenAI

    llm = GoogleGenAI(
        model="gemini-2.5-flash",
        api_key="k",
        http_options=types.HttpOptions(base_url=error_server.url),
        max_tokens=64,
        context_window=1_000_000,
        max_retries=0,
    )
    error_server.reply = Reply(200, body)
    exc = raised_by(lambda: llm.chat([ChatMessage(role="user", content="hi")]), error_server)
    assert says in str(exc)
    assert fc.classify(exc) is R
