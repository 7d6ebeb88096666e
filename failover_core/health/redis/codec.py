"""Health records on the wire: one JSON object per key, read as untrusted input."""

from __future__ import annotations

import dataclasses
import json
import math

from ..records import HealthRecord, record_problem, report_bad_record

__all__ = ["decode", "encode", "millis"]

_FIELDS = {f.name for f in dataclasses.fields(HealthRecord)}


def encode(record: HealthRecord) -> str:
    return json.dumps(dataclasses.asdict(record), separators=(",", ":"), allow_nan=False)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def decode(key: str, raw: bytes | str | None) -> HealthRecord | None:
    """The record in ``raw``, or ``None`` (logged once) when it is not a sound record."""
    if raw is None:
        return None
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        fields = {k: v for k, v in data.items() if k in _FIELDS}
        if isinstance(fields.get("strike_times"), list):
            fields["strike_times"] = tuple(fields["strike_times"])
        record = HealthRecord(**fields)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        report_bad_record(key, f"unreadable: {type(exc).__name__}")
        return None
    problem = record_problem(record)
    if problem is not None:
        report_bad_record(key, problem)
        return None
    return record


def millis(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
