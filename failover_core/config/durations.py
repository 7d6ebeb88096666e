"""One duration parser for every option and the command line, with one message style.

A duration is seconds (``int``/``float``), a :class:`~datetime.timedelta`, or a string:
``"90"``, ``"90s"``, ``"5m"``, ``"1h"``, ``"2d"``, ``"1h30m"``. Durations are capped at
:data:`MAX_DURATION` so that every bench end is a time ``datetime`` (and Redis) can hold.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

__all__ = ["MAX_DURATION", "as_duration", "describe_seconds"]

MAX_DURATION = timedelta(days=3650)
"""The longest duration accepted anywhere (ten years): a bench end stays far inside what
``datetime`` and Redis expiry can represent, whatever the cooldown growth."""

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_PART = re.compile(rf"({_NUMBER})\s*([smhd])")


def describe_seconds(seconds: float) -> str:
    """``-5 s``, ``90 s``, ``3000000 days``: how messages show a duration."""
    if math.isfinite(seconds) and abs(seconds) >= 86400:
        return f"{_number(seconds / 86400)} days"
    return f"{_number(seconds)} s"


def _number(value: float) -> str:
    if math.isfinite(value) and value == round(value) and abs(value) < 1e15:
        return str(round(value))
    return f"{value:.6g}"


def _parse_text(text: str, name: str) -> float:
    cleaned = text.strip().lower()
    try:
        return float(cleaned)  # plain seconds
    except ValueError:
        pass
    parts = _PART.findall(cleaned)
    if not parts or re.sub(r"\s+", "", "".join(n + u for n, u in parts)) != re.sub(
        r"\s+", "", cleaned
    ):
        raise ValueError(
            f"{name} must be seconds or a duration such as 90s, 5m, 1h or 2d, got {text!r}"
        )
    return sum(float(n) * _UNITS[u] for n, u in parts)


def as_duration(value: object, name: str, *, positive: bool = False) -> timedelta:
    """``value`` as a timedelta, or an error naming ``name`` in the library's one style.

    Refuses booleans, non-finite numbers, negative durations (zero too with ``positive``)
    and anything past :data:`MAX_DURATION`, saying the largest value accepted.
    """
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float, str)):
        raise TypeError(
            f"{name} must be seconds, a timedelta or a string such as '5m', "
            f"got {type(value).__name__}"
        )
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        seconds = _parse_text(value, name)
    else:
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf if value > 0 else -math.inf
    if math.isnan(seconds):
        raise ValueError(f"{name} must be a number of seconds, got NaN")
    if seconds < 0:
        raise ValueError(f"{name} must not be negative, got {describe_seconds(seconds)}")
    if positive and seconds == 0:
        raise ValueError(f"{name} must be positive, got 0 s")
    limit = MAX_DURATION.total_seconds()
    if seconds > limit:
        shown = "infinity" if math.isinf(seconds) else describe_seconds(seconds)
        raise ValueError(
            f"{name} must be at most {describe_seconds(limit)} ({limit:.0f} s), got {shown}"
        )
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=seconds)
