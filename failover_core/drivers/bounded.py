"""Deadlines kept in the caller's thread, for children whose HTTP transport can be bounded.

A blocking call cannot be interrupted, so by default a sync attempt with a deadline runs on
a worker thread (:mod:`.deadlines`) and the caller stops waiting at the deadline. The hop
costs a thread wake-up each way on every call. When a child's calls go through an httpx
client on httpcore's connection pool (the OpenAI and Anthropic SDKs, so ``ChatOpenAI``,
``AzureChatOpenAI`` and ``ChatAnthropic``), the wait can instead be bounded where it
happens: :func:`bind_httpx` wraps the pool's network backend so that, while an attempt
runs under :func:`call_bounded`, every wait of that thread (for a pooled connection, to
connect, each socket read and write) is limited to the time left before the deadline.
A provider that hangs, or trickles keep-alive bytes, then ends in a read timeout at the
deadline, in the caller's thread: no hop. Outside an attempt (or on another thread), the
wrapped backend changes nothing.

Only what is proven boundable runs in place: a client whose transports are all httpx's
own ``HTTPTransport`` over a plain ``httpcore.ConnectionPool`` (no proxy, no custom or mock
transport). Anything else keeps the worker thread. One thing is not bounded: a system DNS
lookup for a new connection, which the resolver limits itself (typically 5 s a try).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .._errors import AttemptTimeoutError

__all__ = ["Bound", "bind_httpx", "call_bounded", "step_bounded"]

T = TypeVar("T")


class Bound:
    """The deadline of the attempt running in this context, and whether it cut a wait."""

    __slots__ = ("at", "expired", "tripped")

    def __init__(self, at: float, expired: Callable[[], AttemptTimeoutError]) -> None:
        self.at = at
        self.expired = expired
        self.tripped = False

    def why(self) -> str:
        """What a wait cut by the deadline says (the transport's error carries it, so the
        child's own run ends with the reason, not a bare "timed out")."""
        return str(self.expired())

    def clamp(self, timeout: float | None, error: Callable[[str], BaseException]) -> float:
        """``timeout`` limited to the time left; ``error`` raised once none is left."""
        left = self.at - time.monotonic()
        if left <= 0:
            self.tripped = True
            raise error(self.why())
        return left if timeout is None or left < timeout else timeout


_current: contextvars.ContextVar[Bound | None] = contextvars.ContextVar(
    "llm_failover_bound", default=None
)


def call_bounded(seconds: float, model: str, fn: Callable[[], T]) -> T:
    """``fn()`` here, its transport's waits bounded by ``seconds`` from now; a wait cut by
    the deadline surfaces as :class:`AttemptTimeoutError` (the SDK's error as its cause)."""
    return step_bounded(time.monotonic() + seconds, fn, lambda: _timeout(model, seconds))


def step_bounded(at: float, fn: Callable[[], T], expired: Callable[[], AttemptTimeoutError]) -> T:
    """``fn()`` here with the waits of its transport bounded by the monotonic instant ``at``."""
    bound = Bound(at, expired)
    token = _current.set(bound)
    try:
        return fn()
    except Exception as exc:
        if bound.tripped:
            raise expired() from exc
        raise
    finally:
        _current.reset(token)


def _timeout(model: str, seconds: float) -> AttemptTimeoutError:
    return AttemptTimeoutError(model, "timeout", seconds)


# -- httpcore -------------------------------------------------------------------------------


class _Stream:
    """A network stream whose reads and writes wait no longer than the attempt's time left."""

    def __init__(self, stream: Any, errors: Any) -> None:
        self._stream, self._errors = stream, errors

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bound = _current.get()
        if bound is None:
            data: bytes = self._stream.read(max_bytes, timeout)
            return data
        limit = bound.clamp(timeout, self._errors.ReadTimeout)
        try:
            data = self._stream.read(max_bytes, limit)
        except self._errors.ReadTimeout as exc:
            if limit == timeout:
                raise  # the transport's own timeout, not the attempt's deadline
            bound.tripped = True
            raise self._errors.ReadTimeout(bound.why()) from exc
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bound = _current.get()
        if bound is None:
            self._stream.write(buffer, timeout)
            return
        limit = bound.clamp(timeout, self._errors.WriteTimeout)
        try:
            self._stream.write(buffer, limit)
        except self._errors.WriteTimeout as exc:
            if limit == timeout:
                raise  # the transport's own timeout, not the attempt's deadline
            bound.tripped = True
            raise self._errors.WriteTimeout(bound.why()) from exc

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: Any = None, timeout: Any = None) -> Any:
        bound = _current.get()
        if bound is not None:
            timeout = bound.clamp(timeout, self._errors.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._errors)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend:
    """httpcore's network backend, its connections made into :class:`_Stream`."""

    def __init__(self, backend: Any, errors: Any) -> None:
        self.inner, self._errors = backend, errors

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _Stream:
        bound = _current.get()
        if bound is not None:
            timeout = bound.clamp(timeout, self._errors.ConnectTimeout)
        stream = self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream, self._errors)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> _Stream:
        bound = _current.get()
        if bound is not None:
            timeout = bound.clamp(timeout, self._errors.ConnectTimeout)
        return _Stream(self.inner.connect_unix_socket(path, timeout, socket_options), self._errors)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def _bounded_timeouts(bound: Bound, extensions: dict[str, Any]) -> None:
    """The request's httpx timeouts (pool wait, connect, read, write) cut to the time left."""
    left = max(bound.at - time.monotonic(), 0.0)
    timeouts = dict(extensions.get("timeout") or {})
    for name in ("connect", "read", "write", "pool"):
        value = timeouts.get(name)
        timeouts[name] = left if value is None or left < value else value
    extensions["timeout"] = timeouts


_lock = threading.Lock()


def bind_httpx(client: Any) -> bool:
    """Make a sync httpx client's waits follow the attempt's deadline; whether it could.

    Idempotent, safe on a client shared by many models (langchain-openai caches one per
    base URL): outside an attempt running under :func:`call_bounded` nothing changes.
    False (and nothing changed) for anything but httpx ``HTTPTransport`` over a plain
    ``httpcore.ConnectionPool``.
    """
    try:
        import httpcore
        import httpx
    except ImportError:  # pragma: no cover - no httpx, no httpx client
        return False
    if not isinstance(client, httpx.Client):
        return False
    with _lock:
        known = getattr(client, "_llm_failover_bound", None)
        if isinstance(known, bool):
            return known
        transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]
        ok = all(_bind_transport(t, httpx, httpcore) for t in transports)
        client._llm_failover_bound = ok  # type: ignore[attr-defined]
        return ok


def _bind_transport(transport: Any, httpx: Any, httpcore: Any) -> bool:
    if type(transport) is not httpx.HTTPTransport:
        return False
    if getattr(transport, "_llm_failover_bound", False):
        return True
    pool: Any = getattr(transport, "_pool", None)
    if type(pool) is not httpcore.ConnectionPool or getattr(pool, "_proxy", None) is not None:
        return False
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        return False
    with pool._optional_thread_lock:
        connections = list(pool._connections)
        if not all(_bind_connection(c, httpcore) for c in connections):
            return False
        if not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend, httpcore)
        for connection in connections:
            if not isinstance(connection._network_backend, _Backend):
                connection._network_backend = _Backend(connection._network_backend, httpcore)
    handle = transport.handle_request

    def handle_request(request: Any) -> Any:
        bound = _current.get()
        if bound is None:
            return handle(request)
        _bounded_timeouts(bound, request.extensions)
        try:
            return handle(request)
        except httpx.TimeoutException:  # a pool wait, say, cut by the deadline
            bound.tripped = bound.tripped or time.monotonic() >= bound.at - 0.001
            raise

    transport.handle_request = handle_request
    transport._llm_failover_bound = True
    return True


def _bind_connection(connection: Any, httpcore: Any) -> bool:
    """A pooled connection made before binding: its stream bounded too (or refuse)."""
    if type(connection) is not httpcore.HTTPConnection:
        return False
    if not hasattr(connection, "_network_backend"):
        return False
    inner = getattr(connection, "_connection", None)
    if inner is None:
        return True
    stream = getattr(inner, "_network_stream", None)
    if stream is None:
        return False
    if not isinstance(stream, _Stream):
        inner._network_stream = _Stream(stream, httpcore)
    return True
