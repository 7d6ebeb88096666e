"""Process defaults and the per-chain policy (retries, cooldown, backoff, observer, rules)."""

from __future__ import annotations

import enum
import math
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Literal

import tenacity

from ..classification.classifier import ClassifierRule, status_of
from ..flow.hedging import AdaptiveHedge, HedgeAfter, as_hedge_after
from ..telemetry.events import contained_failure
from .durations import as_duration

if TYPE_CHECKING:
    from ..telemetry.events import Observer

__all__ = [
    "DEFAULT",
    "Backoff",
    "Deadline",
    "DeadlineOption",
    "FailoverDefaults",
    "FailoverPolicy",
    "HedgeOption",
    "OnContentFilter",
    "OnTransient",
    "as_on_transient",
    "default_backoff",
    "get_failover_defaults",
    "set_failover_defaults",
]

Backoff = Callable[[int], float | timedelta] | tenacity.wait.wait_base
"""Seconds (or a timedelta) to wait after failed attempt ``n`` (1-based), or a tenacity wait."""

_BASE = 0.2
_CAP = 10.0


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds a ``Retry-After`` (or ``retry-after-ms``) header asks for, if any."""
    if exc is None or status_of(exc) not in (429, 503, 529):
        return None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        seconds = headers.get("retry-after")
        if seconds is not None:
            return max(0.0, float(seconds))
    except (TypeError, ValueError):  # an HTTP date or garbage: fall back to jitter
        return None
    return None


def default_backoff(
    attempt: int, error: BaseException | None = None, rng: random.Random | None = None
) -> float:
    """200 ms doubling per attempt, capped at 10 s, full jitter in ``[0, d]``.

    A ``Retry-After`` the provider sent (429/503/529) is honoured instead, up to the same cap.
    """
    hinted = _retry_after(error)
    if hinted is not None:
        return min(hinted, _CAP)
    attempt = max(attempt, 1)
    delay = min(_BASE * 2 ** (attempt - 1), _CAP)
    return (rng or random).uniform(0.0, delay)


Deadline = float | timedelta | str | None
"""Seconds, a timedelta or a string such as ``"90s"``; ``None`` turns the deadline off."""


class _Default(enum.Enum):
    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _Default.DEFAULT
"""An option not given: the process default (for ``set_failover_defaults``: unchanged)."""

DeadlineOption = Deadline | Literal[_Default.DEFAULT]
"""A deadline option as users pass it: seconds, a timedelta, ``None`` (off) or DEFAULT."""

HedgeOption = float | timedelta | str | AdaptiveHedge | None | Literal[_Default.DEFAULT]
"""``hedge_after`` as users pass it: seconds, a timedelta, ``"p95"``-style, an
:class:`~failover_core.AdaptiveHedge`, ``None`` (off, the default) or DEFAULT."""

# Deadline defaults by model kind (docs/guides/deadlines.md): a chat model that has said
# nothing for a minute is silent, not slow, so it costs a request at most that; a reasoning
# model (detected from its own configuration) may think for minutes before its first
# token, so it gets ``reasoning_timeout`` instead: the SDKs' own read timeout.
_TIMEOUT = 60.0
_FIRST_TOKEN_TIMEOUT = 60.0
_IDLE_TIMEOUT = 120.0
_REASONING_TIMEOUT = 600.0  # the OpenAI and Anthropic SDKs' read timeout before LangChain unsets it

# Cooldowns (docs/guides/cooldowns.md): ``cooldown`` is the longest a model stays out. A
# transient bench starts at ``transient_cooldown`` and doubles on each failed probe up to
# it, so a provider down for a minute serves again within ~30 s of recovering; an
# auth/model-dead bench starts at ``dead_cooldown`` (default: the whole cooldown).
_TRANSIENT_COOLDOWN = timedelta(seconds=8)

OnContentFilter = Literal["raise", "next"]
"""What a content filter does: ``"raise"`` the provider's refusal at once (the default), or
try the ``"next"`` model; neither benches anything."""
_CONTENT_FILTER_CHOICES = ("raise", "next")


def as_on_content_filter(value: object) -> OnContentFilter:
    """``"raise"`` or ``"next"``; anything else is refused naming both."""
    if value == "raise":
        return "raise"
    if value == "next":
        return "next"
    raise ValueError(f"on_content_filter must be 'raise' or 'next', got {value!r}")


OnTransient = Literal["retry", "next"]
"""What a transient error does to the request: ``"retry"`` the same model with backoff
(the seed's behaviour) or go to the ``"next"`` healthy model at once (fail over first)."""


def as_on_transient(value: object) -> OnTransient:
    """Validate ``on_transient``: ``"retry"`` or ``"next"``; anything else is refused."""
    if value == "retry" or value == "next":
        return "retry" if value == "retry" else "next"
    raise ValueError(f"on_transient must be 'retry' or 'next', got {value!r}")


@dataclass(frozen=True)
class FailoverDefaults:
    """The process-wide defaults a chain picks up when it is built."""

    max_retries: int = 3
    cooldown: timedelta = timedelta(minutes=5)
    timeout: float | None = _TIMEOUT
    first_token_timeout: float | None = _FIRST_TOKEN_TIMEOUT
    idle_timeout: float | None = _IDLE_TIMEOUT
    hedge_after: HedgeAfter | None = None
    resume_streams: ResumeStreams = False
    transient_cooldown: timedelta = _TRANSIENT_COOLDOWN
    dead_cooldown: timedelta | None = None
    on_content_filter: OnContentFilter = "raise"
    reasoning_timeout: float | None = _REASONING_TIMEOUT
    on_transient: OnTransient = "retry"


_defaults_lock = threading.Lock()
_defaults = FailoverDefaults()


def _as_cooldown(value: timedelta | float | str, name: str = "cooldown") -> timedelta:
    return as_duration(value, name)


ResumeStreams = bool | frozenset[str]
"""``resume_streams`` as a policy holds it: off, on (children able by default), or the
keys of the children that may continue a broken stream."""


def as_resume_streams(value: bool | Iterable[str]) -> ResumeStreams:
    """``True``/``False``, or the keys of the children that may continue a stream."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(
            "resume_streams must be True, False or a list of model keys, "
            f"got {type(value).__name__}"
        )
    keys = frozenset(value)
    bad = [k for k in keys if not isinstance(k, str) or not k.strip()]
    if bad:
        raise TypeError(f"resume_streams keys must be non-empty strings, got {bad[0]!r}")
    return keys


def _as_max_retries(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_retries must be an int, got {type(value).__name__}")
    return max(value, 1)


MIN_DEADLINE = 0.001
"""The shortest deadline accepted, in seconds: anything shorter only times attempts out."""


def as_deadline(name: str, value: Deadline) -> float | None:
    """Seconds of a deadline option (``None``, or infinity: off); refuses zero and below.

    Read by the library's one duration parser: seconds, a timedelta or ``"90s"``/``"5m"``.
    """
    if value is None or (isinstance(value, float) and value == math.inf):
        return None
    seconds = as_duration(value, name, positive=True).total_seconds()
    if seconds < MIN_DEADLINE:  # 1e-300 would time every attempt out ("timeout of 0s")
        raise ValueError(f"{name} must be at least {MIN_DEADLINE * 1000:g} ms, got {value!r}")
    return seconds


def _deadline_or(name: str, value: DeadlineOption, current: float | None) -> float | None:
    return current if value is DEFAULT else as_deadline(name, value)


def set_failover_defaults(
    max_retries: int | None = None,
    cooldown: timedelta | float | str | None = None,
    *,
    timeout: DeadlineOption = DEFAULT,
    first_token_timeout: DeadlineOption = DEFAULT,
    idle_timeout: DeadlineOption = DEFAULT,
    hedge_after: HedgeOption = DEFAULT,
    resume_streams: bool | Iterable[str] | None = None,
    transient_cooldown: timedelta | float | str | None = None,
    dead_cooldown: timedelta | float | str | None = None,
    on_content_filter: OnContentFilter | None = None,
    reasoning_timeout: DeadlineOption = DEFAULT,
    on_transient: OnTransient | None = None,
) -> FailoverDefaults:
    """Change the defaults used by failover models built from now on; returns the old ones.

    ``max_retries`` below 1 means 1. ``cooldown`` and the deadlines are seconds, a
    timedelta or a string such as ``"5m"``. ``None`` leaves ``max_retries`` and
    ``cooldown`` as they are; a deadline (or ``hedge_after``) not given stays as it is, and
    ``None`` turns it off. ``resume_streams`` (``None``: as it is) continues a broken
    plain-text stream on the next model able to continue it (README, "Resumed streams").
    ``transient_cooldown``/``dead_cooldown`` (``None``: as they are) start a transient and
    an auth/model-dead bench; ``on_content_filter`` is ``"raise"`` or ``"next"``;
    ``reasoning_timeout`` replaces the deadlines of reasoning models.
    ``on_transient`` (``None``: as it is) is ``"retry"`` or ``"next"`` (fail over first).
    """
    global _defaults
    new_retries = None if max_retries is None else _as_max_retries(max_retries)
    new_cooldown = None if cooldown is None else _as_cooldown(cooldown)
    new_transient = (
        None
        if transient_cooldown is None
        else _as_cooldown(transient_cooldown, "transient_cooldown")
    )
    new_dead = None if dead_cooldown is None else _as_cooldown(dead_cooldown, "dead_cooldown")
    new_filter = None if on_content_filter is None else as_on_content_filter(on_content_filter)
    for name, value in (
        ("timeout", timeout),
        ("first_token_timeout", first_token_timeout),
        ("idle_timeout", idle_timeout),
        ("reasoning_timeout", reasoning_timeout),
    ):
        if value is not DEFAULT:
            as_deadline(name, value)  # validate before taking the lock
    new_hedge = None if hedge_after is DEFAULT else as_hedge_after(hedge_after)
    new_resume = None if resume_streams is None else as_resume_streams(resume_streams)
    new_on_transient = None if on_transient is None else as_on_transient(on_transient)
    with _defaults_lock:
        old = _defaults
        _defaults = FailoverDefaults(
            max_retries=old.max_retries if new_retries is None else new_retries,
            cooldown=old.cooldown if new_cooldown is None else new_cooldown,
            timeout=_deadline_or("timeout", timeout, old.timeout),
            first_token_timeout=_deadline_or(
                "first_token_timeout", first_token_timeout, old.first_token_timeout
            ),
            idle_timeout=_deadline_or("idle_timeout", idle_timeout, old.idle_timeout),
            hedge_after=old.hedge_after if hedge_after is DEFAULT else new_hedge,
            resume_streams=old.resume_streams if new_resume is None else new_resume,
            transient_cooldown=old.transient_cooldown if new_transient is None else new_transient,
            dead_cooldown=old.dead_cooldown if new_dead is None else new_dead,
            on_content_filter=old.on_content_filter if new_filter is None else new_filter,
            reasoning_timeout=_deadline_or(
                "reasoning_timeout", reasoning_timeout, old.reasoning_timeout
            ),
            on_transient=old.on_transient if new_on_transient is None else new_on_transient,
        )
    return old


def get_failover_defaults() -> FailoverDefaults:
    """The current process-wide defaults."""
    with _defaults_lock:
        return _defaults


def retry_call_state(
    attempt: int, error: BaseException, upcoming_sleep: float | None = None
) -> tenacity.RetryCallState:
    """A real tenacity ``RetryCallState`` after failed ``attempt`` (for waits and tracers)."""
    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, error.__traceback__))
    if upcoming_sleep is not None:
        state.upcoming_sleep = upcoming_sleep
        state.next_action = tenacity.RetryAction(upcoming_sleep)
    return state


def _tenacity_delay(wait: tenacity.wait.wait_base, attempt: int, error: BaseException) -> float:
    """Ask a tenacity wait strategy for a delay by handing it a real ``RetryCallState``."""
    return float(wait(retry_call_state(attempt, error)))


POLICY_OPTIONS = (
    "max_retries",
    "cooldown",
    "backoff",
    "observer",
    "rules",
    "timeout",
    "first_token_timeout",
    "idle_timeout",
    "hedge_after",
    "resume_streams",
    "transient_cooldown",
    "dead_cooldown",
    "on_content_filter",
    "reasoning_timeout",
    "on_transient",
)
"""The options :meth:`FailoverPolicy.build` takes: an adapter's fields of these names (with
its models and registry) are what its chain is built from."""


@dataclass(frozen=True)
class FailoverPolicy:
    """Everything a chain needs to decide, fixed when the chain is built."""

    max_retries: int
    cooldown: timedelta
    backoff: Backoff | None = None
    observer: Observer | None = None
    rules: tuple[ClassifierRule, ...] = ()
    rng: random.Random | None = field(default=None, compare=False)
    timeout: float | None = None
    """Seconds one non-streamed attempt may take, end to end (``None``: no deadline)."""
    first_token_timeout: float | None = None
    """Seconds a streamed attempt may take to its first output (text or a tool call)."""
    idle_timeout: float | None = None
    """Seconds a committed stream may go without a chunk."""
    hedge_after: HedgeAfter | None = None
    """Seconds (or adaptive) without output before the next model is raced (``None``: off)."""
    resume_streams: ResumeStreams = False
    """A broken plain-text stream goes on, from its text so far, on the next able model:
    ``True`` (the children able by default: Anthropic's API) or the keys of those able."""
    transient_cooldown: timedelta | None = None
    """The first bench after transient failures; doubles on each failed probe up to
    ``cooldown`` (``None``: the whole cooldown at once, the seed's rule)."""
    dead_cooldown: timedelta | None = None
    """The first bench after an auth/model-dead error (``None``: the whole cooldown)."""
    on_content_filter: OnContentFilter = "raise"
    """A content filter's refusal: raised at once (``"raise"``) or the next model tried."""
    reasoning_timeout: float | None = None
    """Replaces ``timeout`` and ``first_token_timeout`` for reasoning models (``None``:
    they are never cut)."""

    def bench_length(self, dead: bool) -> timedelta:
        """How long a first bench lasts: an auth/model-dead one, or a transient one."""
        start = self.dead_cooldown if dead else self.transient_cooldown
        return self.cooldown if start is None else min(start, self.cooldown)

    def deadlines(self, reasoning: bool) -> tuple[float | None, float | None, float | None]:
        """``(timeout, first_token_timeout, idle_timeout)`` for a model of that kind."""
        if reasoning:
            return self.reasoning_timeout, self.reasoning_timeout, self.idle_timeout
        return self.timeout, self.first_token_timeout, self.idle_timeout

    on_transient: OnTransient = "retry"
    """``"next"``: a transient error sends the request to the next healthy model at once
    (a strike for the failed one, benched after ``max_retries`` strikes from any requests);
    ``"retry"``: retry it with backoff first."""

    def may_continue(self, key: str, *, able: bool) -> bool:
        """Whether the child ``key`` may continue a broken stream; ``able`` is the adapter's
        default answer for it (used when ``resume_streams`` is ``True``)."""
        if isinstance(self.resume_streams, frozenset):
            return key in self.resume_streams
        return self.resume_streams and able

    @classmethod
    def of(cls, owner: object, extra_rules: Sequence[ClassifierRule] = ()) -> FailoverPolicy:
        """The policy from an adapter's fields named as :data:`POLICY_OPTIONS`, its own
        ``rules`` followed by ``extra_rules``."""
        options = {name: getattr(owner, name) for name in POLICY_OPTIONS}
        options["rules"] = [*options["rules"], *extra_rules]
        return cls.build(**options)

    @classmethod
    def build(
        cls,
        *,
        max_retries: int | None = None,
        cooldown: timedelta | float | str | None = None,
        backoff: Backoff | None = None,
        observer: Observer | None = None,
        rules: Sequence[ClassifierRule] = (),
        timeout: DeadlineOption = DEFAULT,
        first_token_timeout: DeadlineOption = DEFAULT,
        idle_timeout: DeadlineOption = DEFAULT,
        hedge_after: HedgeOption = DEFAULT,
        resume_streams: bool | Iterable[str] | None = None,
        transient_cooldown: timedelta | float | str | None = None,
        dead_cooldown: timedelta | float | str | None = None,
        on_content_filter: OnContentFilter | None = None,
        reasoning_timeout: DeadlineOption = DEFAULT,
        on_transient: OnTransient | None = None,
    ) -> FailoverPolicy:
        """Validate user options, filling the gaps from the process defaults."""
        defaults = get_failover_defaults()
        if backoff is not None and not callable(backoff):
            raise TypeError(f"backoff must be callable, got {type(backoff).__name__}")
        if observer is not None and not callable(observer):
            raise TypeError(f"observer must be callable, got {type(observer).__name__}")
        for rule in rules:
            if not callable(rule):
                raise TypeError(f"a classifier rule must be callable, got {type(rule).__name__}")
        return cls(
            max_retries=defaults.max_retries
            if max_retries is None
            else _as_max_retries(max_retries),
            cooldown=defaults.cooldown if cooldown is None else _as_cooldown(cooldown),
            backoff=backoff,
            observer=observer,
            rules=tuple(rules),
            timeout=_deadline_or("timeout", timeout, defaults.timeout),
            first_token_timeout=_deadline_or(
                "first_token_timeout", first_token_timeout, defaults.first_token_timeout
            ),
            idle_timeout=_deadline_or("idle_timeout", idle_timeout, defaults.idle_timeout),
            hedge_after=defaults.hedge_after
            if hedge_after is DEFAULT
            else as_hedge_after(hedge_after),
            resume_streams=defaults.resume_streams
            if resume_streams is None
            else as_resume_streams(resume_streams),
            transient_cooldown=defaults.transient_cooldown
            if transient_cooldown is None
            else _as_cooldown(transient_cooldown, "transient_cooldown"),
            dead_cooldown=defaults.dead_cooldown
            if dead_cooldown is None
            else _as_cooldown(dead_cooldown, "dead_cooldown"),
            on_content_filter=defaults.on_content_filter
            if on_content_filter is None
            else as_on_content_filter(on_content_filter),
            reasoning_timeout=_deadline_or(
                "reasoning_timeout", reasoning_timeout, defaults.reasoning_timeout
            ),
            on_transient=defaults.on_transient
            if on_transient is None
            else as_on_transient(on_transient),
        )

    def delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait after failed attempt ``attempt`` before the next one.

        A user backoff that raises or answers something that is not a finite, non-negative
        number of seconds is logged once and the default backoff is used instead.
        """
        if self.backoff is None:
            return default_backoff(attempt, error, self.rng)
        try:
            if isinstance(self.backoff, tenacity.wait.wait_base):
                value: object = _tenacity_delay(self.backoff, attempt, error)
            else:
                value = self.backoff(attempt)
            seconds = _backoff_seconds(value)
        except Exception as exc:
            contained_failure("backoff", self.backoff, exc, "the default backoff is used")
            return default_backoff(attempt, error, self.rng)
        return seconds


_MAX_SLEEP = threading.TIMEOUT_MAX


def _backoff_seconds(value: object) -> float:
    """A backoff's answer as seconds, or ``ValueError`` saying what was wrong with it."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"backoff returned {type(value).__name__}, not seconds or a timedelta")
    if not math.isfinite(seconds) or seconds < 0 or seconds > _MAX_SLEEP:
        raise ValueError(f"backoff returned {seconds!r} s")
    return seconds
