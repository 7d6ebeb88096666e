"""Streams of a failover chat model: what counts as output, which chunks may be continued
on another model (resumed streams), the continuation's prefill, and the ``served`` stamp
on the first chunk of each model's output."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

import failover_core as fc
from failover_core.classification import content_filter

from ._children import STRUCTURED_KWARGS, Request


def message_text(chunk: AIMessageChunk) -> str:
    return chunk.text


def commits(chunk: AIMessageChunk) -> bool:
    """Output a caller can see: text or a tool call. A bare role header is not output."""
    return bool(chunk.content or chunk.tool_call_chunks)


def served_copy(message: BaseMessage, served: fc.Served, *, first: bool = True) -> Any:
    """A copy of the child's message saying who served it: the child's own message (and
    its cache entry) is left as it was.

    The first chunk of a resumed stream's continuation (``first`` false) says only what
    the resumption adds (``resumed_from``, ``resumed_on``, ``resumed_after``): LangChain
    adds chunks up by joining their strings, and a second ``model`` would be glued onto
    the first.
    """
    info = served.as_dict()
    if not first:
        info = {
            "resumed_from": served.resumed_from,
            "resumed_on": served.model,
            "resumed_after": served.resumed_after,
        }
    metadata = {**message.response_metadata, "failover": info}
    return message.model_copy(update={"response_metadata": metadata})


class Stamps:
    """What the caller sees of each chunk of a failover stream.

    - The first chunk of each model's output says who served (:func:`served_copy`).
    - The last chunk a child streams (``chunk_position="last"``) says it too, in place:
      handlers that pass chunks on (LangGraph's "messages" mode) hold that very object,
      so an agent's user reads who served each model call from its last chunk. The
      caller's copy leaves it out: chunks add up, and a second stamp would be glued on.
    - A resumed stream keeps the first model's ``model_provider``: LangChain joins
      different strings of chunks ("openai" + "anthropic").
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A new answer starts (the stream started over on another model)."""
        self.shown: fc.Served | None = None
        self.provider: object = None

    def __call__(self, chunk: AIMessageChunk, served: fc.Served) -> AIMessageChunk:
        metadata = chunk.response_metadata
        last = chunk.chunk_position == "last" and "failover" not in metadata
        if last:
            metadata["failover"] = served.as_dict()
        if served is not self.shown:
            chunk = served_copy(chunk, served, first=self.shown is None)
            self.shown = served
        elif last:
            kept = {k: v for k, v in metadata.items() if k != "failover"}
            chunk = chunk.model_copy(update={"response_metadata": kept})
        provider = chunk.response_metadata.get("model_provider")
        if provider is not None:
            if self.provider is None:
                self.provider = provider
            elif provider != self.provider:
                kept = {k: v for k, v in chunk.response_metadata.items() if k != "model_provider"}
                chunk = chunk.model_copy(update={"response_metadata": kept})
        return chunk


_NOT_PLAIN_KWARGS = ("tool_calls", "function_call", "reasoning_content", "reasoning", "parsed")


def plain(chunk: AIMessageChunk) -> bool:
    """Plain assistant text only: no tool call, no reasoning or thinking, no parsed output.
    Only a stream of such chunks may be continued on another model."""
    if chunk.tool_call_chunks or chunk.tool_calls or chunk.invalid_tool_calls:
        return False
    if any(chunk.additional_kwargs.get(k) for k in _NOT_PLAIN_KWARGS):
        return False
    if isinstance(chunk.content, str):
        return True
    return all(
        isinstance(block, str) or (isinstance(block, dict) and block.get("type") == "text")
        for block in chunk.content
    )


def resumable_request(request: Request) -> bool:
    """Free text was asked for: no structured output, no JSON mode, no forced tool."""
    if any(request.call.get(k) for k in (*STRUCTURED_KWARGS, "response_format")):
        return False
    choice = request.tools.get("tool_choice")
    return not request.tools.get("tools") or choice in (None, "auto", "none")


def prefills(model: BaseChatModel) -> bool:
    """Able to continue an assistant turn by default: a ``ChatAnthropic`` (the Messages
    API continues a final assistant message; its Bedrock and Vertex kin too)."""
    return any(
        cls.__name__ == "ChatAnthropic" and cls.__module__.startswith("langchain_anthropic")
        for cls in type(model).__mro__
    )


def openai_wire(model: BaseChatModel) -> bool:
    """Whether ``model`` speaks the OpenAI chat-completions API (``ChatOpenAI`` and its
    kin: Azure, DeepSeek, xAI, any OpenAI-compatible server behind a ``base_url``)."""
    return any(
        cls.__name__ == "BaseChatOpenAI" and cls.__module__.startswith("langchain_openai")
        for cls in type(model).__mro__
    )


# Servers that continue a final assistant message as it is (an assistant prefill):
# OpenRouter, Ollama (port 11434), llama.cpp's server, DeepSeek, Mistral. Any other
# OpenAI-compatible server is asked the vLLM/SGLang way as well (unknown fields are
# ignored by the others; a server that refuses them answers 400, and the next able model
# is asked).
_PLAIN_PREFILL = ("openrouter.ai", ":11434", "api.deepseek.com", "api.mistral.ai")


def prefill_call(model: BaseChatModel, call: dict[str, Any]) -> dict[str, Any]:
    """The call kwargs continuing a final assistant message on ``model``: on the OpenAI
    wire, vLLM's and SGLang's ``continue_final_message=True`` and
    ``add_generation_prompt=False`` (sent in ``extra_body``, merged with the model's own),
    unless the server is one that continues an assistant prefill as it is."""
    if not openai_wire(model):
        return call
    base = str(getattr(model, "openai_api_base", None) or "")
    if any(host in base for host in _PLAIN_PREFILL):
        return call
    extra = {
        **(getattr(model, "extra_body", None) or {}),
        **(call.get("extra_body") or {}),
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    return {**call, "extra_body": extra}


def after_prefill(text: str, chunks: Iterator[AIMessageChunk]) -> Iterator[AIMessageChunk]:
    """A continuation as the caller should see it: whitespace the prefill left out (the
    caller has it already) is not repeated at its start."""
    trim = text != text.rstrip()
    for chunk in chunks:
        if trim and chunk.content:
            trim, chunk = False, _lstripped(chunk)
        yield chunk


async def aafter_prefill(
    text: str, chunks: AsyncIterator[AIMessageChunk]
) -> AsyncIterator[AIMessageChunk]:
    trim = text != text.rstrip()
    async for chunk in chunks:
        if trim and chunk.content:
            trim, chunk = False, _lstripped(chunk)
        yield chunk


def _lstripped(chunk: AIMessageChunk) -> AIMessageChunk:
    if isinstance(chunk.content, str):
        return chunk.model_copy(update={"content": chunk.content.lstrip()})
    return chunk


def streams(model: BaseChatModel) -> bool:
    return type(model)._stream is not BaseChatModel._stream


def as_chunk(message: BaseMessage) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=message_chunk(message))


def message_chunk(message: BaseMessage) -> AIMessageChunk:
    """``message`` as the one chunk of a stream: what a child that does not stream
    (``disable_streaming``, no ``_stream``) gives from ``stream()`` is a whole
    ``AIMessage``; its tool calls become tool-call chunks, so adding chunks up (and
    ``commits``) works as for any stream."""
    if isinstance(message, AIMessageChunk):
        return message
    fields = message.model_dump(exclude={"type", "tool_calls", "invalid_tool_calls"})
    calls = [
        tool_call_chunk(
            name=call["name"], args=json.dumps(call["args"]), id=call.get("id"), index=n
        )
        for n, call in enumerate(getattr(message, "tool_calls", None) or [])
    ]
    calls += [
        tool_call_chunk(name=bad.get("name"), args=bad.get("args"), id=bad.get("id"), index=n)
        for n, bad in enumerate(getattr(message, "invalid_tool_calls", None) or [], len(calls))
    ]
    fields.pop("tool_call_chunks", None)
    return AIMessageChunk(**fields, tool_call_chunks=calls, chunk_position="last")


def message_chunks(chunks: Iterable[BaseMessage]) -> Iterator[AIMessageChunk]:
    for chunk in chunks:
        yield message_chunk(chunk)


async def amessage_chunks(chunks: AsyncIterable[BaseMessage]) -> AsyncIterator[AIMessageChunk]:
    async for chunk in chunks:
        yield message_chunk(chunk)


def chunk_text(chunk: ChatGenerationChunk) -> str:
    return chunk.message.text


def chunk_commits(chunk: ChatGenerationChunk) -> bool:
    message = chunk.message
    return commits(message) if isinstance(message, AIMessageChunk) else bool(message.content)


def joined(chunks: Iterator[AIMessageChunk]) -> AIMessage:
    from langchain_core.messages import message_chunk_to_message

    output: AIMessageChunk | None = None
    for chunk in chunks:
        output = chunk if output is None else output + chunk
    if output is None:
        raise ValueError("the stream produced no chunks")
    return cast(AIMessage, message_chunk_to_message(output))


async def ajoined(chunks: AsyncIterator[AIMessageChunk]) -> AIMessage:
    from langchain_core.messages import message_chunk_to_message

    output: AIMessageChunk | None = None
    async for chunk in chunks:
        output = chunk if output is None else output + chunk
    if output is None:
        raise ValueError("the stream produced no chunks")
    return cast(AIMessage, message_chunk_to_message(output))


M = TypeVar("M", bound=BaseMessage)


def screened(policy: fc.FailoverPolicy, key: str, message: M) -> M:
    """``message``, unless it is a content filter's refusal and the chain tries the next
    model on those (``on_content_filter="next"``): then it is raised for the flow."""
    if policy.on_content_filter == "next":
        reason = fc.refusal_of(message.response_metadata)
        if reason is not None:
            raise fc.ContentFilteredAnswer(key, reason, message)
    return message


async def ascreened(policy: fc.FailoverPolicy, key: str, message: Awaitable[M]) -> M:
    return screened(policy, key, await message)


def screened_stream(
    policy: fc.FailoverPolicy, key: str, chunks: Iterator[AIMessageChunk]
) -> Iterator[AIMessageChunk]:
    """A stream whose refusal, arriving before any output, is raised as :func:`screened`
    does (so the next model answers instead); after output, it is passed on as it is."""
    if policy.on_content_filter != "next":
        return chunks
    return content_filter.screened_stream(chunks, commits, partial(screened, policy, key))


def ascreened_stream(
    policy: fc.FailoverPolicy, key: str, chunks: AsyncIterator[AIMessageChunk]
) -> AsyncIterator[AIMessageChunk]:
    if policy.on_content_filter != "next":
        return chunks
    return content_filter.ascreened_stream(chunks, commits, partial(screened, policy, key))
