"""Raw HTTP clients (httpx, requests, aiohttp): a status error gets the status's kind, a
refused connection or a read timeout is transient, whichever library raised it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

import failover_core as fc
from tests.providers._server import ErrorServer, Reply, chain_of

T, A, R = fc.ErrorKind.TRANSIENT, fc.ErrorKind.AUTH_DEAD, fc.ErrorKind.REQUEST_SPECIFIC

STATUSES = [
    (400, R),
    (401, A),
    (403, A),
    (404, A),
    (413, R),
    (429, T),
    (499, T),
    (500, T),
    (503, T),
]


def _httpx(url: str, timeout: float) -> None:
    httpx = pytest.importorskip("httpx")
    httpx.post(url + "/v1/chat", json={}, timeout=timeout).raise_for_status()


def _requests(url: str, timeout: float) -> None:
    requests = pytest.importorskip("requests")
    requests.post(url + "/v1/chat", json={}, timeout=timeout).raise_for_status()


def _aiohttp(url: str, timeout: float) -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def post() -> None:
        limit = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=limit) as session,
            session.post(url + "/v1/chat", json={}) as response,
        ):
            response.raise_for_status()

    asyncio.run(post())


CLIENTS = [_httpx, _requests, _aiohttp]
Post = Callable[[str, float], None]


def _raised(post: Post, url: str, timeout: float = 5.0) -> BaseException:
    try:
        post(url, timeout)
    except Exception as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.parametrize("post", CLIENTS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize(("status", "kind"), STATUSES)
def test_status_error_gets_the_status_kind(
    error_server: ErrorServer, post: Post, status: int, kind: fc.ErrorKind
) -> None:
    error_server.reply = Reply(status, {"error": "x"})
    exc = _raised(post, error_server.url)
    assert fc.status_of(exc) == status, chain_of(exc)
    assert fc.classify(exc) is kind


@pytest.mark.parametrize("post", CLIENTS, ids=lambda f: f.__name__.strip("_"))
def test_refused_connection_is_transient(post: Post) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exc = _raised(post, f"http://127.0.0.1:{port}")
    assert fc.status_of(exc) is None
    assert fc.classify(exc) is T, chain_of(exc)


@pytest.mark.parametrize("post", CLIENTS, ids=lambda f: f.__name__.strip("_"))
def test_read_timeout_is_transient(error_server: ErrorServer, post: Post) -> None:
    error_server.reply = Reply(200, {"ok": True}, delay=0.5)
    try:
        exc = _raised(post, error_server.url, timeout=0.1)
    finally:
        error_server.reply = Reply(500, {"error": "no reply set"})
    assert fc.classify(exc) is T, chain_of(exc)


def test_a_dropped_response_is_transient() -> None:
    """The server promised a body and closed early: the transport broke, not the request."""
    httpx = pytest.importorskip("httpx")
    exc: Any = None
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        async def serve_and_call() -> None:
            nonlocal exc
            loop = asyncio.get_running_loop()

            def half_answer() -> None:
                conn, _ = listener.accept()
                conn.recv(65536)
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a"')
                conn.close()

            server = loop.run_in_executor(None, half_answer)
            try:
                async with httpx.AsyncClient() as client:
                    await client.post(f"http://127.0.0.1:{port}/v1/chat", json={})
            except Exception as caught:
                exc = caught
            await server

        asyncio.run(serve_and_call())
    assert exc is not None
    assert fc.classify(exc) is T, chain_of(exc)
