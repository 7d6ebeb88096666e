"""What a provider's response headers say about its rate limits.

Read without importing any SDK: OpenAI and Azure OpenAI send
``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (resets as Go durations such
as ``"1s"``, ``"6m0s"``, ``"20ms"``); Anthropic sends
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
(resets as RFC 3339 instants); a 429 or 503 carries ``retry-after`` (seconds or an HTTP
date) and OpenAI's ``retry-after-ms``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["RateLimits", "headers_of", "read_rate_limits"]

_KINDS = ("requests", "tokens", "input-tokens", "output-tokens")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class RateLimits:
    """One response's word on a deployment's limits.

    ``headroom``: the smallest remaining/limit fraction over requests and tokens (``None``
    when no limit was given); ``exhausted``: some budget reads zero; ``reset_in``: seconds
    until the budget that is lowest (or exhausted) refills, ``None`` when unknown;
    ``retry_after``: seconds a 429/503 asked for; ``remaining_requests``: requests left.
    """

    headroom: float | None = None
    exhausted: bool = False
    reset_in: float | None = None
    retry_after: float | None = None
    remaining_requests: int | None = None


def headers_of(obj: object) -> Mapping[str, Any] | None:
    """The HTTP headers an SDK error (or its cause chain) carries, or ``None``.

    ``openai``/``anthropic`` errors hold ``response`` (an ``httpx.Response``); a plain
    mapping passed in is returned as is.
    """
    if isinstance(obj, Mapping):
        return obj
    seen: set[int] = set()
    node: object = obj
    while isinstance(node, BaseException) and id(node) not in seen:
        seen.add(id(node))
        headers = getattr(getattr(node, "response", None), "headers", None)
        if headers is not None and hasattr(headers, "get"):
            return headers  # type: ignore[no-any-return]  # httpx.Headers is a mapping
        node = node.__cause__ or node.__context__
    return None


def _get(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not hasattr(headers, "get_list"):  # a plain dict: any case
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    return None if value is None else str(value).strip()


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_duration(text: str | None) -> float | None:
    """``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"`` or plain seconds, in seconds."""
    if text is None:
        return None
    plain = _number(text)
    if plain is not None:
        return plain
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def _until(text: str | None, now: float) -> float | None:
    """Seconds to an RFC 3339 or HTTP-date instant (wall clock ``now``), or a duration."""
    if text is None:
        return None
    duration = parse_duration(text)
    if duration is not None:
        return duration
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def read_rate_limits(headers: Mapping[str, Any] | None, now: float) -> RateLimits | None:
    """The limits ``headers`` report (``now``: wall-clock seconds, for Anthropic's instants),
    or ``None`` when they report none."""
    if not headers:
        return None
    fractions: list[tuple[float, float | None]] = []  # (remaining/limit, reset_in)
    exhausted_resets: list[float | None] = []
    remaining_requests: int | None = None
    for prefix, style in (("x-ratelimit-", "openai"), ("anthropic-ratelimit-", "anthropic")):
        for kind in _KINDS:
            if style == "openai":
                names = (f"{prefix}remaining-{kind}", f"{prefix}limit-{kind}")
                reset_name = f"{prefix}reset-{kind}"
            else:
                names = (f"{prefix}{kind}-remaining", f"{prefix}{kind}-limit")
                reset_name = f"{prefix}{kind}-reset"
            remaining = _number(_get(headers, names[0]))
            if remaining is None:
                continue
            limit = _number(_get(headers, names[1]))
            reset_in = _until(_get(headers, reset_name), now)
            if kind == "requests":
                remaining_requests = int(remaining)
            if remaining < 1:
                exhausted_resets.append(reset_in)
            if limit:
                fractions.append((min(1.0, remaining / limit), reset_in))
    retry_after = _retry_after(headers, now)
    if not fractions and not exhausted_resets and retry_after is None:
        return None
    headroom = min((f for f, _ in fractions), default=None)
    if exhausted_resets:
        known = [r for r in exhausted_resets if r is not None]
        reset_in = max(known) if known else None
    else:
        reset_in = min(fractions)[1] if fractions else None
    return RateLimits(
        headroom=headroom,
        exhausted=bool(exhausted_resets),
        reset_in=reset_in,
        retry_after=retry_after,
        remaining_requests=remaining_requests,
    )


def _retry_after(headers: Mapping[str, Any], now: float) -> float | None:
    millis = _number(_get(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000
    return _until(_get(headers, "retry-after"), now)
