"""Streams of a failover LLM: what counts as output, which responses may be continued on
another LLM (resumed streams), the continuation as the caller sees it, and the ``served``
stamp on responses."""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
)
from functools import partial
from typing import Any, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
)
from llama_index.core.llms.llm import LLM
from pydantic import BaseModel

import failover_core as fc
from failover_core.classification import content_filter

from ._children import provider_of

R = TypeVar("R", ChatResponse, CompletionResponse)
T = TypeVar("T")
U = TypeVar("U")


def commits_chat(response: ChatResponse) -> bool:
    """Output a caller can see: new text or a tool call (not an empty header chunk)."""
    if response.delta:
        return True
    message = response.message
    return bool(message.additional_kwargs.get("tool_calls")) or any(
        getattr(block, "block_type", "text") not in ("text",) for block in message.blocks
    )


def commits_completion(response: CompletionResponse) -> bool:
    return bool(response.delta)


NOT_FREE_TEXT = ("tools", "tool_choice", "response_format", "output_cls")


_NOT_PLAIN_KWARGS = ("tool_calls", "tool_call", "thinking", "reasoning", "reasoning_content")


def plain_chat(response: ChatResponse) -> bool:
    """Plain assistant text only (no tool call, no thinking or reasoning): only a stream of
    such responses may be continued on another LLM."""
    message = response.message
    if any(message.additional_kwargs.get(k) for k in _NOT_PLAIN_KWARGS):
        return False
    return all(getattr(block, "block_type", "text") == "text" for block in message.blocks)


def prefills(llm: LLM) -> bool:
    """Able to continue an assistant turn by default: llama-index's Anthropic LLMs (the
    Messages API continues a final assistant message)."""
    return provider_of(llm) == "anthropic"


_PLAIN_PREFILL = ("openrouter.ai", ":11434", "api.deepseek.com", "api.mistral.ai")


def prefill_kwargs(llm: LLM, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The call kwargs continuing a final assistant message on ``llm``: on the OpenAI wire
    (``OpenAI``, ``OpenAILike``), vLLM's and SGLang's ``continue_final_message`` and
    ``add_generation_prompt=False`` in ``extra_body``, unless the server continues an
    assistant prefill as it is (OpenRouter, Ollama, DeepSeek, Mistral)."""
    if provider_of(llm) not in ("openai", "openai_like"):
        return dict(kwargs)
    base = str(getattr(llm, "api_base", None) or "")
    if any(host in base for host in _PLAIN_PREFILL):
        return dict(kwargs)
    extra = {
        **(kwargs.get("extra_body") or {}),
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    return {**kwargs, "extra_body": extra}


def _continuing(text: str, response: ChatResponse, trim: bool) -> ChatResponse:
    """A continuation's response as the caller sees it: the message holds the whole answer
    (the text delivered before, then the continuation so far), the delta only what is new."""
    content = response.message.content or ""
    delta = response.delta
    if trim:  # whitespace the prefill left out: the caller has it already
        before = content[: len(content) - len(delta or "")]
        if delta and not before.strip():
            delta = delta.lstrip()
        content = content.lstrip()
    message = ChatMessage(
        role=MessageRole.ASSISTANT,
        content=text + content,
        additional_kwargs=response.message.additional_kwargs,
    )
    return response.model_copy(update={"message": message, "delta": delta})


def after_prefill(text: str, responses: Iterator[ChatResponse]) -> Iterator[ChatResponse]:
    trim = text != text.rstrip()
    for response in responses:
        yield _continuing(text, response, trim)


async def aafter_prefill(
    text: str, responses: AsyncIterator[ChatResponse]
) -> AsyncIterator[ChatResponse]:
    trim = text != text.rstrip()
    try:
        async for response in responses:
            yield _continuing(text, response, trim)
    finally:
        await aclose(responses)


# An async generator that stops being read is closed only when it is collected (later, or
# at the next GC when it sits in a cycle), and closing one does not close the stream it was
# reading. So every async stream here closes the one it reads as it closes: a stream the
# caller abandons (``aclose()``, or dropped) closes the child's HTTP stream at once.


async def aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def arelay(
    open_stream: Callable[[], Awaitable[AsyncIterator[T]]],
) -> AsyncGenerator[T, None]:
    """The stream ``open_stream()`` gives (``await llm.astream_chat(...)``), relayed."""
    stream = await open_stream()
    try:
        async for item in stream:
            yield item
    finally:
        await aclose(stream)


async def amap(stream: AsyncIterator[T], fn: Callable[[T], U]) -> AsyncGenerator[U, None]:
    """``fn`` of each item of ``stream``."""
    try:
        async for item in stream:
            yield fn(item)
    finally:
        await aclose(stream)


def served_copy(response: R, served: fc.Served) -> R:
    """A copy of the child's response naming who served it (the child's own stays clean):
    in ``additional_kwargs["failover"]``, and in ``raw["failover"]`` too, which is what
    agents pass on (``AgentOutput.raw``, ``AgentStream.raw``)."""
    stamp = served.as_dict()
    return response.model_copy(
        update={
            "additional_kwargs": {**response.additional_kwargs, "failover": stamp},
            "raw": _stamped(response.raw, stamp),
        }
    )


def _stamped(raw: Any, stamp: dict[str, Any]) -> Any:
    """``raw`` with ``"failover"`` beside the provider's fields, as a mapping or a model
    that takes extra fields (the OpenAI SDK's); any other raw object is left as it is."""
    if raw is None:
        return {"failover": stamp}
    if isinstance(raw, Mapping):
        return {**raw, "failover": stamp}
    if isinstance(raw, BaseModel) and raw.model_config.get("extra") == "allow":
        return raw.model_copy(update={"failover": stamp})
    return raw


def delta_of(response: ChatResponse | CompletionResponse) -> str:
    return response.delta or ""


def screened(policy: fc.FailoverPolicy, key: str, answer: T) -> T:
    """``answer``, unless it is a content filter's refusal (read from the response's
    ``raw``) and the chain tries the next model on those (``on_content_filter="next"``):
    then it is raised for the flow. With ``"raise"`` it is returned as the child gave it."""
    if policy.on_content_filter == "next" and isinstance(answer, ChatResponse | CompletionResponse):
        reason = fc.refusal_of(answer.raw)
        if reason is not None:
            raise fc.ContentFilteredAnswer(key, reason, answer)
    return answer


async def ascreened(policy: fc.FailoverPolicy, key: str, answer: Awaitable[T]) -> T:
    return screened(policy, key, await answer)


def screened_stream(
    policy: fc.FailoverPolicy, key: str, responses: Iterator[ChatResponse]
) -> Iterator[ChatResponse]:
    """A chat stream whose refusal, arriving before any output, is raised as
    :func:`screened` does (so the next LLM answers); after output it is passed on."""
    if policy.on_content_filter != "next":
        return responses
    return content_filter.screened_stream(responses, commits_chat, partial(screened, policy, key))


def ascreened_stream(
    policy: fc.FailoverPolicy, key: str, responses: AsyncIterator[ChatResponse]
) -> AsyncIterator[ChatResponse]:
    if policy.on_content_filter != "next":
        return responses
    return content_filter.ascreened_stream(responses, commits_chat, partial(screened, policy, key))
