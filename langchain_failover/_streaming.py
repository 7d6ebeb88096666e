"""Streams of a failover chat model: what counts as output, which chunks may be continued
on another model (resumed streams), the continuation's prefill, and the ``served`` stamp
on the first chunk of each model's output."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

import failover_core as fc

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
