"""An in-memory network for real SDK clients: httpx's own transport and httpcore's pool,
with sockets that answer every request with one canned OpenAI chat completion.

What is left to measure is the SDK, LangChain and the wrapper, not a server: the same
bytes go through the same client code as over loopback, in microseconds and unaffected by
another process's scheduling.
"""

from __future__ import annotations

import json
from typing import Any

import httpcore
import httpx

_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)


class _Stream(httpcore.NetworkStream):
    """Answers each request (its end marked by the body's write) with the canned reply."""

    def __init__(self) -> None:
        self._pending = b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer.endswith(b"}") or (buffer.endswith(b"\r\n\r\n") and b"GET" in buffer[:4]):
            self._pending += _RESPONSE

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        out, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return out

    def close(self) -> None:
        self._pending = b""

    def get_extra_info(self, info: str) -> Any:
        return None


class _Backend(httpcore.NetworkBackend):
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream()


def in_memory_client() -> httpx.Client:
    """An httpx client whose connections are in memory (httpx's transport, httpcore's pool)."""
    client = httpx.Client()
    client._transport._pool._network_backend = _Backend()  # type: ignore[attr-defined]
    return client
