"""Error classification: what a failure says about the model that raised it.

The classifier reads, in order:

1. user rules (per chain first, then global), the first that returns a kind wins;
2. codes in the error body that override the status (``insufficient_quota`` on a 429 is a
   billing problem, not a rate limit; ``context_length_exceeded`` is the request's fault);
3. the HTTP status found on the exception or anywhere on its ``__cause__``/``__context__``
   chain;
4. error codes and types without a status (``overloaded_error``, ``ThrottlingException``,
   ``RESOURCE_EXHAUSTED``);
5. the exception's type: timeouts and connection errors are transient.

No SDK is imported: ``openai``, ``anthropic``, ``httpx``, botocore and google errors are read
by duck typing, so classification costs nothing for SDKs a user does not have.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

__all__ = [
    "ClassifierRule",
    "ErrorKind",
    "add_classifier_rule",
    "classify",
    "remove_classifier_rule",
    "status_of",
]


class ErrorKind(str, enum.Enum):
    """What a failed call says about the model that served it."""

    TRANSIENT = "transient"
    """Worth retrying on the same model (rate limit, overload, 5xx, timeout)."""
    AUTH_DEAD = "auth_dead"
    """The model is unusable until someone acts (bad key, no quota, model gone): bench it."""
    REQUEST_SPECIFIC = "request_specific"
    """This request cannot succeed here (too long, filtered, invalid): try the next model."""
    UNKNOWN = "unknown"
    """Nothing recognisable; treated as transient."""

    def __str__(self) -> str:
        return self.value


ClassifierRule = Callable[[BaseException], "ErrorKind | None"]
"""A user rule: return a kind to decide, or ``None`` to defer to the next rule."""

_rules_lock = threading.Lock()
_global_rules: tuple[ClassifierRule, ...] = ()


def add_classifier_rule(rule: ClassifierRule) -> ClassifierRule:
    """Register a rule consulted by every chain before the built-in table.

    Returns the rule, so it can be used as a decorator.
    """
    if not callable(rule):
        raise TypeError(f"a classifier rule must be callable, got {type(rule).__name__}")
    global _global_rules
    with _rules_lock:
        _global_rules = (*_global_rules, rule)
    return rule


def remove_classifier_rule(rule: ClassifierRule) -> bool:
    """Unregister a global rule; says whether it was registered."""
    global _global_rules
    with _rules_lock:
        if rule not in _global_rules:
            return False
        _global_rules = tuple(r for r in _global_rules if r is not rule)
        return True


_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_AUTH_DEAD_STATUS = frozenset({401, 402, 403, 404, 410})
_REQUEST_STATUS = frozenset({400, 413, 422})

# Codes that decide whatever the status says. Lower-case; matched against body codes/types.
# AWS throttles with 400 on some services and Anthropic can send `overloaded_error` inside a
# 200 stream, so these are read before the status.
_OVERRIDING_CODES: Mapping[str, ErrorKind] = {
    "insufficient_quota": ErrorKind.AUTH_DEAD,
    "billing_hard_limit_reached": ErrorKind.AUTH_DEAD,
    "billing_error": ErrorKind.AUTH_DEAD,
    "billing_not_active": ErrorKind.AUTH_DEAD,
    "model_not_found": ErrorKind.AUTH_DEAD,
    "invalid_api_key": ErrorKind.AUTH_DEAD,
    "accessdeniedexception": ErrorKind.AUTH_DEAD,
    "unrecognizedclientexception": ErrorKind.AUTH_DEAD,
    "context_length_exceeded": ErrorKind.REQUEST_SPECIFIC,
    "string_above_max_length": ErrorKind.REQUEST_SPECIFIC,
    "content_policy_violation": ErrorKind.REQUEST_SPECIFIC,
    "content_filter": ErrorKind.REQUEST_SPECIFIC,
    "request_too_large": ErrorKind.REQUEST_SPECIFIC,
    "validationexception": ErrorKind.REQUEST_SPECIFIC,
    "overloaded_error": ErrorKind.TRANSIENT,
    "rate_limit_error": ErrorKind.TRANSIENT,
    "rate_limit_exceeded": ErrorKind.TRANSIENT,
    "throttlingexception": ErrorKind.TRANSIENT,
    "toomanyrequestsexception": ErrorKind.TRANSIENT,
    "serviceunavailableexception": ErrorKind.TRANSIENT,
    "modelnotreadyexception": ErrorKind.TRANSIENT,
    "internalserverexception": ErrorKind.TRANSIENT,
    "modeltimeoutexception": ErrorKind.TRANSIENT,
    "resource_exhausted": ErrorKind.TRANSIENT,
}

# Phrases in the message that decide whatever the status says. Lower-case substrings.
_OVERRIDING_PHRASES: tuple[tuple[str, ErrorKind], ...] = (
    ("exceeded your current quota", ErrorKind.AUTH_DEAD),
    ("insufficient_quota", ErrorKind.AUTH_DEAD),
    ("credit balance is too low", ErrorKind.AUTH_DEAD),
    ("maximum context length", ErrorKind.REQUEST_SPECIFIC),
    ("context_length_exceeded", ErrorKind.REQUEST_SPECIFIC),
    ("prompt is too long", ErrorKind.REQUEST_SPECIFIC),
    ("input is too long", ErrorKind.REQUEST_SPECIFIC),
    ("content_policy_violation", ErrorKind.REQUEST_SPECIFIC),
    ("content management policy", ErrorKind.REQUEST_SPECIFIC),
    ("content filter", ErrorKind.REQUEST_SPECIFIC),
)

# Generic codes and types, read only when no status was found (a 401 typed
# `invalid_request_error` is still an auth failure).
_CODES: Mapping[str, ErrorKind] = {
    "api_error": ErrorKind.TRANSIENT,
    "server_error": ErrorKind.TRANSIENT,
    "timeout_error": ErrorKind.TRANSIENT,
    "unavailable": ErrorKind.TRANSIENT,
    "deadline_exceeded": ErrorKind.TRANSIENT,
    "internal": ErrorKind.TRANSIENT,
    "authentication_error": ErrorKind.AUTH_DEAD,
    "permission_error": ErrorKind.AUTH_DEAD,
    "not_found_error": ErrorKind.AUTH_DEAD,
    "resourcenotfoundexception": ErrorKind.AUTH_DEAD,
    "unauthenticated": ErrorKind.AUTH_DEAD,
    "permission_denied": ErrorKind.AUTH_DEAD,
    "not_found": ErrorKind.AUTH_DEAD,
    "invalid_request_error": ErrorKind.REQUEST_SPECIFIC,
    "invalid_argument": ErrorKind.REQUEST_SPECIFIC,
    "failed_precondition": ErrorKind.REQUEST_SPECIFIC,
}

# Exception type names (anywhere in the MRO) that mean the transport failed, not the model.
_TRANSIENT_TYPE_NAMES = frozenset(
    {
        "APITimeoutError",  # openai, anthropic
        "APIConnectionError",  # openai, anthropic
        "TimeoutException",  # httpx
        "TransportError",  # httpx (connect, read, write, protocol errors)
        "ServerDisconnectedError",  # aiohttp
        "ClientConnectionError",  # aiohttp
        "ConnectionError",  # requests
        "Timeout",  # requests
        "ReadTimeoutError",  # urllib3, botocore
        "ConnectTimeoutError",  # botocore
        "EndpointConnectionError",  # botocore
    }
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes and contexts, each once, nearest first."""
    seen: set[int] = set()
    queue: list[BaseException] = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                queue.append(linked)


def _as_status(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 400 <= value <= 599 else None  # only error statuses count


def _status_here(exc: BaseException) -> int | None:
    for name in ("status_code", "status", "http_status", "code"):
        status = _as_status(getattr(exc, name, None))
        if status is not None:
            return status
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):  # botocore's ClientError keeps a dict
        meta = response.get("ResponseMetadata")
        if isinstance(meta, Mapping):
            return _as_status(meta.get("HTTPStatusCode"))
        return None
    if response is not None:
        for name in ("status_code", "status"):
            status = _as_status(getattr(response, name, None))
            if status is not None:
                return status
    return None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status carried by ``exc`` or anything on its cause/context chain."""
    for link in _chain(exc):
        status = _status_here(link)
        if status is not None:
            return status
    return None


def _strings_in(value: object, depth: int = 0) -> Iterator[str]:
    """Code-like strings in an error body: ``code``/``type``/``status`` keys at any depth."""
    if depth > 3:
        return
    if isinstance(value, Mapping):
        for key in ("code", "type", "status", "Code", "__type"):
            item = value.get(key)
            if isinstance(item, str):
                yield item
        for key in ("error", "Error", "detail"):
            if key in value:
                yield from _strings_in(value[key], depth + 1)


def _codes(exc: BaseException) -> Iterator[str]:
    """Error codes and types an exception carries, lower-cased."""
    for name in ("code", "type", "error_code", "status"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            yield value.lower()
        elif isinstance(value, enum.Enum) and isinstance(value.name, str):
            yield value.name.lower()  # grpc.StatusCode.RESOURCE_EXHAUSTED
    for name in ("body", "response", "error"):
        value = getattr(exc, name, None)
        if isinstance(value, Mapping):
            for item in _strings_in(value):
                yield item.lower()
    # botocore's ClientError and google's errors name the code in their class or `reason`.
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str):
        yield reason.lower()
    yield type(exc).__name__.lower()


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) else ""
    with contextlib.suppress(Exception):  # a broken __str__ must not break classification
        text = f"{text} {exc}"
    return text.lower()


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return any(cls.__name__ in _TRANSIENT_TYPE_NAMES for cls in type(exc).__mro__)


def _builtin(exc: BaseException) -> ErrorKind:
    links = list(_chain(exc))
    for link in links:
        for code in _codes(link):
            if code in _OVERRIDING_CODES:
                return _OVERRIDING_CODES[code]
        text = _message(link)
        for phrase, kind in _OVERRIDING_PHRASES:
            if phrase in text:
                return kind
    status = status_of(exc)
    if status is not None:
        if status in _TRANSIENT_STATUS or status >= 500:
            return ErrorKind.TRANSIENT
        if status in _AUTH_DEAD_STATUS:
            return ErrorKind.AUTH_DEAD
        if status in _REQUEST_STATUS or 400 <= status < 500:
            return ErrorKind.REQUEST_SPECIFIC
    for link in links:
        for code in _codes(link):
            if code in _CODES:
                return _CODES[code]
    if any(_is_transport_error(link) for link in links):
        return ErrorKind.TRANSIENT
    return ErrorKind.UNKNOWN


def classify(exc: BaseException, rules: Iterable[ClassifierRule] = ()) -> ErrorKind:
    """Classify ``exc``: ``rules`` first, then global rules, then the built-in table."""
    for rule in (*rules, *_global_rules):
        kind = rule(exc)
        if kind is not None:
            return ErrorKind(kind)
    return _builtin(exc)
