"""Content filters: a provider's refusal, as an error or as an answer.

A content filter is the provider's verdict on the request, not an outage: ``classify()``
calls its errors ``request_specific`` (no bench), and ``on_content_filter`` decides whether
the refusal reaches the caller at once (``"raise"``, the default) or the next model is
tried (``"next"``). Both forms are read here, by duck typing, with no SDK imported:

* an error: OpenAI/Azure ``content_policy_violation``, ``content_filter``,
  ``invalid_prompt`` and ``ResponsibleAIPolicyViolation``, moderation 403s (OpenRouter's
  "flagged for moderation"), Gemini safety blocks, Bedrock guardrails;
* an answer: a 200 whose finish reason is ``content_filter`` (OpenAI, Azure), Anthropic's
  ``stop_reason: "refusal"``, Gemini's ``SAFETY``/``PROHIBITED_CONTENT``/``BLOCKLIST``/
  ``SPII`` or a blocked prompt, Bedrock's ``guardrail_intervened``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, TypeVar

__all__ = [
    "ContentFilteredAnswer",
    "ascreened_stream",
    "is_content_filter",
    "refusal_of",
    "screened_stream",
]

T = TypeVar("T")

_CODES = frozenset(
    {
        "content_policy_violation",
        "content_filter",
        "contentfilter",
        "content_filtered",
        "invalid_prompt",
        "responsibleaipolicyviolation",
        "prohibited_content",
        "safety",
        "blocklist",
        "spii",
        "guardrail_intervened",
        "moderation",
        "contentfilterfinishreasonerror",  # openai's parse() on a filtered answer
    }
)
_PHRASES = (
    "content_policy_violation",
    "content policy",
    "content management policy",
    "content filter",
    "content_filter",
    "flagged for moderation",
    "requires moderation",
    "flagged as potentially violating",
    "usage policy",
    "safety system",
    "blocked due to safety",
    "safety settings",
    "prompt was blocked",
    "guardrail",
)
_FILTER_STATUSES = frozenset({400, 403, 422, 451})
_GEMINI_BLOCKS = frozenset({"safety", "prohibited_content", "blocklist", "spii", "image_safety"})


class ContentFilteredAnswer(Exception):
    """An answer that is a refusal, raised by an adapter so that ``on_content_filter=
    "next"`` tries the next model. ``answer`` is the child's answer as it returned it."""

    def __init__(self, model: str, reason: str, answer: object = None) -> None:
        super().__init__(f"{model} refused to answer (content filter: {reason})")
        self.model, self.reason, self.answer = model, reason, answer


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    queue: list[BaseException] = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        queue += [e for e in (current.__cause__, current.__context__) if e is not None]


def _status(exc: BaseException) -> int | None:
    for holder in (exc, getattr(exc, "response", None)):
        for name in ("status_code", "status", "http_status"):
            value = getattr(holder, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def _strings(value: object, depth: int = 0) -> Iterator[str]:
    """Code-like strings and messages of an error body (parsed JSON), lowercased."""
    if depth > 5:
        return
    if isinstance(value, str):
        if depth:
            yield value.lower()
        return
    if isinstance(value, Mapping):
        for key in ("code", "type", "reason", "status", "message", "Code", "__type"):
            item = value.get(key)
            if isinstance(item, str):
                yield item.lower()
        for key in ("error", "innererror", "metadata", "details", "body", "Error", "reasons"):
            if key in value:
                yield from _strings(value[key], depth + 1)
    elif isinstance(value, list | tuple):
        for item in value[:10]:
            yield from _strings(item, depth + 1)


def _said(exc: BaseException) -> tuple[set[str], str]:
    codes: set[str] = {type(exc).__name__.lower()}
    texts: list[str] = []
    for name in ("code", "type", "reason", "error_code"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            codes.add(value.lower())
    for name in ("body", "error", "json_body", "details"):
        value = getattr(exc, name, None)
        if isinstance(value, str) and "{" in value:
            with contextlib.suppress(ValueError):
                value = json.loads(value[value.find("{") : value.rfind("}") + 1])
        for item in _strings(value, 1):
            (codes.add(item) if " " not in item else texts.append(item))
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):  # botocore's ClientError
        for item in _strings(response, 1):
            (codes.add(item) if " " not in item else texts.append(item))
    with contextlib.suppress(Exception):
        texts.append(str(exc).lower())
    return codes, " ".join(texts)


def is_content_filter(exc: BaseException) -> bool:
    """Whether ``exc`` is a provider's content filter (or a refused answer an adapter
    raised): the provider's verdict on this request, never an outage.

    Read from the error's code, type and message on its cause/context chain; an error
    with a 5xx or 429 status is never one.
    """
    for link in _chain(exc):
        if isinstance(link, ContentFilteredAnswer):
            return True
        status = _status(link)
        if status is not None and status not in _FILTER_STATUSES:
            continue
        codes, text = _said(link)
        if codes & _CODES:
            return True
        if any(phrase in text for phrase in _PHRASES):
            return True
    return False


def _as_mapping(value: object) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        with contextlib.suppress(Exception):
            dumped = dump()
            if isinstance(dumped, Mapping):
                return dumped
    return None


def refusal_of(metadata: object, depth: int = 0) -> str | None:
    """The content filter that stopped an answer, read from its metadata (a LangChain
    message's ``response_metadata``, a LlamaIndex response's ``raw``), or ``None``.

    ``"content_filter"`` (OpenAI, Azure), ``"refusal"`` (Anthropic), ``"safety"`` and
    its kin or ``"prompt_blocked"`` (Gemini), ``"guardrail_intervened"`` (Bedrock).
    """
    data = _as_mapping(metadata)
    if data is None or depth > 3:
        return None
    for key in ("finish_reason", "stop_reason", "stopReason", "finishReason"):
        value = data.get(key)
        if not isinstance(value, str):
            value = getattr(value, "name", None)  # Gemini's FinishReason enum
        if not isinstance(value, str):
            continue
        reason = value.lower().removeprefix("finishreason.")
        if reason == "content_filter":
            return "content_filter"
        if reason == "refusal":
            return "refusal"
        if reason in _GEMINI_BLOCKS:
            return reason
        if reason == "guardrail_intervened":
            return reason
    if str(data.get("amazon-bedrock-guardrailAction", "")).upper() == "INTERVENED":
        return "guardrail_intervened"
    feedback = _as_mapping(data.get("prompt_feedback") or data.get("promptFeedback"))
    if feedback is not None:
        block = feedback.get("block_reason") or feedback.get("blockReason")
        if block and str(block).lower() not in ("0", "block_reason_unspecified"):
            return "prompt_blocked"
    for key in ("choices", "candidates"):
        items = data.get(key)
        if isinstance(items, list) and items:
            found = refusal_of(items[0], depth + 1)
            if found is not None:
                return found
    return None


def screened_stream(
    items: Iterator[T], commits: Callable[[T], bool], screen: Callable[[T], object]
) -> Iterator[T]:
    """A stream whose items are screened (``screen`` raises a refusal, so the flow tries
    the next model) until the first that commits output; after output, a refusal is the
    caller's to see and items are passed on as they are."""
    seen = False
    for item in items:
        if not seen:
            seen = commits(item)
            if not seen:
                screen(item)
        yield item


async def ascreened_stream(
    items: AsyncIterator[T], commits: Callable[[T], bool], screen: Callable[[T], object]
) -> AsyncIterator[T]:
    """The async twin of :func:`screened_stream`; closing it closes ``items`` at once."""
    seen = False
    try:
        async for item in items:
            if not seen:
                seen = commits(item)
                if not seen:
                    screen(item)
            yield item
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()
