"""Exceptions raised by failover models.

::

    FailoverError
    ├── AllModelsFailedError      (also an ExceptionGroup of every cause)
    ├── StreamInterruptedError    (a stream failed after its first chunk; no replay)
    ├── ResumeNotice              (never raised: the event of a resumed stream)
    ├── AttemptTimeoutError       (also a TimeoutError: an attempt ran past a deadline)
    └── ChainConfigError          (also a ValueError: a chain that cannot be built)
        └── SpecError             (a bad or missing model spec)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime

from .classification.classifier import ErrorKind, status_of

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import ExceptionGroup

__all__ = [
    "AllModelsFailedError",
    "AttemptTimeoutError",
    "ChainConfigError",
    "FailoverError",
    "ResumeNotice",
    "SpecError",
    "StreamInterruptedError",
]


class FailoverError(Exception):
    """Root of every exception this library raises."""


def _summary(model: str, kind: ErrorKind, exc: BaseException) -> str:
    status = status_of(exc)
    where = f"{status} {type(exc).__name__}" if status is not None else type(exc).__name__
    return f"{model} ({kind.value}, {where})"


def _skip_summary(model: str, until: datetime | None) -> str:
    if until is None:
        return f"{model} (being probed by another request)"
    return f"{model} (until {until:%H:%M:%S} UTC)"


class AllModelsFailedError(FailoverError, ExceptionGroup):
    """Every model in the chain failed, or was skipped because it was benched.

    ``exceptions`` holds each cause, in order; ``models`` and ``kinds`` run parallel to it.
    ``skipped`` lists ``(model, until)`` for the models not tried because they were benched
    (``until`` is when the bench ends; ``None``: another request was probing it). The
    message names models, kinds, statuses and benches, never the providers' error text
    (it can echo the prompt).
    """

    models: tuple[str, ...]
    kinds: tuple[ErrorKind, ...]
    skipped: tuple[tuple[str, datetime | None], ...]

    def __new__(
        cls,
        failures: Sequence[tuple[str, ErrorKind, Exception]],
        _message: str | None = None,
        skipped: Sequence[tuple[str, datetime | None]] = (),
    ) -> AllModelsFailedError:
        causes = [exc for _, _, exc in failures]
        tried = "; ".join(_summary(m, k, e) for m, k, e in failures)
        if _message:
            message = _message
        elif skipped:
            n = len(failures)
            message = (
                ("1 model tried and failed" if n == 1 else f"{n} models tried, all failed")
                + f": {tried}; "
                f"{len(skipped)} skipped because benched: "
                + "; ".join(_skip_summary(m, until) for m, until in skipped)
            )
        else:
            message = f"all {len(failures)} models in chain failed: {tried}"
        self = super().__new__(cls, message, causes)
        self.models = tuple(m for m, _, _ in failures)
        self.kinds = tuple(k for _, k, _ in failures)
        self.skipped = tuple(skipped)
        return self

    def __init__(
        self,
        failures: Sequence[tuple[str, ErrorKind, Exception]],
        _message: str | None = None,
        skipped: Sequence[tuple[str, datetime | None]] = (),
    ) -> None:
        super().__init__(self.message, list(self.exceptions))

    def __repr__(self) -> str:
        # As clean as str(): ExceptionGroup's repr lists every cause's repr, whose text
        # is the provider's (it can echo the prompt, or a credential in a URL or a header).
        n = len(self.exceptions)
        return f"{type(self).__name__}({self.message!r}, <{n} cause{'' if n == 1 else 's'}>)"

    def derive(self, excs: Sequence[Exception]) -> ExceptionGroup[Exception]:  # type: ignore[override]
        # split()/subgroup() keep the type and the model each kept cause came from.
        kept = [
            (m, k, e)
            for m, k, e in zip(self.models, self.kinds, self.exceptions, strict=True)
            if e in excs
        ]
        return AllModelsFailedError(kept, self.message, self.skipped)

    def __reduce__(self) -> tuple[object, ...]:
        failures = list(zip(self.models, self.kinds, self.exceptions, strict=True))
        return (type(self), (failures, self.message, self.skipped))


class StreamInterruptedError(FailoverError):
    """A stream failed after chunks were already delivered, so it was not failed over.

    ``text`` is what the caller already received; ``model`` is the entry that failed; the
    provider's exception is ``__cause__``.
    """

    def __init__(self, model: str, kind: ErrorKind, text: str, chunks: int) -> None:
        super().__init__(
            f"stream from {model} failed after {chunks} chunk(s) ({kind.value}); "
            "not failed over, because output was already delivered"
        )
        self.model = model
        self.kind = kind
        self.text = text
        self.chunks = chunks


class ResumeNotice(FailoverError):
    """Never raised: the ``error`` of a ``"stream_resumed"`` event. The stream of
    ``model`` failed after ``characters`` characters of text and goes on on ``next_model``;
    the provider's exception is ``__cause__`` (so the event's status is the failure's)."""

    def __init__(self, model: str, next_model: str, characters: int, cause: Exception) -> None:
        super().__init__(
            f"stream from {model} failed after {characters} character(s); resumed on {next_model}"
        )
        self.model = model
        self.next_model = next_model
        self.characters = characters
        self.__cause__ = cause

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model, self.next_model, self.characters, self.__cause__))


class AttemptTimeoutError(FailoverError, TimeoutError):
    """An attempt ran past one of its deadlines and was abandoned (cancelled or closed).

    ``model`` is the entry, ``deadline`` which option expired (``"timeout"``,
    ``"first_token_timeout"`` or ``"idle_timeout"``) and ``seconds`` its length. The chain
    fails over at once (a hung model is not retried within the request) and counts it as a
    strike toward the bench.
    """

    def __init__(self, model: str, deadline: str, seconds: float) -> None:
        super().__init__(f"{model} passed its {deadline} of {seconds:g}s; attempt abandoned")
        self.model = model
        self.deadline = deadline
        self.seconds = seconds

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model, self.deadline, self.seconds))


class ChainConfigError(FailoverError, ValueError):
    """A failover chain cannot be built as given."""


class SpecError(ChainConfigError):
    """A model spec string is malformed, unknown, or there is none."""
