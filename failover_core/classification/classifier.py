"""Error classification: what a failure says about the model that raised it.

The classifier reads *evidence*, strongest first; the first step that decides wins.

1. **User rules**, per chain then global. A rule that raises is logged once and skipped.
2. **Specific codes**, on *any* link of the ``__cause__``/``__context__`` chain: code,
   type, status and reason fields, the parsed error body, JSON (or a Python repr such as
   ``code='server_error'``) that the body or message carries as text, and the
   ``"code: message"`` form of a stream's error event. ``insufficient_quota``,
   ``invalid_api_key``, ``model_not_found``, ``context_length_exceeded``,
   ``overloaded_error``, ``capacity_exceeded``. A wrapper's words never outvote a code.
   Quota codes (``rate_limit_exceeded``, ``RESOURCE_EXHAUSTED``, ``ThrottlingException``)
   are read with their window: a per-day/month quota or spent credit is auth_dead, a
   request alone over the per-minute budget is request_specific, the rest transient.
3. **The HTTP status** (the first found on the chain), refined by what the body says, in
   this order (the first family that matches wins):

   a. *Credentials, account, billing* ("incorrect API key", "arrearage", "insufficient
      credits", a spending limit, a bill overdue): auth_dead, for any 4xx status.
   b. *Quota windows*: a per-day or per-month quota ("per day", ``per 86400s``,
      ``...ByDay``) is auth_dead; a per-minute/second window is transient.
   c. *The model is not there* ("no models loaded", "unknown model", "model not
      found"): auth_dead on a 4xx.
   d. *Content filters and moderation* (any 4xx, including OpenRouter's 403 "requires
      moderation… flagged"): request_specific; a filter is the request's answer.
   e. *Context length*: request_specific, but only with context-length evidence (the
      words context, prompt or input length, a token *limit of the model*). "Too many
      tokens" alone on a throttle status with throttle words ("per minute", "please
      wait", "rate limit") is a throttle: the status wins over a loose phrase.
   f. Otherwise the status decides: 408, 409, 425, 429, 498, 499 and 5xx transient;
      401, 402, 403, 404, 410, 412, 451 auth_dead; other 4xx request_specific.

4. **No status**: the transport failed (timeouts and connection errors of any HTTP stack,
   by type name: httpx, requests/urllib3, aiohttp, azure-core, botocore, gRPC status
   codes) → transient; garbage from the provider (a ``ValueError`` such as
   ``json.JSONDecodeError`` raised while a received response was being decoded, which the
   traceback shows) → transient; generic codes (gRPC names, ``server_error``); then the
   families of step 3 read from the text, *only* for an exception typed by a provider
   SDK, and an auth_dead phrase there counts as weak evidence: transient, never a bench;
   a status printed in the text.
5. **Nothing else**: request_specific, skip without a bench. A bare builtin (``KeyError``,
   ``ValueError``) or a validation error with no code and no status says nothing of the
   provider's health, whatever words it carries ("billing", "invalid api key").

Tie-breaks: a code beats a status, a status beats a phrase; among phrases the order of
3a-e; when the evidence is weak, transient (a retry, then the next model) is preferred to
a bench. An exception raised by the caller's own code (a callback handler, a tool) is not
classified at all: the flow re-raises it (see :mod:`.origin`).

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

# Specific codes: they decide wherever they sit on the chain, whatever the status says.
_SPECIFIC_CODES: Mapping[str, ErrorKind] = {
    # billing, keys, accounts, models that do not exist (every request fails alike)
    "insufficient_quota": A,
    "billing_hard_limit_reached": A,
    "billing_error": A,
    "billing_not_active": A,
    "credit_limit": A,  # Together
    "credit_balance_exhausted": A,  # OpenAI
    "organization_spend_limit_exceeded": A,
    "project_spend_limit_exceeded": A,
    "arrearage": A,  # DashScope: the account is in arrears
    "exceeded_current_quota_error": A,  # Moonshot: suspended or out of balance
    "invalid_api_key": A,
    "invalid_authentication_error": A,  # Moonshot
    "api_key_invalid": A,  # Gemini: 400 INVALID_ARGUMENT, reason API_KEY_INVALID
    "api_key_expired": A,
    "invalidtokenerror": A,  # Cohere 498: the token is invalid
    "failed_precondition": A,  # Gemini: "enable billing", "location is not supported"
    "model_not_found": A,
    "model_not_supported": A,
    "unknown_model": A,  # Azure AI Inference / GitHub Models
    "invalid_model": A,  # Mistral, Perplexity
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
    "exceed_context_size_error": R,  # llama.cpp
    "string_above_max_length": R,
    "content_policy_violation": R,
    "content_filter": R,
    "datainspectionfailed": R,  # DashScope: the input failed its content inspection
    "data_inspection_failed": R,
    "invalid_prompt": R,  # OpenAI: flagged by the usage policy
    "request_too_large": R,
    # the provider is busy or broken for now
    "overloaded_error": T,
    "engine_overloaded_error": T,  # Moonshot
    "rate_limit_error": T,
    "rate_limit_reached_error": T,  # Moonshot
    "queue_exceeded": T,  # Cerebras: high traffic
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
        "ratelimitreached",  # Azure AI Inference / GitHub Models
        "too_many_tokens_error",  # Cerebras
        "token_quota_exceeded",
        "too_many_requests_error",
        "request_quota_exceeded",
        "throttlingexception",
        "toomanyrequestsexception",
        "servicequotaexceededexception",
        "throttling",
        "throttling.ratequota",  # DashScope
        "throttling.allocationquota",
    }
)
_LONG_QUOTA = re.compile(
    r"per ?day|per_day|/ ?day\b|per month|/ ?month\b|\(tpd\)|\(rpd\)|\btpd\b|\brpd\b"
    r"|per 86400 ?s|daily|bymonth|free-models-per-day"
)
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

# Phrase families (lower-case), read where structured fields leave the answer open.
# 3a: the key, the account or its money: nothing works until someone acts.
_ACCOUNT = re.compile(
    r"insufficient_quota|credit balance is too low|billing|incorrect api key|invalid api key"
    r"|api key not valid|api key (?:is )?(?:invalid|expired|disabled|revoked)"
    r"|invalid (?:api )?token\b|arrear|in good standing|account (?:is |has been )?suspended"
    r"|insufficient (?:credits?|balance|funds)|out of credits?|credits? (?:exhausted|expired)"
    r"|spend(?:ing)? limit|payment (?:method|required)|overdue|prepaid"
    r"|exceeded your current quota, please check your plan"
)
# 3b is _LONG_QUOTA; a throttle's own words:
_THROTTLE = re.compile(
    r"per (?:minute|second)|/ ?(?:min|minute|sec|second)\b|per 60 ?s|\b[rt]pm\b|\(tpm\)|\(rpm\)"
    r"|please wait|try again|retry|slow down|rate.?limit|too many requests|high traffic"
    r"|overloaded|byminute|bysecond|perminute|persecond"
)
# 3c: the model is not there (not loaded, unknown, not deployed) for anyone.
_NO_MODEL = re.compile(
    r"no models? (?:is |are )?loaded|unknown model|model not found|model (?:\S+ )?not found"
    r"|model_not_supported|unknown_model|model (?:is )?not supported|unsupported model"
    r"|does not exist or you do not have access|provided model identifier is invalid"
    r"|model identifier is invalid|requires more system memory|on-demand throughput isn"
    r"|not a valid model|invalid model"
)
# 3d: content filters and moderation.
_FILTER = re.compile(
    r"content_policy_violation|content management policy|content filter|content_filter"
    r"|requires moderation|flagged for|input was flagged|inappropriate content"
    r"|terminated early: safety|response has no candidates|blocked by safety"
)
# 3e: context length, with context evidence.
_CONTEXT = re.compile(
    r"maximum context length|context_length_exceeded|context length|context window"
    r"|context size|prompt is too long|input is too long|input validation error"
    r"|exceeded model token limit|request too large|reduce the length"
)
_LOOSE_CONTEXT = "too many tokens"  # Cohere's context error; also Cerebras's throttle
_BEDROCK_QUOTA = "exceeds the service quota"  # Bedrock: "resubmit your request later"
_STATUS_IN_TEXT = re.compile(r"(?:error code|status code|status)[ :=]+([45]\d\d)\b")
_REPR_CODE = re.compile(r"\b(?:code|type)=['\"]([\w.\-]+)['\"]")  # pydantic reprs
_EVENT_CODE = re.compile(r"^\s*([a-z]+(?:_[a-z]+)+): ")  # a stream event's "code: message"

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
        "ServerTimeoutError",  # aiohttp
        "ConnectionError",  # requests, botocore
        "Timeout",  # requests
        "ChunkedEncodingError",  # requests
        "ContentDecodingError",  # requests
        "ProtocolError",  # urllib3
        "NewConnectionError",  # urllib3
        "MaxRetryError",  # urllib3
        "ReadTimeoutError",  # urllib3, botocore
        "ConnectTimeoutError",  # botocore
        "EndpointConnectionError",  # botocore
        "ConnectionClosedError",  # botocore
        "ResponseStreamingError",  # botocore
        "ServiceRequestError",  # azure-core: the request did not get through
        "ServiceResponseError",  # azure-core: no (whole) response came back
        "IncompleteReadError",  # azure-core, asyncio
        "RemoteDisconnected",  # http.client
        "IncompleteRead",
        "SSEError",  # httpx-sse
    }
)
_GRPC_TRANSIENT = frozenset({"unavailable", "deadline_exceeded", "aborted", "internal"})

# Exception types that are the caller's own or a client's refusal of its arguments: with
# no status and no code, their words say nothing of the provider.
_LOCAL_MODULES = ("builtins", "pydantic_core", "pydantic", "json", "jsonschema")
_DECODE_NAMES = ("decode", "parse", "sse", "json")

_CODE_KEYS = ("code", "type", "status", "reason", "Code", "__type", "quotaId", "error_code")
_NEST_KEYS = ("error", "Error", "detail", "details", "body", "violations", "errors")
_MAX_TEXT = 20_000  # never parse more than this much text as a body


def _ends(text: str) -> str:
    """``text``, or its first and last :data:`_MAX_TEXT` characters when it is longer.

    An error can echo the whole prompt (megabytes); what says what went wrong stands
    before or after the echo, never deep inside it, and reading all of it would cost
    the event loop a second of regular expressions."""
    if len(text) <= 2 * _MAX_TEXT:
        return text
    return f"{text[:_MAX_TEXT]} … {text[-_MAX_TEXT:]}"


_MAX_FRAMES = 60  # frames read for evidence of a received response


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
    for key in ("message", "Message", "error", "detail", "title"):
        message = value.get(key)
        if isinstance(message, str):
            texts.append(message.lower())
    message = value.get("message") or value.get("Message")
    if message is not None and not isinstance(message, str):
        _walk(message, codes, texts, depth + 1)
    for key in _NEST_KEYS:
        if key in value:
            _walk(value[key], codes, texts, depth + 1)


def _grpc_code(exc: BaseException) -> str | None:
    """A gRPC error's status name: ``code()`` is a method there, not a field."""
    method = getattr(exc, "code", None)
    if not callable(method) or isinstance(method, type):
        return None
    with contextlib.suppress(Exception):
        value = method()
        name = getattr(value, "name", None)
        if isinstance(name, str):
            return name.lower()
    return None


class _Link:
    """What one exception on the chain says: codes, text, status. Read once, lazily."""

    __slots__ = ("codes", "exc", "local", "text")

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
        grpc = _grpc_code(exc)
        if grpc is not None:
            codes.append(grpc)
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
        text = _ends(text).lower()
        if "{" in text:  # LiteLLM and friends carry the provider's body as text
            _walk(_parse_text(text), codes, texts, 1)
        head = text[:_MAX_TEXT]
        codes.extend(_REPR_CODE.findall(head))  # LangChain: ValueError(response.error)
        event = _EVENT_CODE.match(head)
        if event is not None:  # LangChain: ValueError(f"{event.code}: {event.message}")
            codes.append(event.group(1))
        codes.append(type(exc).__name__.lower())
        self.codes = codes
        self.text = " ".join([text, *texts])
        self.local = _is_local(exc)


def _is_local(exc: BaseException) -> bool:
    """A builtin or validation exception: the caller's code or a client's own refusal."""
    module = type(exc).__module__.split(".")[0]
    return module in _LOCAL_MODULES


def _quota(link: _Link, status: int | None) -> ErrorKind | None:
    """A quota code: per day/month or spent credit, a request too large, or a throttle."""
    if not any(code in _QUOTA_CODES for code in link.codes):
        return None
    if status == 413 or _TOO_LARGE.search(link.text):
        return R  # Groq/OpenAI: this request alone exceeds the per-minute budget
    quota_ids = " ".join(link.codes)
    if _LONG_QUOTA.search(quota_ids) or _LONG_QUOTA.search(link.text):
        return A  # per-day (or month) quota: nothing comes back for hours
    if _THROTTLE.search(quota_ids) or _THROTTLE.search(link.text):
        return T  # a per-minute (or per-second) window: it comes back soon
    return A if _ACCOUNT.search(link.text) else T  # credit used up: a quota in money


def _specific(link: _Link, status: int | None) -> ErrorKind | None:
    """Step 2: a specific code on this link decides."""
    for code in link.codes:
        kind = _SPECIFIC_CODES.get(code)
        if kind is not None:
            return kind
    return _quota(link, status)


def _context(text: str, status: int | None) -> bool:
    """Context-length evidence; "too many tokens" counts unless a throttle says it."""
    if _CONTEXT.search(text):
        return True
    if _LOOSE_CONTEXT in text:
        throttled = _THROTTLE.search(text) is not None or status == 429
        return not throttled
    return False


def _families(text: str, status: int | None) -> ErrorKind | None:
    """Step 3a-e: the first family the text belongs to, or ``None``."""
    if _long_window(text):
        return A
    if _ACCOUNT.search(text):
        rate_only = "exceeded your current quota" in text and "rate-limit" in text
        return T if rate_only else A  # Gemini's per-minute quota points at rate limits
    if _NO_MODEL.search(text):
        return A
    if _FILTER.search(text):
        return R
    if _context(text, status):
        return R
    if _BEDROCK_QUOTA in text or _THROTTLE.search(text):
        return T
    return None


def _long_window(text: str) -> bool:
    """3b: a per-day or per-month quota (nothing comes back for hours)."""
    return _LONG_QUOTA.search(text) is not None and (
        "limit" in text or "quota" in text or "exceeded" in text or "exhausted" in text
    )


def _by_status(status: int) -> ErrorKind:
    if status in _TRANSIENT_STATUS or status >= 500:
        return T
    if status in _AUTH_DEAD_STATUS:
        return A
    return R


def _with_status(text: str, status: int) -> ErrorKind:
    """Step 3: the status, refined by the families its body belongs to."""
    family = _families(text, status)
    if status >= 500:
        # A server error is the provider's, except a model that cannot load on this host
        # or a context overflow that a server reports as 500 (llama.cpp, TGI).
        if family is R and _context(text, status):
            return R
        if family is A and "requires more system memory" in text:
            return A
        return T
    if family is None:
        return _by_status(status)
    if family is T and status not in _TRANSIENT_STATUS and _BEDROCK_QUOTA not in text:
        return _by_status(status)  # a 400 that says "try again" is still the request's
    return family


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    if any(cls.__name__ in _TRANSIENT_TYPE_NAMES for cls in type(exc).__mro__):
        return True
    return _grpc_code(exc) in _GRPC_TRANSIENT


def _received(value: object) -> bool:
    """Whether ``value`` is (or holds) an HTTP response that came back 2xx."""
    for candidate in (value, getattr(value, "response", None)):
        if candidate is None or isinstance(candidate, str | bytes | int | Mapping):
            continue
        for name in ("status_code", "status"):
            with contextlib.suppress(Exception):
                status = getattr(candidate, name, None)
                if isinstance(status, bool) or not isinstance(status, int):
                    continue
                if 200 <= status < 300 and hasattr(candidate, "headers"):
                    return True
    return False


def _garbled_stream(exc: BaseException) -> bool:
    """A decoding error raised while a 2xx response was being read: the provider sent
    garbage (invalid JSON in an event, a broken SSE frame). Its traceback shows it: a
    frame on the way from the raise holds the response being decoded."""
    names = " ".join(cls.__name__.lower() for cls in type(exc).__mro__)
    if not isinstance(exc, ValueError) and not any(word in names for word in _DECODE_NAMES):
        return False
    tb = exc.__traceback__
    frames = 0
    while tb is not None and frames < _MAX_FRAMES:
        frames += 1
        with contextlib.suppress(Exception):
            for value in list(tb.tb_frame.f_locals.values())[:40]:
                if _received(value):
                    return True
        tb = tb.tb_next
    return False


def _builtin(exc: BaseException) -> ErrorKind:
    links = [_Link(link) for link in _chain(exc)]
    status = status_of(exc)
    for link in links:
        kind = _specific(link, status)
        if kind is not None:
            return kind
    if status is not None:
        return _with_status(" ".join(link.text for link in links), status)
    if any(_is_transport_error(link.exc) for link in links):
        return T
    if any(_garbled_stream(link.exc) for link in links):
        return T  # the provider's garbage mid-stream: transient, resumable
    for link in links:
        for code in link.codes:
            if code in _GENERIC_CODES:
                return _GENERIC_CODES[code]
    # Words count only on an exception a provider's SDK typed; a builtin or validation
    # error (the caller's own, or a client refusing its arguments) says nothing.
    text = " ".join(link.text for link in links if not link.local)
    if text.strip():
        family = _families(text, None)
        if family is not None:
            return T if family is A else family  # weak evidence: never bench on a word
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
