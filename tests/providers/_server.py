"""A loopback HTTP server that answers every request with one canned reply.

Each test sets the reply (status, body, headers) a provider documents for an error; the
SDK under test then builds its own exception from that real HTTP response.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server sends back: a status, a body (JSON if not bytes/str), headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    """Seconds to wait before answering (a slow provider, for client timeouts)."""

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode() if self.body is not None else b""


class ErrorServer:
    """Serves ``reply`` to any method on any path, on 127.0.0.1, from a daemon thread."""

    def __init__(self) -> None:
        self.reply = Reply(500, {"error": "no reply set"})
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.paths.append(self.path)
                reply = server.reply
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.encoded()
                with contextlib.suppress(OSError):  # the client may have given up
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def chain_of(exc: BaseException) -> str:
    """The exception chain, for a failure message that shows what the wrapper raised."""
    parts, seen = [], set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        parts.append(f"{type(link).__module__}.{type(link).__name__}: {str(link)[:160]}")
        link = link.__cause__ or link.__context__
    return " <- ".join(parts)


def raised_by(call: Callable[[], object], server: ErrorServer) -> BaseException:
    sent = len(server.paths)
    try:
        call()
    except Exception as exc:
        assert len(server.paths) > sent, f"raised before any request: {chain_of(exc)}"
        return exc
    raise AssertionError("the client did not raise")
