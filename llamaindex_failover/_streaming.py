"""Streams of a failover LLM: what counts as output, which responses may be continued on
another LLM (resumed streams), the continuation as the caller sees it, and the ``served``
stamp on responses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from typing import Any, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
)
from llama_index.core.llms.llm import LLM

import failover_core as fc

from ._children import provider_of

R = TypeVar("R", ChatResponse, CompletionResponse)


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
    async for response in responses:
        yield _continuing(text, response, trim)


def served_copy(response: R, served: fc.Served) -> R:
    """A copy of the child's response naming who served it (the child's own stays clean)."""
    return response.model_copy(
        update={"additional_kwargs": {**response.additional_kwargs, "failover": served.as_dict()}}
    )


def delta_of(response: ChatResponse | CompletionResponse) -> str:
    return response.delta or ""


T = TypeVar("T")


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
    seen = policy.on_content_filter != "next"
    for response in responses:
        if not seen:
            seen = commits_chat(response)
            if not seen:
                screened(policy, key, response)
        yield response


async def ascreened_stream(
    policy: fc.FailoverPolicy, key: str, responses: AsyncIterator[ChatResponse]
) -> AsyncIterator[ChatResponse]:
    seen = policy.on_content_filter != "next"
    async for response in responses:
        if not seen:
            seen = commits_chat(response)
            if not seen:
                screened(policy, key, response)
        yield response
