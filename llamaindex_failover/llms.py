"""``FailoverLLM``: a LlamaIndex function-calling LLM over an ordered chain of LLMs."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.callbacks import CallbackManager
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from llama_index_instrumentation import get_dispatcher
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

import failover_core as fc

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["FailoverDecisionEvent", "FailoverLLM", "ToolsUnsupportedError", "key_of"]

dispatcher = get_dispatcher(__name__)

R = TypeVar("R", ChatResponse, CompletionResponse)

_TOOLS = "_failover_tools"  # private chat kwarg: tools each child formats for itself


class FailoverDecisionEvent(BaseEvent):
    """A failover decision, dispatched to LlamaIndex instrumentation event handlers."""

    model: str
    kind: str
    status: int | None = None
    attempt: int
    benched: bool
    cooldown: float | None = None
    next_model: str | None = None
    error: str

    @classmethod
    def class_name(cls) -> str:
        return "FailoverDecisionEvent"

    @classmethod
    def from_event(cls, event: fc.FailoverEvent) -> FailoverDecisionEvent:
        return cls(
            model=event.model,
            kind=event.kind.value,
            status=event.status,
            attempt=event.attempt,
            benched=event.benched,
            cooldown=event.benched_for.total_seconds() if event.benched_for else None,
            next_model=event.next_model,
            error=f"{type(event.error).__name__}: {event.error}"[:1000],
        )


class ToolsUnsupportedError(Exception):
    """A child that is not a function-calling LLM was asked to use tools (skipped, not benched)."""


def _tools_unsupported(exc: BaseException) -> fc.ErrorKind | None:
    return fc.ErrorKind.REQUEST_SPECIFIC if isinstance(exc, ToolsUnsupportedError) else None


@dataclass(frozen=True)
class _Child:
    key: str
    llm: LLM


@dataclass(frozen=True)
class _ToolRequest:
    """What ``_prepare_chat_with_tools`` was asked, replayed on each child at call time."""

    tools: Sequence[Any]
    allow_parallel_tool_calls: bool
    tool_required: bool
    verbose: bool
    extra: Mapping[str, Any]


def _provider(llm: LLM) -> str:
    parts = type(llm).__module__.split(".")
    for prefix in (["llama_index", "llms"], ["llama_index", "core", "llms"]):
        if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
            return parts[len(prefix)]
    return type(llm).__name__.lower().removesuffix("llm") or "llm"


def key_of(llm: LLM) -> str:
    """``provider/model`` for a LlamaIndex LLM (``openai/gpt-4o-mini`` for ``OpenAI``)."""
    name = getattr(llm, "model", None)
    if not isinstance(name, str) or not name:
        try:
            name = llm.metadata.model_name
        except Exception:  # metadata raises for models some integrations do not know
            name = None
    provider = _provider(llm)
    return f"{provider}/{name}" if name else provider


def _entries(llms: Sequence[LLM] | Mapping[str, LLM]) -> list[_Child]:
    return fc.build_entries(
        llms,
        model_type=LLM,
        what="LlamaIndex LLMs",
        key_of=key_of,
        make=_Child,
        nested=lambda llm: llm.failover_chain.entries if isinstance(llm, FailoverLLM) else None,
    )


def _metadata_of(llm: LLM) -> LLMMetadata | None:
    try:
        return llm.metadata
    except Exception:  # one child's broken metadata must not break the failover LLM
        return None


def _commits_chat(response: ChatResponse) -> bool:
    """Output a caller can see: new text or a tool call (not an empty header chunk)."""
    if response.delta:
        return True
    message = response.message
    return bool(message.additional_kwargs.get("tool_calls")) or any(
        getattr(block, "block_type", "text") not in ("text",) for block in message.blocks
    )


def _commits_completion(response: CompletionResponse) -> bool:
    return bool(response.delta)


def _served(response: R, served: fc.Served) -> R:
    response.additional_kwargs = {**response.additional_kwargs, "failover": served.as_dict()}
    return response


def _on_event(event: fc.FailoverEvent) -> None:
    dispatcher.event(FailoverDecisionEvent.from_event(event))


async def _aon_event(event: fc.FailoverEvent) -> None:
    await dispatcher.aevent(FailoverDecisionEvent.from_event(event))


class FailoverLLM(FunctionCallingLLM):
    """A LlamaIndex LLM that fails over along an ordered chain of LLMs.

    Works wherever LlamaIndex takes an LLM (``Settings.llm``, query and chat engines,
    agents, structured prediction). Transient errors are retried with backoff, then the
    model is benched for every chain in the process (LangChain chains included) and the
    next one is tried; auth/model-dead errors bench at once; request-specific errors skip
    without a bench. Every decision goes to ``observer``, to the log, and to
    instrumentation handlers as a :class:`FailoverDecisionEvent`. Each response's
    ``additional_kwargs["failover"]`` names the model that served and the failed attempts
    before it.
    """

    llms: Any = Field(description="The chain, in order; a dict gives the health keys.")
    max_retries: int | None = Field(default=None, description="Attempts per model (3).")
    cooldown: timedelta | float | None = Field(default=None, description="Bench time (5 min).")
    backoff: Any = Field(default=None, description="Wait after attempt n, or a tenacity wait.")
    observer: Any = Field(default=None, description="Called with every FailoverEvent.")
    rules: Any = Field(default=(), description="Classifier rules for this chain.")
    registry: Any = Field(default=None, exclude=True, description="A HealthRegistry of its own.")
    timeout: fc.Deadline = Field(
        default_factory=lambda: fc.get_failover_defaults().timeout,
        description="Most one non-streamed attempt may take (seconds; None: off).",
    )
    first_token_timeout: fc.Deadline = Field(
        default_factory=lambda: fc.get_failover_defaults().first_token_timeout,
        description="Most a streamed attempt may take to its first output (None: off).",
    )
    idle_timeout: fc.Deadline = Field(
        default_factory=lambda: fc.get_failover_defaults().idle_timeout,
        description="Longest gap between chunks of a committed stream (None: off).",
    )
    hedge_after: Any = Field(
        default_factory=lambda: fc.get_failover_defaults().hedge_after,
        description="Race the next LLM after this long without output: seconds, 'p95' or None.",
    )

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _chain: fc.FailoverChain[_Child] = PrivateAttr()

    @model_validator(mode="after")
    def _build_chain(self) -> Self:
        policy = fc.FailoverPolicy.build(
            max_retries=self.max_retries,
            cooldown=self.cooldown,
            backoff=self.backoff,
            observer=self.observer,
            rules=[*list(self.rules), _tools_unsupported],
            timeout=self.timeout,
            first_token_timeout=self.first_token_timeout,
            idle_timeout=self.idle_timeout,
            hedge_after=self.hedge_after,
        )
        entries = _entries(self.llms)
        self._chain = fc.FailoverChain(entries, policy, self.registry)
        for entry in entries:
            fc.warn_if_child_retries(entry.key, entry.llm, stacklevel=4)
            # LlamaIndex resets a callback manager's trace map only when a trace starts on
            # it at top level; a child called inside our trace on a manager of its own never
            # does, so its map grows with every call. A child whose manager has no handlers
            # (the default) shares ours instead: nothing it reported changes, nothing grows.
            manager = getattr(entry.llm, "callback_manager", None)
            if isinstance(manager, CallbackManager) and not manager.handlers:
                entry.llm.callback_manager = self.callback_manager
        return self

    @classmethod
    def class_name(cls) -> str:
        return "FailoverLLM"

    @property
    def failover_chain(self) -> fc.FailoverChain[_Child]:
        """The core chain: entries (key and LLM), policy, registry."""
        return self._chain

    @property
    def keys(self) -> tuple[str, ...]:
        return self._chain.keys

    @property
    def metadata(self) -> LLMMetadata:
        """The chain's common ground; never raises because one child's metadata does.

        Context window and output size are the smallest any child reports; chat and
        function calling hold only if every child that reports says so.
        """
        known = [m for m in (_metadata_of(e.llm) for e in self._chain.entries) if m is not None]
        defaults = LLMMetadata()
        return LLMMetadata(
            context_window=min((m.context_window for m in known), default=defaults.context_window),
            num_output=min((m.num_output for m in known), default=defaults.num_output),
            is_chat_model=all(m.is_chat_model for m in known),
            is_function_calling_model=all(
                isinstance(e.llm, FunctionCallingLLM) for e in self._chain.entries
            )
            and all(m.is_function_calling_model for m in known),
            model_name="failover:" + ",".join(self.keys),
        )

    # -- tools --------------------------------------------------------------------------

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Defer tool formatting: each child formats the tools itself when it is called."""
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(
                ChatMessage(role="user", content=user_msg)
                if isinstance(user_msg, str)
                else user_msg
            )
        request = _ToolRequest(tools, allow_parallel_tool_calls, tool_required, verbose, kwargs)
        return {"messages": messages, _TOOLS: request}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """Read tool calls with the child that produced ``response`` (each has its format)."""
        served = response.additional_kwargs.get("failover") or {}
        child = next((e for e in self._chain.entries if e.key == served.get("model")), None)
        llm = child.llm if child is not None else self._chain.entries[0].llm
        if not isinstance(llm, FunctionCallingLLM):
            raise ToolsUnsupportedError(f"{served.get('model')} cannot read tool calls")
        return llm.get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )

    @staticmethod
    def _child_chat_kwargs(
        child: _Child, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], _ToolRequest | None]:
        request: _ToolRequest | None = kwargs.get(_TOOLS)
        rest = {k: v for k, v in kwargs.items() if k != _TOOLS}
        if request is None:
            return {"messages": messages, **rest}, None
        if not isinstance(child.llm, FunctionCallingLLM):
            raise ToolsUnsupportedError(f"{child.key} is not a function-calling LLM")
        prepared = child.llm._prepare_chat_with_tools_compat(
            request.tools,
            chat_history=list(messages),
            verbose=request.verbose,
            allow_parallel_tool_calls=request.allow_parallel_tool_calls,
            tool_required=request.tool_required,
            **request.extra,
        )
        return {**prepared, **rest}, request

    def _chat_child(
        self, child: _Child, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> ChatResponse:
        chat_kwargs, request = self._child_chat_kwargs(child, messages, kwargs)
        response = child.llm.chat(**chat_kwargs)
        if request is not None and isinstance(child.llm, FunctionCallingLLM):
            response = child.llm._validate_chat_with_tools_response(
                response, request.tools, allow_parallel_tool_calls=request.allow_parallel_tool_calls
            )
        return response

    async def _achat_child(
        self, child: _Child, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> ChatResponse:
        chat_kwargs, request = self._child_chat_kwargs(child, messages, kwargs)
        response = await child.llm.achat(**chat_kwargs)
        if request is not None and isinstance(child.llm, FunctionCallingLLM):
            response = child.llm._validate_chat_with_tools_response(
                response, request.tools, allow_parallel_tool_calls=request.allow_parallel_tool_calls
            )
        return response

    # -- chat ---------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        response, served = self._chain.invoke(
            lambda child: self._chat_child(child, messages, kwargs),
            request=messages,
            on_event=_on_event,
        )
        return _served(response, served)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        response, served = await self._chain.ainvoke(
            lambda child: self._achat_child(child, messages, kwargs),
            request=messages,
            on_event=_aon_event,
        )
        return _served(response, served)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def open_stream(child: _Child) -> Iterator[ChatResponse]:
            chat_kwargs, _ = self._child_chat_kwargs(child, messages, kwargs)
            return iter(child.llm.stream_chat(**chat_kwargs))

        def gen() -> ChatResponseGen:
            for response, served in self._chain.stream(
                open_stream, _delta, messages, on_event=_on_event, commits=_commits_chat
            ):
                yield _served(response, served)

        return gen()

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        async def open_stream(child: _Child) -> AsyncIterator[ChatResponse]:
            chat_kwargs, _ = self._child_chat_kwargs(child, messages, kwargs)
            async for response in await child.llm.astream_chat(**chat_kwargs):
                yield response

        async def gen() -> ChatResponseAsyncGen:
            async for response, served in self._chain.astream(
                open_stream, _delta, messages, on_event=_aon_event, commits=_commits_chat
            ):
                yield _served(response, served)

        return gen()

    # -- completion ---------------------------------------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        response, served = self._chain.invoke(
            lambda child: child.llm.complete(prompt, formatted=formatted, **kwargs),
            request=prompt,
            on_event=_on_event,
        )
        return _served(response, served)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        response, served = await self._chain.ainvoke(
            lambda child: child.llm.acomplete(prompt, formatted=formatted, **kwargs),
            request=prompt,
            on_event=_aon_event,
        )
        return _served(response, served)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def open_stream(child: _Child) -> Iterator[CompletionResponse]:
            return iter(child.llm.stream_complete(prompt, formatted=formatted, **kwargs))

        def gen() -> CompletionResponseGen:
            for response, served in self._chain.stream(
                open_stream, _delta, prompt, on_event=_on_event, commits=_commits_completion
            ):
                yield _served(response, served)

        return gen()

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        async def open_stream(child: _Child) -> AsyncIterator[CompletionResponse]:
            async for response in await child.llm.astream_complete(
                prompt, formatted=formatted, **kwargs
            ):
                yield response

        async def gen() -> CompletionResponseAsyncGen:
            async for response, served in self._chain.astream(
                open_stream, _delta, prompt, on_event=_aon_event, commits=_commits_completion
            ):
                yield _served(response, served)

        return gen()


def _delta(response: ChatResponse | CompletionResponse) -> str:
    return response.delta or ""
