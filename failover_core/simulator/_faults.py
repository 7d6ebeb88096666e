"""Fault plans and call records: the simulator's state, shared by the server and its users."""

from __future__ import annotations

import copy
import math
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from ._ratelimits import RateLimiter

__all__ = ["Fault", "RecordedRequest", "SimulatorState"]

Api = Literal["openai", "anthropic"]


@dataclass
class Fault:
    """One planned failure for a model.

    ``status`` is the HTTP status; ``code``/``type``/``message`` fill the provider's error
    body (defaults suit the status and the API). ``times`` is how many requests it hits
    (``None``: every request until cleared). ``latency`` is added before answering.
    ``retry_after`` sets the ``Retry-After`` header. With ``after_chunks``, a streamed
    request gets that many content chunks and then the error (as the API's in-stream error
    event, or a dropped connection with ``disconnect``, or with ``malformed`` one event
    whose data is not valid JSON, then the end of the stream); a non-streamed request
    fails whole.

    Hung and crawling providers (the request is accepted, then):

    * ``hang``: nothing is sent for that many seconds; then the provider gives up as a
      proxy does, answering ``status`` and closing the connection.
    * ``stall_first_token``: a stream sends its role header, then only keep-alives (SSE
      comments for OpenAI, ``ping`` events for Anthropic) for that many seconds, then the
      content. A non-streamed request gets its answer that much later.
    * ``stall_after_chunks``: a stream sends that many content chunks, then keep-alives
      for ``stall`` seconds, then the rest (with ``disconnect``: then the connection
      closes). A non-streamed request is ``stall`` s late.

    ``keepalive`` is the seconds between keep-alives. A client that leaves during a hang or
    a stall is counted (:meth:`SimulatorState.disconnects`).

    Broken transports and garbage (``status`` is then ignored):

    * ``reset``: the connection is reset before a byte of the response (no headers).
    * ``malformed_after``: a stream sends that many content chunks, then an event that is
      not valid JSON, then goes on as if nothing happened.
    * ``no_done``: a stream ends without its terminator (OpenAI's ``[DONE]``, Anthropic's
      ``message_stop``); every content chunk and the finish reason are sent.

    Refusals (a 200, ``status`` ignored): ``refuse`` answers as a content filter does:
    OpenAI ``finish_reason: "content_filter"`` with no content, Anthropic
    ``stop_reason: "refusal"``.
    """

    status: int = 503
    code: str | None = None
    type: str | None = None
    message: str | None = None
    times: int | None = 1
    latency: float = 0.0
    retry_after: float | None = None
    after_chunks: int | None = None
    disconnect: bool = False
    malformed: bool = False
    hang: float | None = None
    stall_first_token: float | None = None
    stall_after_chunks: int | None = None
    stall: float | None = None
    keepalive: float = 0.1
    reset: bool = False
    malformed_after: int | None = None
    no_done: bool = False
    refuse: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        if not 400 <= self.status <= 599:
            raise ValueError(f"a fault's status must be 4xx or 5xx, got {self.status}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"a fault's times must be >= 1 or None, got {self.times}")
        if self.latency < 0:
            raise ValueError(f"a fault's latency must not be negative, got {self.latency}")
        if self.after_chunks is not None and self.after_chunks < 0:
            raise ValueError(f"after_chunks must not be negative, got {self.after_chunks}")
        for name in ("hang", "stall_first_token", "stall"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"a fault's {name} must not be negative, got {value}")
        if self.stall_after_chunks is not None:
            if self.stall_after_chunks < 0:
                raise ValueError(
                    f"stall_after_chunks must not be negative, got {self.stall_after_chunks}"
                )
            if self.stall is None:
                raise ValueError("stall_after_chunks needs stall (seconds of keep-alives)")
        if self.keepalive <= 0:
            raise ValueError(f"keepalive must be positive, got {self.keepalive}")
        if self.malformed_after is not None and self.malformed_after < 0:
            raise ValueError(f"malformed_after must not be negative, got {self.malformed_after}")
        kinds = (
            "after_chunks",
            "hang",
            "stall_first_token",
            "stall_after_chunks",
            "malformed_after",
        )
        chosen = [name for name in kinds if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise ValueError(f"a fault is one of {', '.join(kinds)}; got {', '.join(chosen)}")

    @property
    def answers(self) -> bool:
        """The request gets a 200 answer (garbled, unterminated or a refusal), not an error."""
        return self.refuse or self.malformed_after is not None or self.no_done

    @property
    def slow(self) -> bool:
        """A hang or a stall: the request is answered late, or not at all."""
        return (
            self.hang is not None
            or self.stall_first_token is not None
            or self.stall_after_chunks is not None
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown fault field(s): {', '.join(sorted(map(str, unknown)))}; "
                f"the fields are: {', '.join(f.name for f in fields(cls))}"
            )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_INTS = ("status", "after_chunks", "stall_after_chunks", "times")
_SECONDS = ("latency", "retry_after", "hang", "stall_first_token", "stall", "keepalive")
_TEXTS = ("code", "type", "message")


def _check_types(fault: Fault) -> None:
    """Each field of the type it must have: ``times: 1.5`` would never run out, a NaN
    latency breaks the state's JSON; a wrong type is refused before anything is applied."""
    for name in _INTS:
        value = getattr(fault, name)
        if value is None and name != "status":
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"a fault's {name} must be a whole number, got {value!r}")
    for name in _SECONDS:
        value = getattr(fault, name)
        if value is not None and not _is_number(value):
            raise ValueError(f"a fault's {name} must be a finite number of seconds, got {value!r}")
    for name in _TEXTS:
        value = getattr(fault, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"a fault's {name} must be a string, got {value!r}")
    if not isinstance(fault.disconnect, bool):
        raise ValueError(f"a fault's disconnect must be true or false, got {fault.disconnect!r}")


@dataclass(frozen=True)
class RecordedRequest:
    """A request the simulator received. Credentials are never recorded, only their presence."""

    api: Api
    model: str
    stream: bool
    body: dict[str, Any]
    had_credentials: bool
    at: float = 0.0
    """When it arrived (``time.monotonic()``): to check Retry-After and request spacing."""


_Z99 = 2.3263478740408408  # the standard normal's 99th percentile


@dataclass
class _Plan:
    faults: list[Fault] = field(default_factory=list)
    latency: float | None = None  # None: the "*" plan's, or none
    chunk_delay: float | None = None
    p99: float | None = None  # a heavy tail: latency is then the median of a log-normal
    rng: random.Random | None = None

    def draw(self) -> float | None:
        """This request's latency: fixed, or drawn from the log-normal (p50, p99)."""
        if self.latency is None or self.p99 is None or self.rng is None:
            return self.latency
        sigma = math.log(self.p99 / self.latency) / _Z99
        return self.rng.lognormvariate(math.log(self.latency), sigma)


def _first(*values: float | None) -> float:
    return next((v for v in values if v is not None), 0.0)


class FaultShortcuts:
    """The named slow faults, in terms of ``fail``: one definition for the simulator in
    this process and for a remote one."""

    def fail(self, model: str, status: int = 503, **options: Any) -> Fault:
        raise NotImplementedError

    def hang(self, model: str, seconds: float, **options: Any) -> Fault:
        """Accept ``model``'s requests and send nothing for ``seconds``, then give up."""
        return self.fail(model, hang=seconds, **options)

    def stall_first_token(self, model: str, seconds: float, **options: Any) -> Fault:
        """Streams send a role header, then keep-alives for ``seconds``, then content."""
        return self.fail(model, stall_first_token=seconds, **options)

    def stall_after_chunks(self, model: str, chunks: int, seconds: float, **options: Any) -> Fault:
        """Streams send ``chunks`` content chunks, then keep-alives for ``seconds``."""
        return self.fail(model, stall_after_chunks=chunks, stall=seconds, **options)


class SimulatorState:
    """Thread-safe: written by tests in one thread, read by the server in another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, _Plan] = {}
        self._calls: Counter[str] = Counter()
        self._disconnects: Counter[str] = Counter()
        self._requests: list[RecordedRequest] = []
        self.rate_limits = RateLimiter()  # per-model limits and their headers
        self._prefill: dict[str, str] = {}

    def set_prefill(self, model: str, mode: str | None) -> None:
        """How ``model`` treats a request whose last message is the assistant's on the
        OpenAI wire: ``"continue"`` it (vLLM, DeepSeek, Mistral, OpenRouter, Ollama and
        llama.cpp do), ``"reject"`` it with a 400, or ``None``: answer it as a new turn."""
        if mode not in (None, "continue", "reject"):
            raise ValueError(f"prefill mode must be 'continue', 'reject' or None, got {mode!r}")
        with self._lock:
            if mode is None:
                self._prefill.pop(model, None)
            else:
                self._prefill[model] = mode

    def prefill_mode(self, model: str) -> str | None:
        with self._lock:
            return self._prefill.get(model)

    def add_fault(self, model: str, fault: Fault) -> None:
        with self._lock:
            self._plans.setdefault(model, _Plan()).faults.append(fault)

    def set_latency(
        self,
        model: str,
        seconds: float,
        chunk_delay: float = 0.0,
        *,
        p99: float | None = None,
        seed: int | None = None,
    ) -> None:
        """Delay ``model``'s answers (the first byte) by ``seconds``; ``chunk_delay``
        between streamed chunks.

        With ``p99``, each request's delay is drawn instead from a log-normal whose median
        is ``seconds`` and whose 99th percentile is ``p99``: a provider with a heavy tail
        (``seed`` makes the draws repeatable).
        """
        for name, value in (("latency", seconds), ("chunk_delay", chunk_delay), ("p99", p99)):
            if value is not None and not _is_number(value):
                raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
        if seconds < 0 or chunk_delay < 0:
            raise ValueError("latency and chunk_delay must not be negative")
        if p99 is not None and not (seconds > 0 and p99 >= seconds):
            raise ValueError("a latency p99 needs a positive median (seconds) no larger than it")
        with self._lock:
            plan = self._plans.setdefault(model, _Plan())
            plan.latency, plan.chunk_delay, plan.p99 = seconds, chunk_delay, p99
            plan.rng = None if p99 is None else random.Random(seed)

    def clear(self, model: str | None = None) -> None:
        """Drop the faults of ``model`` (or of every model); latencies stay."""
        with self._lock:
            for name, plan in self._plans.items():
                if model is None or name == model:
                    plan.faults.clear()

    def reset(self) -> None:
        """Forget faults, latencies, counts and recorded requests."""
        with self._lock:
            self._plans.clear()
            self._calls.clear()
            self._disconnects.clear()
            self._requests.clear()
            self._prefill.clear()
        self.rate_limits.reset()

    def admit(self, request: RecordedRequest) -> tuple[Fault | None, float, float]:
        """Count the call and take the fault that applies to it, if any.

        Returns the fault, the model's latency and its delay between streamed chunks.
        A plan for ``"*"`` applies to every model that has no fault of its own.
        """
        with self._lock:
            self._calls[request.model] += 1
            self._requests.append(request)
            own, star = self._plans.get(request.model), self._plans.get("*")
            latency = _first(*(p.draw() for p in (own, star) if p is not None))
            chunk_delay = _first(*(p.chunk_delay for p in (own, star) if p is not None))
            for plan in (own, star):
                if plan is None or not plan.faults:
                    continue
                fault = plan.faults[0]
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        plan.faults.pop(0)
                return copy.copy(fault), latency, chunk_delay
            return None, latency, chunk_delay

    def record_disconnect(self, model: str) -> None:
        with self._lock:
            self._disconnects[model] += 1

    def disconnects(self, model: str | None = None) -> int:
        """Clients that closed the request while ``model`` hung or stalled."""
        with self._lock:
            if model is None:
                return sum(self._disconnects.values())
            return self._disconnects[model]

    def calls(self, model: str | None = None) -> int:
        with self._lock:
            return self._calls[model] if model is not None else sum(self._calls.values())

    def call_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    def requests(self, model: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if model is None or r.model == model]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(self._calls),
                "disconnects": dict(self._disconnects),
                "rate_limited": dict(self.rate_limits.limited),
                "plans": {
                    name: {
                        "faults": [f.to_dict() for f in plan.faults],
                        "latency": plan.latency,
                        "latency_p99": plan.p99,
                        "chunk_delay": plan.chunk_delay,
                    }
                    for name, plan in self._plans.items()
                },
            }
