"""A hedge never queues behind the attempt it races for a pooled HTTP connection.

Two children on one base URL often share one HTTP client (langchain-openai caches one per
base URL and settings; 1,000 connections): when the slow attempts hold every connection,
a hedge on that client would wait for one of them to end, which is the very wait it is
meant to beat. :func:`bind_hedge_lane` wraps such a client's transport: a request made by a
hedge (the racer marked with :func:`as_hedge`) while the pool has no connection free goes
to a pool of its own beside it (same settings, made on first need, closed with the
client). Every other request, and a hedge while the pool has room, goes as before.

Only httpx's own transports over a plain httpcore pool (no proxy) are bound; anything else
is left alone and a hedge on it may still queue (the performance guide says so).
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

__all__ = ["as_hedge", "bind_hedge_lane"]

_hedge: contextvars.ContextVar[bool] = contextvars.ContextVar("llm_failover_hedge", default=False)


def as_hedge() -> None:
    """Mark the current context (a hedge racer's own task or thread context) as a hedge."""
    _hedge.set(True)


def _full(pool: Any) -> bool:
    """No connection free: at the limit with none available, or requests already queued."""
    try:
        if any(request.connection is None for request in pool._requests):
            return True
        if len(pool._connections) < pool._max_connections:
            return False
        return not any(c.is_available() for c in pool._connections)
    except Exception:  # an httpcore we do not know: go as before
        return False


def _sibling(pool: Any, cls: Any) -> Any:
    """A new pool with ``pool``'s settings."""
    return cls(
        ssl_context=pool._ssl_context,
        max_connections=pool._max_connections,
        max_keepalive_connections=pool._max_keepalive_connections,
        keepalive_expiry=pool._keepalive_expiry,
        http1=pool._http1,
        http2=pool._http2,
        retries=pool._retries,
        local_address=pool._local_address,
        uds=pool._uds,
        network_backend=pool._network_backend,
        socket_options=pool._socket_options,
    )


_lock = threading.Lock()


def bind_hedge_lane(client: Any) -> bool:
    """Give an httpx client (sync or async) a hedge lane; whether it could. Idempotent."""
    try:
        import httpcore
        import httpx
    except ImportError:  # pragma: no cover - no httpx, no httpx client
        return False
    if isinstance(client, httpx.AsyncClient):
        kind: tuple[Any, Any] = (httpx.AsyncHTTPTransport, httpcore.AsyncConnectionPool)
    elif isinstance(client, httpx.Client):
        kind = (httpx.HTTPTransport, httpcore.ConnectionPool)
    else:
        return False
    with _lock:
        known = getattr(client, "_llm_failover_lane", None)
        if isinstance(known, bool):
            return known
        transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]
        ok = all(_bind(t, *kind) for t in transports)
        client._llm_failover_lane = ok
        return ok


def _bind(transport: Any, transport_cls: Any, pool_cls: Any) -> bool:
    if type(transport) is not transport_cls:
        return False
    if getattr(transport, "_llm_failover_lane", False):
        return True
    pool = getattr(transport, "_pool", None)
    if type(pool) is not pool_cls or getattr(pool, "_proxy", None) is not None:
        return False
    lane: list[Any] = []  # the sibling transport, made on first need
    making = threading.Lock()

    def sibling() -> Any:
        with making:
            if not lane:
                other = transport_cls()
                other._pool = _sibling(pool, pool_cls)
                lane.append(other)
        return lane[0]

    if transport_cls.__name__.startswith("Async"):
        handle, close = transport.handle_async_request, transport.aclose

        async def handle_async_request(request: Any) -> Any:
            if _hedge.get() and _full(pool):
                return await sibling().handle_async_request(request)
            return await handle(request)

        async def aclose() -> None:
            await close()
            if lane:
                await lane[0].aclose()

        transport.handle_async_request, transport.aclose = handle_async_request, aclose
    else:
        handle_sync, close_sync = transport.handle_request, transport.close

        def handle_request(request: Any) -> Any:
            if _hedge.get() and _full(pool):
                return sibling().handle_request(request)
            return handle_sync(request)

        def close_all() -> None:
            close_sync()
            if lane:
                lane[0].close()

        transport.handle_request, transport.close = handle_request, close_all
    transport._llm_failover_lane = True
    return True
