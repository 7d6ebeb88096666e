"""``FailoverLLM``: a LlamaIndex function-calling LLM over an ordered chain of LLMs."""

from __future__ import annotations

import pickle
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from llama_index.core.base.llms.generic_utils import (
    messages_to_prompt as generic_messages_to_prompt,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection, default_completion_to_prompt
from llama_index.core.prompts import BasePromptTemplate
from llama_index.core.types import TokenAsyncGen, TokenGen
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

import failover_core as fc
from failover_core.config.options import check_options
from failover_core.config.policy import POLICY_OPTIONS

from ._children import (
    Child,
    Tools,
    ToolsUnsupportedError,
    key_of,
    metadata_of,
    tools_unsupported,
    with_handlers,
)
from ._events import FailoverDecisionEvent, aon_event, on_event
from ._spans import astream_span, router_span, stream_span
from ._streaming import (
    NOT_FREE_TEXT,
    aafter_prefill,
    after_prefill,
    commits_chat,
    commits_completion,
    delta_of,
    plain_chat,
    prefills,
    served_copy,
)

if TYPE_CHECKING:
    from llama_index.core.tools import BaseTool

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["FailoverDecisionEvent", "FailoverLLM", "ToolsUnsupportedError", "key_of"]


R = TypeVar("R", ChatResponse, CompletionResponse)
T = TypeVar("T")

# Fields the chain is built from: assigning one rebuilds it (deadline fields go here too).
_CHAIN_FIELDS = ("llms", "registry", *POLICY_OPTIONS)
# Prompt shaping belongs to each child (each formats prompts its own way); on the failover
# LLM it would be silently ignored, so it is refused.
_PROMPT_FIELDS = (
    "system_prompt",
    "messages_to_prompt",
    "completion_to_prompt",
    "query_wrapper_prompt",
    "output_parser",
)
_PROMPT_DEFAULTS = (generic_messages_to_prompt, default_completion_to_prompt)


def _entries(llms: Sequence[LLM] | Mapping[str, LLM]) -> list[Child]:
    return fc.build_entries(
        llms,
        model_type=LLM,
        what="LlamaIndex LLMs",
        key_of=key_of,
        make=Child,
        nested=lambda llm: llm.failover_chain.entries if isinstance(llm, FailoverLLM) else None,
    )


_OWN_MODULES = ("llamaindex_failover", "pydantic", "llama_index")


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised by our caller at the user's line."""
    frame = sys._getframe(2)
    level = 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(_OWN_MODULES):
        frame = frame.f_back
        level += 1
    return level


def _refuse_prompt_field(name: str, value: Any) -> None:
    if name not in _PROMPT_FIELDS or value is None or value in _PROMPT_DEFAULTS:
        return
    raise TypeError(
        f"FailoverLLM does not take {name!r}: set it on each child LLM, which applies its "
        "own prompt formatting exactly as when it is called directly"
    )


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

    In traces it is a router, not a model: its own span holds the attempts, and each
    attempt is the child's own LLM call (its LLM events, callback events and usage), so
    anything that sums model calls counts each call once. Prompt formatting
    (``predict``, engines) is each child's own, as if the child were called directly.
    """

    llms: Any = Field(description="The chain, in order; a dict gives the health keys.")
    max_retries: int | None = Field(default=None, description="Attempts per model (3).")
    cooldown: timedelta | float | str | None = Field(
        default=None, description='Bench time: seconds, a timedelta or "5m" (5 min).'
    )
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
    resume_streams: Any = Field(
        default_factory=lambda: fc.get_failover_defaults().resume_streams,
        description="Continue a chat stream broken after plain text on the next LLM able to "
        "(True: Anthropic LLMs; or a list of keys).",
    )

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _chain: fc.FailoverChain[Child] = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        known = {n for n, f in type(self).model_fields.items()} | {
            f.alias for f in type(self).model_fields.values() if f.alias
        }
        check_options(type(self).__name__, data, known)
        for name in _PROMPT_FIELDS:
            _refuse_prompt_field(name, data.get(name))
        super().__init__(**data)

    @model_validator(mode="after")
    def _build_chain(self) -> Self:
        self._chain = self._new_chain(warn=True)
        return self

    def _new_chain(self, *, warn: bool = False) -> fc.FailoverChain[Child]:
        """The chain from the fields as they are now (children are left untouched)."""
        policy = fc.FailoverPolicy.of(self, extra_rules=[tools_unsupported])
        entries = _entries(self.llms)
        chain = fc.FailoverChain(entries, policy, self.registry)
        if warn:
            level = _user_stacklevel()
            for entry in entries:
                fc.warn_if_child_retries(entry.key, entry.llm, stacklevel=level)
        return chain

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a chain field rebuilds the chain (or raises and changes nothing)."""
        _refuse_prompt_field(name, value)
        if name not in _CHAIN_FIELDS:
            super().__setattr__(name, value)
            return
        old = getattr(self, name)
        super().__setattr__(name, value)
        try:
            self._chain = self._new_chain(warn=True)
        except BaseException:
            super().__setattr__(name, old)
            raise

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose chain is built from its own fields (``update`` included)."""
        check_options(type(self).__name__, update or {}, type(self).model_fields)
        for name, value in (update or {}).items():
            _refuse_prompt_field(name, value)
        copy = super().model_copy(update=update, deep=deep)
        copy._chain = copy._new_chain(warn=True)
        return copy

    # -- serialization: live child objects do not survive a dict; pickle keeps everything

    def to_json(self, **kwargs: Any) -> str:
        """The description as JSON, or a clear refusal when an option is a callable."""
        try:
            return super().to_json(**kwargs)
        except TypeError as exc:
            raise TypeError(
                f"FailoverLLM cannot be written as JSON ({exc}): an option is a live object; "
                "build the model in code where it is needed (a serialized copy would carry "
                "its children's settings, API keys included)"
            ) from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Self:
        """Refused: a dict holds the children's settings, not the children themselves."""
        raise TypeError(
            "FailoverLLM cannot be rebuilt from a dict or JSON: its children are live LLM "
            "objects (clients, credentials) that to_dict() does not keep; build it in code "
            "(or pickle it)"
        )

    @classmethod
    def from_json(cls, data_str: str, **kwargs: Any) -> Self:
        """Refused, as :meth:`from_dict`."""
        return cls.from_dict({}, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle every field or refuse: a dropped backoff or registry would change behaviour."""
        for name in _CHAIN_FIELDS:
            try:
                pickle.dumps(getattr(self, name))
            except Exception as exc:
                raise TypeError(
                    f"FailoverLLM cannot be pickled: its {name!r} cannot be ({exc}); "
                    "use picklable values (a module-level function, not a lambda; the "
                    "process-wide registry rather than one of its own) or build it in each "
                    "process"
                ) from exc
        state = super().__getstate__()
        state.get("__pydantic_private__", {}).pop("_chain", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._chain = self._new_chain()

    @classmethod
    def class_name(cls) -> str:
        return "FailoverLLM"

    @property
    def failover_chain(self) -> fc.FailoverChain[Child]:
        """The core chain: entries (key and LLM), policy, registry."""
        return self._chain

    @property
    def keys(self) -> tuple[str, ...]:
        return self._chain.keys

    @property
    def metadata(self) -> LLMMetadata:
        """The chain's common ground; never raises because one child's metadata does.

        The context window is the smallest any child reports (a prompt must fit every
        model it may go to); the output size is the largest known (-1, unknown, ignored).
        Chat and function calling hold only if every child that reports says so.
        """
        known = [m for m in (metadata_of(e.llm) for e in self._chain.entries) if m is not None]
        defaults = LLMMetadata()
        outputs = [m.num_output for m in known if m.num_output != -1]
        return LLMMetadata(
            context_window=min((m.context_window for m in known), default=defaults.context_window),
            num_output=max(outputs, default=defaults.num_output),
            is_chat_model=all(m.is_chat_model for m in known),
            is_function_calling_model=all(
                isinstance(e.llm, FunctionCallingLLM) for e in self._chain.entries
            )
            and all(m.is_function_calling_model for m in known),
            model_name="failover:" + ",".join(self.keys),
        )

    # -- plumbing -----------------------------------------------------------------------

    def _llm(self, child: Child) -> LLM:
        return with_handlers(child.llm, self.callback_manager.handlers)

    def _tool_llm(self, child: Child) -> FunctionCallingLLM:
        llm = self._llm(child)
        if not isinstance(llm, FunctionCallingLLM):
            raise ToolsUnsupportedError(f"{child.key} is not a function-calling LLM")
        return llm

    def _invoke(self, call: Callable[[Child], T], request: object) -> tuple[T, fc.Served]:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        return self._chain.invoke(call, request=request, on_event=on_event)

    async def _ainvoke(
        self, call: Callable[[Child], Awaitable[T]], request: object
    ) -> tuple[T, fc.Served]:
        if self.rate_limiter is not None:
            await self.rate_limiter.async_acquire()
        return await self._chain.ainvoke(call, request=request, on_event=aon_event)

    def _stream(
        self,
        open_stream: Callable[[Child], Iterator[T]],
        text_of: Callable[[T], str],
        request: object,
        commits: Callable[[T], bool],
        resume: fc.Resume[Child, Iterator[T]] | None = None,
        plain: Callable[[T], bool] | None = None,
    ) -> Iterator[tuple[T, fc.Served]]:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        return self._chain.stream(
            open_stream,
            text_of,
            request,
            on_event=on_event,
            commits=commits,
            resume=resume,
            plain=plain,
        )

    async def _astream(
        self,
        open_stream: Callable[[Child], AsyncIterator[T]],
        text_of: Callable[[T], str],
        request: object,
        commits: Callable[[T], bool],
        resume: fc.Resume[Child, AsyncIterator[T]] | None = None,
        plain: Callable[[T], bool] | None = None,
    ) -> AsyncIterator[tuple[T, fc.Served]]:
        if self.rate_limiter is not None:
            await self.rate_limiter.async_acquire()
        return self._chain.astream(
            open_stream,
            text_of,
            request,
            on_event=aon_event,
            commits=commits,
            resume=resume,
            plain=plain,
        )

    def _continued(
        self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any], child: Child, text: str
    ) -> list[ChatMessage] | None:
        """The messages continuing ``text`` on ``child``: the request's, then the text as
        the assistant's own turn (a prefill). ``None`` when the request asked for more than
        free text (tools, a response format) or ``child`` cannot continue an answer."""
        prefill = text.rstrip()  # the Messages API refuses a prefill ending in whitespace
        if not prefill or any(kwargs.get(k) for k in NOT_FREE_TEXT):
            return None
        if not self._chain.policy.may_continue(child.key, able=prefills(child.llm)):
            return None
        return [*messages, ChatMessage(role=MessageRole.ASSISTANT, content=prefill)]

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
        """Refused: each child formats tools its own way, so there is no one request to build.

        ``chat_with_tools`` and its async and streaming twins hand the tools to each child.
        """
        raise NotImplementedError(
            "FailoverLLM formats tools per child: call chat_with_tools, achat_with_tools, "
            "stream_chat_with_tools or astream_chat_with_tools"
        )

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

    @router_span
    def chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Each attempt is the child's own ``chat_with_tools`` (its tool format, its checks)."""
        req = Tools(
            tools, user_msg, chat_history, verbose, allow_parallel_tool_calls, tool_required, kwargs
        )
        response, served = self._invoke(
            lambda c: self._tool_llm(c).chat_with_tools(req.tools, **req.call_kwargs()),
            chat_history,
        )
        return served_copy(response, served)

    @router_span
    async def achat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        req = Tools(
            tools, user_msg, chat_history, verbose, allow_parallel_tool_calls, tool_required, kwargs
        )
        response, served = await self._ainvoke(
            lambda c: self._tool_llm(c).achat_with_tools(req.tools, **req.call_kwargs()),
            chat_history,
        )
        return served_copy(response, served)

    @stream_span
    def stream_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponseGen:
        req = Tools(
            tools, user_msg, chat_history, verbose, allow_parallel_tool_calls, tool_required, kwargs
        )

        def open_stream(child: Child) -> Iterator[ChatResponse]:
            return iter(self._tool_llm(child).stream_chat_with_tools(tools, **req.call_kwargs()))

        stream = self._stream(open_stream, delta_of, chat_history, commits_chat)
        return (served_copy(response, served) for response, served in stream)

    @astream_span
    async def astream_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponseAsyncGen:
        req = Tools(
            tools, user_msg, chat_history, verbose, allow_parallel_tool_calls, tool_required, kwargs
        )

        async def open_stream(child: Child) -> AsyncIterator[ChatResponse]:
            llm = self._tool_llm(child)
            async for response in await llm.astream_chat_with_tools(tools, **req.call_kwargs()):
                yield response

        stream = await self._astream(open_stream, delta_of, chat_history, commits_chat)
        return (served_copy(response, served) async for response, served in stream)

    # -- chat ---------------------------------------------------------------------------

    @router_span
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        response, served = self._invoke(lambda c: self._llm(c).chat(messages, **kwargs), messages)
        return served_copy(response, served)

    @router_span
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        response, served = await self._ainvoke(
            lambda c: self._llm(c).achat(messages, **kwargs), messages
        )
        return served_copy(response, served)

    @stream_span
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def open_stream(child: Child) -> Iterator[ChatResponse]:
            return iter(self._llm(child).stream_chat(messages, **kwargs))

        def open_continuation(
            child: Child, text: str
        ) -> Callable[[], Iterator[ChatResponse]] | None:
            continued = self._continued(messages, kwargs, child, text)
            if continued is None:
                return None
            return lambda: after_prefill(
                text, iter(self._llm(child).stream_chat(continued, **kwargs))
            )

        stream = self._stream(
            open_stream, delta_of, messages, commits_chat, open_continuation, plain_chat
        )
        return (served_copy(response, served) for response, served in stream)

    @astream_span
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        async def open_stream(child: Child) -> AsyncIterator[ChatResponse]:
            async for response in await self._llm(child).astream_chat(messages, **kwargs):
                yield response

        async def continuation(
            child: Child, continued: list[ChatMessage], text: str
        ) -> AsyncIterator[ChatResponse]:
            responses = await self._llm(child).astream_chat(continued, **kwargs)
            async for response in aafter_prefill(text, responses):
                yield response

        def open_continuation(
            child: Child, text: str
        ) -> Callable[[], AsyncIterator[ChatResponse]] | None:
            continued = self._continued(messages, kwargs, child, text)
            if continued is None:
                return None
            return lambda: continuation(child, continued, text)

        stream = await self._astream(
            open_stream, delta_of, messages, commits_chat, open_continuation, plain_chat
        )
        return (served_copy(response, served) async for response, served in stream)

    # -- completion ---------------------------------------------------------------------

    @router_span
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        response, served = self._invoke(
            lambda c: self._llm(c).complete(prompt, formatted=formatted, **kwargs), prompt
        )
        return served_copy(response, served)

    @router_span
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        response, served = await self._ainvoke(
            lambda c: self._llm(c).acomplete(prompt, formatted=formatted, **kwargs), prompt
        )
        return served_copy(response, served)

    @stream_span
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def open_stream(child: Child) -> Iterator[CompletionResponse]:
            return iter(self._llm(child).stream_complete(prompt, formatted=formatted, **kwargs))

        stream = self._stream(open_stream, delta_of, prompt, commits_completion)
        return (served_copy(response, served) for response, served in stream)

    @astream_span
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        async def open_stream(child: Child) -> AsyncIterator[CompletionResponse]:
            llm = self._llm(child)
            async for response in await llm.astream_complete(prompt, formatted=formatted, **kwargs):
                yield response

        stream = await self._astream(open_stream, delta_of, prompt, commits_completion)
        return (served_copy(response, served) async for response, served in stream)

    # -- prompts: each child formats its own (system prompt, templates, chat or completion)

    @router_span
    def predict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        output, _ = self._invoke(lambda c: self._llm(c).predict(prompt, **prompt_args), prompt)
        return output

    @router_span
    async def apredict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        output, _ = await self._ainvoke(
            lambda c: self._llm(c).apredict(prompt, **prompt_args), prompt
        )
        return output

    @stream_span
    def stream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenGen:
        def open_stream(child: Child) -> Iterator[str]:
            return iter(self._llm(child).stream(prompt, **prompt_args))

        stream = self._stream(open_stream, str, prompt, bool)
        return (token for token, _ in stream)

    @astream_span
    async def astream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenAsyncGen:
        async def open_stream(child: Child) -> AsyncIterator[str]:
            async for token in await self._llm(child).astream(prompt, **prompt_args):
                yield token

        stream = await self._astream(open_stream, str, prompt, bool)
        return (token async for token, _ in stream)
