"""Rate limits the simulator enforces and announces, per model.

A fixed window per model: ``requests`` (and optionally ``tokens``) per ``window`` seconds.
Every answer carries the provider's headers (OpenAI/Azure ``x-ratelimit-*``, Anthropic
``anthropic-ratelimit-*``); a request over the limit gets a 429 with ``retry-after``,
before any latency, as providers answer them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

__all__ = ["RateLimiter"]

Api = Literal["openai", "anthropic"]


@dataclass
class _Window:
    requests: int
    tokens: int | None
    window: float
    started: float = 0.0
    used_requests: int = 0
    used_tokens: int = 0


class RateLimiter:
    """The simulator's rate limits; thread-safe; time from ``clock`` (monotonic) and
    ``wall`` (Anthropic's resets are instants)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._clock, self._wall = clock, wall
        self._limits: dict[str, _Window] = {}
        self.limited: Counter[str] = Counter()

    def set(
        self, model: str, requests: int, tokens: int | None = None, window: float = 60.0
    ) -> None:
        """At most ``requests`` requests (and ``tokens`` tokens) per ``window`` seconds."""
        if requests < 1 or (tokens is not None and tokens < 1) or window <= 0:
            raise ValueError("a rate limit needs requests >= 1, tokens >= 1 and a window > 0")
        with self._lock:
            self._limits[model] = _Window(requests, tokens, window, started=self._clock())

    def reset(self) -> None:
        with self._lock:
            self._limits.clear()
            self.limited.clear()

    def take(self, api: Api, model: str, tokens: int) -> tuple[bool, dict[str, str]]:
        """Count one request of ``tokens`` tokens for ``model``: whether it is over the
        limit (then it is not counted), and the headers to answer with."""
        with self._lock:
            limit = self._limits.get(model)
            if limit is None:
                return False, {}
            now = self._clock()
            if now - limit.started >= limit.window:
                elapsed = now - limit.started
                limit.started += limit.window * (elapsed // limit.window)
                limit.used_requests = limit.used_tokens = 0
            over = limit.used_requests >= limit.requests or (
                limit.tokens is not None and limit.used_tokens + tokens > limit.tokens
            )
            if over:
                self.limited[model] += 1
            else:
                limit.used_requests += 1
                limit.used_tokens += tokens
            reset = max(0.0, limit.started + limit.window - now)
            headers = _headers(api, limit, reset, self._wall())
            if over:
                headers["retry-after"] = f"{max(1, round(reset + 0.4999))}"
                headers["retry-after-ms"] = f"{reset * 1000:.0f}" if api == "openai" else ""
                if not headers["retry-after-ms"]:
                    del headers["retry-after-ms"]
            return over, headers


def _headers(api: Api, limit: _Window, reset: float, wall: float) -> dict[str, str]:
    left = max(0, limit.requests - limit.used_requests)
    if api == "openai":
        out = {
            "x-ratelimit-limit-requests": str(limit.requests),
            "x-ratelimit-remaining-requests": str(left),
            "x-ratelimit-reset-requests": f"{reset:.3f}s",
        }
        if limit.tokens is not None:
            out["x-ratelimit-limit-tokens"] = str(limit.tokens)
            out["x-ratelimit-remaining-tokens"] = str(max(0, limit.tokens - limit.used_tokens))
            out["x-ratelimit-reset-tokens"] = f"{reset:.3f}s"
        return out
    at = datetime.fromtimestamp(wall + reset, tz=timezone.utc).isoformat(timespec="milliseconds")
    at = at.replace("+00:00", "Z")
    out = {
        "anthropic-ratelimit-requests-limit": str(limit.requests),
        "anthropic-ratelimit-requests-remaining": str(left),
        "anthropic-ratelimit-requests-reset": at,
    }
    if limit.tokens is not None:
        out["anthropic-ratelimit-tokens-limit"] = str(limit.tokens)
        out["anthropic-ratelimit-tokens-remaining"] = str(max(0, limit.tokens - limit.used_tokens))
        out["anthropic-ratelimit-tokens-reset"] = at
    return out
