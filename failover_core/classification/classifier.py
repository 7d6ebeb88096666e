"""Error classification: what a failure says about the model that raised it.

Rule order (the first step that decides wins):

1. User rules, per chain then global. A rule that raises is logged once and skipped.
2. Specific codes found on *any* link of the ``__cause__``/``__context__`` chain: code,
   type, status and reason fields, the parsed error body, and JSON the body or message
   carries as text (LiteLLM, Mistral). ``insufficient_quota``, ``API_KEY_INVALID``,
   ``context_length_exceeded``, ``overloaded_error``, a quota that is per day or per minute.
   A wrapper's message text never outvotes these.
3. The HTTP status, the first found on the chain. For the statuses providers overload
   (400, 403, 413, 422, 429, 500) a documented phrase refines it: a 400 saying "credit
   balance is too low" is billing, a 403 about the context length is the request's.
4. No status: phrases, then generic codes (gRPC names, ``invalid_request_error``), then
   transport errors (timeouts, connection errors: transient), then a status in the text.
5. Anything else was raised before a request reached the provider (a client refusing its
   arguments) or says nothing about its health: request_specific, skip without a bench.

No SDK is imported: every SDK's errors are read by duck typing, so classification costs
nothing for SDKs a user does not have. ``tests/providers`` holds the real exceptions.
"""

from __future__ import annotations

import ast
import contextlib
import enum
import json
import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping

__all__ = [
    "ClassifierRule",
    "ErrorKind",
    "add_classifier_rule",
    "classify",
    "remove_classifier_rule",
    "status_of",
]

_logger = logging.getLogger("llm_failover")


class ErrorKind(str, enum.Enum):
    """What a failed call says about the model that served it."""

    TRANSIENT = "transient"
    """Worth retrying on the same model (rate limit, overload, 5xx, timeout)."""
    AUTH_DEAD = "auth_dead"
    """The model is unusable until someone acts (bad key, no quota, model gone): bench it."""
    REQUEST_SPECIFIC = "request_specific"
    """This request cannot succeed here (too long, filtered, invalid): try the next model."""
    UNKNOWN = "unknown"
    """For user rules: nothing recognisable, treated as transient."""

    def __str__(self) -> str:
        return self.value


ClassifierRule = Callable[[BaseException], "ErrorKind | None"]
"""A user rule: return a kind to decide, or ``None`` to defer to the next rule."""

_rules_lock = threading.Lock()
_global_rules: tuple[ClassifierRule, ...] = ()
_failed_rules: set[int] = set()  # ids of rules whose failure was already logged


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


T, A, R = ErrorKind.TRANSIENT, ErrorKind.AUTH_DEAD, ErrorKind.REQUEST_SPECIFIC

_TRANSIENT_STATUS = frozenset({408, 409, 424, 425, 429, 498, 499, 500, 502, 503, 504, 529})
_AUTH_DEAD_STATUS = frozenset({401, 402, 403, 404, 410, 412, 451})
# Statuses whose meaning providers overload; a documented phrase may refine them.
_REFINABLE_STATUS = frozenset({400, 403, 413, 422, 429, 500})

# Specific codes: they decide wherever they sit on the chain, whatever the status says.
_SPECIFIC_CODES: Mapping[str, ErrorKind] = {
    # billing, keys, accounts, models that do not exist (every request fails alike)
    "insufficient_quota": A,
    "billing_hard_limit_reached": A,
    "billing_error": A,
    "billing_not_active": A,
    "invalid_api_key": A,
    "api_key_invalid": A,  # Gemini: 400 INVALID_ARGUMENT, reason API_KEY_INVALID
    "api_key_expired": A,
    "failed_precondition": A,  # Gemini: "enable billing", "location is not supported"
    "model_not_found": A,
    "invalid_model": A,  # Mistral
    "model_decommissioned": A,  # Groq
    "deploymentnotfound": A,  # Azure OpenAI
    "operationnotsupported": A,  # Azure: the deployed model cannot chat at all
    "organization_restricted": A,  # Groq
    "unsupported_country_region_territory": A,  # OpenAI
    "accessdeniedexception": A,  # Bedrock
    "unrecognizedclientexception": A,
    "expiredtokenexception": A,
    "nocredentialserror": A,  # botocore, before sending: no credentials at all
    "partialcredentialserror": A,
    # this request can never succeed on this model
    "context_length_exceeded": R,
    "string_above_max_length": R,
    "content_policy_violation": R,
    "content_filter": R,
    "invalid_prompt": R,  # OpenAI: flagged by the usage policy
    "request_too_large": R,
    # the provider is busy or broken for now
    "overloaded_error": T,
    "rate_limit_error": T,
    "capacity_exceeded": T,  # Groq 498 flex tier
    "modelnotreadyexception": T,
    "internalserverexception": T,
    "modeltimeoutexception": T,
    "modelstreamerrorexception": T,
    "modelerrorexception": T,
    "serviceunavailableexception": T,
}

# Quota codes: transient, unless the quota is per day or month (billing-like: nothing
# comes back for hours) or the request alone exceeds the per-minute budget.
_QUOTA_CODES = frozenset(
    {
        "resource_exhausted",
        "rate_limit_exceeded",
        "throttlingexception",
        "toomanyrequestsexception",
        "servicequotaexceededexception",
    }
)
_LONG_QUOTA = re.compile(r"perday|per_day|per day|/ ?day\b|per month|/ ?month\b|\(tpd\)|\(rpd\)")
_TOO_LARGE = re.compile(r"request too large|reduce your message size")

# Generic codes, read only when no status was found (a 401 typed `invalid_request_error`
# is still an auth failure): gRPC status names, SDK error types.
_GENERIC_CODES: Mapping[str, ErrorKind] = {
    "api_error": T,
    "server_error": T,
    "timeout_error": T,
    "unavailable": T,
    "deadline_exceeded": T,
    "internal": T,
    "cancelled": T,
    "aborted": T,
    "authentication_error": A,
    "permission_error": A,
    "not_found_error": A,
    "resourcenotfoundexception": A,
    "unauthenticated": A,
    "permission_denied": A,
    "not_found": A,
    "invalid_request_error": R,
    "invalid_argument": R,
    "validationexception": R,
    "out_of_range": R,
}

# Documented phrases (lower-case substrings), read only where structured fields leave the
# answer open: a refinable status, or none at all.
_PHRASES: tuple[tuple[str, ErrorKind], ...] = (
    # billing and dead models
    ("insufficient_quota", A),
    ("credit balance is too low", A),  # Anthropic: 400 invalid_request_error
    ("billing", A),
    ("on-demand throughput isn", A),  # Bedrock: needs an inference profile
    ("provided model identifier is invalid", A),  # Bedrock
    ("model identifier is invalid", A),
    ("api key not valid", A),  # Gemini
    ("invalid api key", A),
    ("requires more system memory", A),  # Ollama: the model cannot load on this host
    ("does not exist or you do not have access", A),
    # the provider is busy
    ("exceeds the service quota", T),  # Bedrock: "resubmit your request later"
    # the request's own fault
    ("maximum context length", R),
    ("context_length_exceeded", R),
    ("context length", R),  # Together: 403 "... less than the context length"
    ("context window", R),
    ("prompt is too long", R),
    ("input is too long", R),
    ("too many tokens", R),  # Cohere
    ("input validation error", R),  # Together: inputs + max_new_tokens over the context
    ("request too large", R),
    ("content_policy_violation", R),
    ("content management policy", R),
    ("content filter", R),
    ("terminated early: safety", R),  # LlamaIndex Gemini: a safety block
    ("response has no candidates", R),  # LlamaIndex Gemini: the prompt was blocked
    ("blocked by safety", R),
)
_QUOTA_PHRASE = "exceeded your current quota"  # OpenAI billing and Gemini per-minute alike
_STATUS_IN_TEXT = re.compile(r"(?:error code|status code|status)[ :=]+([45]\d\d)\b")

# Exception type names (anywhere in the MRO) that mean the transport failed, not the model.
_TRANSIENT_TYPE_NAMES = frozenset(
    {
        "APITimeoutError",  # openai, anthropic, groq, together, fireworks
        "APIConnectionError",
        "TimeoutException",  # httpx
        "TransportError",  # httpx (connect, read, write, protocol errors)
        "ServerDisconnectedError",  # aiohttp
        "ClientConnectionError",  # aiohttp
        "ClientPayloadError",  # aiohttp: the body broke off
        "ConnectionError",  # requests
        "Timeout",  # requests
        "ChunkedEncodingError",  # requests
        "ReadTimeoutError",  # urllib3, botocore
        "ConnectTimeoutError",  # botocore
        "EndpointConnectionError",  # botocore
        "ConnectionClosedError",  # botocore
        "ResponseStreamingError",  # botocore
    }
)

_CODE_KEYS = ("code", "type", "status", "reason", "Code", "__type", "quotaId", "error_code")
_NEST_KEYS = ("error", "Error", "detail", "details", "body", "violations", "errors")
_MAX_TEXT = 20_000  # never parse more than this much text as a body


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


def _parse_text(text: str) -> object:
    """The JSON (or Python literal) document embedded in ``text``, if any."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start or end - start > _MAX_TEXT:
        return None
    snippet = text[start : end + 1]
    try:
        return json.loads(snippet)
    except ValueError:
        pass
    try:  # openai-style messages embed the body's repr: "Error code: 429 - {'error': ...}"
        return ast.literal_eval(snippet)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _walk(value: object, codes: list[str], texts: list[str], depth: int = 0) -> None:
    """Collect code-like strings and messages from an error body, at any sensible depth."""
    if depth > 6:
        return
    if isinstance(value, str):
        if depth and "{" in value:
            _walk(_parse_text(value), codes, texts, depth + 1)
        return
    if isinstance(value, list | tuple):
        for item in value[:20]:
            _walk(item, codes, texts, depth + 1)
        return
    if not isinstance(value, Mapping):
        return
    for key in _CODE_KEYS:
        item = value.get(key)
        if isinstance(item, str):
            codes.append(item.lower())
    message = value.get("message") or value.get("Message")
    if isinstance(message, str):
        texts.append(message.lower())
    elif message is not None:
        _walk(message, codes, texts, depth + 1)
    for key in _NEST_KEYS:
        if key in value:
            _walk(value[key], codes, texts, depth + 1)


class _Link:
    """What one exception on the chain says: codes, text, status. Read once, lazily."""

    __slots__ = ("codes", "exc", "text")

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        codes: list[str] = []
        texts: list[str] = []
        for name in ("code", "type", "error_code", "status", "reason"):
            value = getattr(exc, name, None)
            if isinstance(value, str):
                codes.append(value.lower())
            elif isinstance(value, enum.Enum) and isinstance(value.name, str):
                codes.append(value.name.lower())  # grpc.StatusCode.RESOURCE_EXHAUSTED
        for name in ("body", "response", "error", "details", "json_body"):
            value = getattr(exc, name, None)
            if isinstance(value, str):
                value = _parse_text(value[:_MAX_TEXT])
            _walk(value, codes, texts, 1)
        text = ""
        message = getattr(exc, "message", None)
        if isinstance(message, str):
            text = message
        with contextlib.suppress(Exception):  # a broken __str__ must not break classification
            text = f"{text} {exc}"
        text = text.lower()
        if "{" in text:  # LiteLLM and friends carry the provider's body as text
            _walk(_parse_text(text), codes, texts, 1)
        codes.append(type(exc).__name__.lower())
        self.codes = codes
        self.text = " ".join([text, *texts])


def _specific(link: _Link, status: int | None) -> ErrorKind | None:
    """Step 2: a specific code on this link decides."""
    for code in link.codes:
        kind = _SPECIFIC_CODES.get(code)
        if kind is not None:
            return kind
    if any(code in _QUOTA_CODES for code in link.codes):
        if status == 413 or _TOO_LARGE.search(link.text):
            return R  # Groq/OpenAI: this request alone exceeds the per-minute budget
        quota_ids = " ".join(link.codes)
        if _LONG_QUOTA.search(quota_ids) or _LONG_QUOTA.search(link.text):
            return A  # per-day (or month) quota: nothing comes back for hours
        return T
    return None


def _phrase(text: str) -> ErrorKind | None:
    if _LONG_QUOTA.search(text):
        return A  # "tokens per day", "1000 API calls / month": nothing comes back for hours
    if _QUOTA_PHRASE in text:
        # Gemini's per-minute wording points at its rate-limit docs; OpenAI's is billing.
        return T if "rate-limit" in text or "rate limit" in text else A
    for phrase, kind in _PHRASES:
        if phrase in text:
            return kind
    return None


def _by_status(status: int) -> ErrorKind:
    if status in _TRANSIENT_STATUS or status >= 500:
        return T
    if status in _AUTH_DEAD_STATUS:
        return A
    return R


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return any(cls.__name__ in _TRANSIENT_TYPE_NAMES for cls in type(exc).__mro__)


def _builtin(exc: BaseException) -> ErrorKind:
    links = [_Link(link) for link in _chain(exc)]
    status = status_of(exc)
    for link in links:
        kind = _specific(link, status)
        if kind is not None:
            return kind
    text = " ".join(link.text for link in links)
    if status is not None:
        if status in _REFINABLE_STATUS:
            refined = _phrase(text)
            if refined is not None:
                return refined
        return _by_status(status)
    kind = _phrase(text)
    if kind is not None:
        return kind
    for link in links:
        for code in link.codes:
            if code in _GENERIC_CODES:
                return _GENERIC_CODES[code]
    if any(_is_transport_error(link.exc) for link in links):
        return T
    match = _STATUS_IN_TEXT.search(text)
    if match is not None:
        return _by_status(int(match.group(1)))
    return R  # raised before any request reached the provider: says nothing of its health


def _apply(rule: ClassifierRule, exc: BaseException) -> ErrorKind | None:
    """Run one user rule; a rule that raises (or returns junk) defers, logged once."""
    try:
        kind = rule(exc)
        return None if kind is None else ErrorKind(kind)
    except Exception as failure:
        with _rules_lock:
            first = id(rule) not in _failed_rules
            _failed_rules.add(id(rule))
        if first:  # the rule's own traceback only: the provider's error may echo the prompt
            detail = "".join(traceback.format_exception(failure, chain=False)).rstrip()
            _logger.warning(
                "failover: classifier rule %r raised; deferring to the next rule "
                "(logged once per rule)\n%s",
                rule,
                detail,
            )
        return None


def classify(exc: BaseException, rules: Iterable[ClassifierRule] = ()) -> ErrorKind:
    """Classify ``exc``: ``rules`` first, then global rules, then the built-in table."""
    for rule in (*rules, *_global_rules):
        kind = _apply(rule, exc)
        if kind is not None:
            return kind
    return _builtin(exc)
