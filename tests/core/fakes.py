"""Fake entries and provider-shaped errors for driving the core without I/O."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any


class HTTPError(Exception):
    """Shaped like an SDK status error: ``status_code``, a body with a code, headers."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str = "failed",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status
        self.body = {"code": code, "message": message} if code else None
        self.response = _Response(status, headers or {})


@dataclass
class _Response:
    status_code: int
    headers: dict[str, str]


Outcome = Exception | BaseException | str


@dataclass
class FakeEntry:
    """A chain member whose calls play back ``outcomes`` (the last one repeats)."""

    key: str
    outcomes: list[Outcome] = field(default_factory=lambda: ["ok"])
    calls: int = 0

    def _next(self) -> Outcome:
        self.calls += 1
        index = min(self.calls - 1, len(self.outcomes) - 1)
        return self.outcomes[index]

    def call(self) -> str:
        outcome = self._next()
        if isinstance(outcome, BaseException):
            raise outcome
        return f"{self.key}:{outcome}"

    async def acall(self) -> str:
        await asyncio.sleep(0)  # a real suspension point, so tasks interleave
        return self.call()


@dataclass
class FakeStreamEntry:
    """A streaming member: ``chunks`` then, if set, ``fail_with`` after ``fail_after`` chunks.

    ``open_error`` fails the stream before any chunk (for its first ``open_failures`` opens).
    """

    key: str
    chunks: list[str] = field(default_factory=lambda: ["a", "b", "c"])
    fail_after: int | None = None
    fail_with: Exception | None = None
    open_error: Exception | None = None
    open_failures: int = 10**9
    opens: int = 0
    closed: int = 0

    def _plan(self) -> tuple[list[str], Exception | None]:
        self.opens += 1
        if self.open_error is not None and self.opens <= self.open_failures:
            return [], self.open_error
        if self.fail_after is not None:
            return self.chunks[: self.fail_after], self.fail_with
        return self.chunks, None

    def stream(self) -> Iterator[str]:
        chunks, error = self._plan()
        try:
            yield from chunks
            if error is not None:
                raise error
        finally:
            self.closed += 1

    async def astream(self) -> AsyncIterator[str]:
        chunks, error = self._plan()
        try:
            for chunk in chunks:
                await asyncio.sleep(0)
                yield chunk
            if error is not None:
                raise error
        finally:
            self.closed += 1


def events_of(collected: list[Any]) -> list[tuple[str, str, int, bool, str | None]]:
    """(model, kind, attempt, benched, next) per event: the fields tests compare."""
    return [(e.model, e.kind.value, e.attempt, e.benched, e.next_model) for e in collected]
