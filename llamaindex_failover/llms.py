"""``FailoverLLM``: a LlamaIndex function-calling LLM over an ordered chain of LLMs."""

from __future__ import annotations

import pickle
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
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
from llama_index.core.prompts import BasePromptTemplate, PromptTemplate
from llama_index.core.types import TokenAsyncGen, TokenGen
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

import failover_core as fc
from failover_core.config.options import check_options
from failover_core.config.policy import POLICY_OPTIONS
from failover_core.pool.pool import PoolGroup

from ._children import (
    Child,
    Tools,
    ToolsUnsupportedError,
    key_of,
    metadata_of,
    tools_unsupported,
    with_handlers,
)
from ._events import FailoverDecisionEvent, aon_event, aon_retry, on_event, on_retry
from ._gate import Gates, current_gate, gated, gated_steps
from ._spans import astream_span, router_span, stream_span
from ._streaming import (
    NOT_FREE_TEXT,
    aafter_prefill,
    after_prefill,
    amap,
    arelay,
    ascreened,
    ascreened_stream,
    commits_chat,
    commits_completion,
    delta_of,
    plain_chat,
    prefill_kwargs,
    prefills,
    screened,
    screened_stream,
    served_copy,
)

if TYPE_CHECKING:
    from llama_index.core.chat_engine.types import AgentChatResponse
    from llama_index.core.program.utils import FlexibleModel
    from llama_index.core.tools import BaseTool

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["FailoverDecisionEvent", "FailoverLLM", "ToolsUnsupportedError", "key_of"]


R = TypeVar("R", ChatResponse, CompletionResponse)
T = TypeVar("T")
Model = TypeVar("Model", bound=BaseModel)

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


def _entries(
    llms: Sequence[LLM | fc.Pool] | Mapping[str, LLM | fc.Pool], pools: list[PoolGroup]
) -> list[Child]:
    return fc.build_entries(
        llms,
        model_type=LLM,
        what="LlamaIndex LLMs (llama_index.core.llms.LLM instances)",
        name="llms",
        key_of=key_of,
        make=Child,
        nested=lambda llm: llm.failover_chain if isinstance(llm, FailoverLLM) else None,
        pools=pools,
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
    instrumentation handlers as a :class:`FailoverDecisionEvent` (a retry on the same model
    too). Each response's ``additional_kwargs["failover"]`` and ``raw["failover"]`` (what
    agents pass on as ``AgentOutput.raw``) name the model that served and the failed
    attempts before it. Structured output is each child's own structured call.

    In traces it is a router, not a model: its own span holds the attempts, and each
    attempt is the child's own LLM call (its LLM events, callback events and usage), so
    anything that sums model calls counts each call once. Prompt formatting
    (``predict``, engines) is each child's own, as if the child were called directly.
    """

    llms: Any = Field(
        description="The chain, in order; a dict gives the health keys; a fc.Pool is one entry."
    )
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
    transient_cooldown: timedelta | float | str | None = Field(
        default=None, description="First bench after transient failures (8 s), doubling."
    )
    dead_cooldown: timedelta | float | str | None = Field(
        default=None, description="First bench after an auth/model-dead error (cooldown)."
    )
    on_content_filter: str | None = Field(
        default=None, description="A content filter: 'raise' it (default) or try 'next'."
    )
    reasoning_timeout: fc.Deadline = Field(
        default_factory=lambda: fc.get_failover_defaults().reasoning_timeout,
        description="Replaces timeout and first_token_timeout for reasoning LLMs (None: off).",
    )
    on_transient: Any = Field(
        default_factory=lambda: fc.get_failover_defaults().on_transient,
        description="'retry' (default): retry a transient error with backoff; 'next': go to "
        "the next healthy LLM at once (fail over first).",
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
        pools: list[PoolGroup] = []
        entries = _entries(self.llms, pools)
        chain = fc.FailoverChain(entries, policy, self.registry, pools=pools)
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
        Chat holds only if every child that reports says so; function calling if any
        child can (tool requests skip the children that cannot).
        """
        known = [m for m in (metadata_of(e.llm) for e in self._chain.entries) if m is not None]
        defaults = LLMMetadata()
        outputs = [m.num_output for m in known if m.num_output != -1]
        return LLMMetadata(
            context_window=min((m.context_window for m in known), default=defaults.context_window),
            num_output=max(outputs, default=defaults.num_output),
            is_chat_model=all(m.is_chat_model for m in known),
            is_function_calling_model=any(
                isinstance(e.llm, FunctionCallingLLM)
                and getattr(metadata_of(e.llm), "is_function_calling_model", True)
                for e in self._chain.entries
            ),
            model_name="failover:" + ",".join(self.keys),
        )

    # -- plumbing -----------------------------------------------------------------------

    def _llm(self, child: Child) -> LLM:
        return with_handlers(child.llm, self.callback_manager, gated=current_gate() is not None)

    def _tool_llm(self, child: Child) -> FunctionCallingLLM:
        llm = self._llm(child)
        if not isinstance(llm, FunctionCallingLLM):
            raise ToolsUnsupportedError(f"{child.key} is not a function-calling LLM")
        return llm

    def _invoke(self, call: Callable[[Child], T], request: object) -> tuple[T, fc.Served]:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        policy = self._chain.policy
        gates = Gates()

        def attempt(child: Child) -> T:
            return gated(gates.new(child.key), lambda: screened(policy, child.key, call(child)))

        return self._chain.invoke(
            attempt,
            request=request,
            on_retry=on_retry(policy.rules),
            on_event=gates.reporting(on_event),
        )

    async def _ainvoke(
        self, call: Callable[[Child], Awaitable[T]], request: object
    ) -> tuple[T, fc.Served]:
        if self.rate_limiter is not None:
            await self.rate_limiter.async_acquire()
        policy = self._chain.policy
        return await self._chain.ainvoke(
            lambda c: ascreened(policy, c.key, call(c)),
            request=request,
            on_retry=aon_retry(policy.rules),
            on_event=aon_event,
        )

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
        gates = Gates()

        def attempt(child: Child) -> Iterator[T]:
            return gated_steps(gates.new(child.key), lambda: open_stream(child))

        def continuation(child: Child, text: str) -> Callable[[], Iterator[T]] | None:
            assert resume is not None
            opener = resume(child, text)
            if opener is None:
                return None
            return lambda: gated_steps(gates.new(child.key), opener)

        return self._chain.stream(
            attempt,
            text_of,
            request,
            on_retry=on_retry(self._chain.policy.rules),
            on_event=gates.reporting(on_event),
            commits=commits,
            resume=None if resume is None else continuation,
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
            on_retry=aon_retry(self._chain.policy.rules),
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

    @router_span
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

        def open_stream(child: Child) -> AsyncIterator[ChatResponse]:
            llm = self._tool_llm(child)
            return arelay(lambda: llm.astream_chat_with_tools(tools, **req.call_kwargs()))

        stream = await self._astream(open_stream, delta_of, chat_history, commits_chat)
        return amap(stream, _served)

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
            responses = iter(self._llm(child).stream_chat(messages, **kwargs))
            return screened_stream(self._chain.policy, child.key, responses)

        def open_continuation(
            child: Child, text: str
        ) -> Callable[[], Iterator[ChatResponse]] | None:
            continued = self._continued(messages, kwargs, child, text)
            if continued is None:
                return None
            more = prefill_kwargs(child.llm, kwargs)
            return lambda: after_prefill(
                text, iter(self._llm(child).stream_chat(continued, **more))
            )

        stream = self._stream(
            open_stream, delta_of, messages, commits_chat, open_continuation, plain_chat
        )
        return (served_copy(response, served) for response, served in stream)

    @astream_span
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        async def screened_chat(child: Child) -> AsyncIterator[ChatResponse]:
            responses = await self._llm(child).astream_chat(messages, **kwargs)
            return ascreened_stream(self._chain.policy, child.key, responses)

        def open_stream(child: Child) -> AsyncIterator[ChatResponse]:
            return arelay(lambda: screened_chat(child))

        async def continuation(
            child: Child, continued: list[ChatMessage], text: str
        ) -> AsyncIterator[ChatResponse]:
            more = prefill_kwargs(child.llm, kwargs)
            responses = await self._llm(child).astream_chat(continued, **more)
            return aafter_prefill(text, responses)

        def open_continuation(
            child: Child, text: str
        ) -> Callable[[], AsyncIterator[ChatResponse]] | None:
            continued = self._continued(messages, kwargs, child, text)
            if continued is None:
                return None
            return lambda: arelay(lambda: continuation(child, continued, text))

        stream = await self._astream(
            open_stream, delta_of, messages, commits_chat, open_continuation, plain_chat
        )
        return amap(stream, _served)

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
        def open_stream(child: Child) -> AsyncIterator[CompletionResponse]:
            llm = self._llm(child)
            return arelay(lambda: llm.astream_complete(prompt, formatted=formatted, **kwargs))

        stream = await self._astream(open_stream, delta_of, prompt, commits_completion)
        return amap(stream, _served)

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
        def open_stream(child: Child) -> AsyncIterator[str]:
            return arelay(lambda: self._llm(child).astream(prompt, **prompt_args))

        stream = await self._astream(open_stream, str, prompt, bool)
        return amap(stream, _first)

    # -- structured output: each attempt is the child's own structured call (its system
    # prompt, its native way: OpenAI's response_format JSON schema, Anthropic's parse)

    @router_span
    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        result: tuple[Model, fc.Served] = self._invoke(
            lambda c: self._llm(c).structured_predict(
                output_cls, prompt, llm_kwargs=dict(llm_kwargs or {}), **prompt_args
            ),
            prompt,
        )
        return result[0]

    @router_span
    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        result: tuple[Model, fc.Served] = await self._ainvoke(
            lambda c: self._llm(c).astructured_predict(
                output_cls, prompt, llm_kwargs=dict(llm_kwargs or {}), **prompt_args
            ),
            prompt,
        )
        return result[0]

    @stream_span
    def stream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Model | FlexibleModel, None, None]:
        def open_stream(child: Child) -> Iterator[Model | FlexibleModel]:
            llm = self._llm(child)
            kwargs = dict(llm_kwargs or {})
            return iter(llm.stream_structured_predict(output_cls, prompt, kwargs, **prompt_args))

        stream = self._stream(open_stream, _no_text, prompt, _has_content)
        return (partial for partial, _ in stream)

    @astream_span
    async def astream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Model | FlexibleModel, None]:
        def open_stream(child: Child) -> AsyncIterator[Model | FlexibleModel]:
            llm = self._llm(child)
            kwargs = dict(llm_kwargs or {})
            return arelay(
                lambda: llm.astream_structured_predict(output_cls, prompt, kwargs, **prompt_args)
            )

        stream = await self._astream(open_stream, _no_text, prompt, _has_content)
        return amap(stream, _first)

    # -- tools, called here: a plain span over the tool request (made per child) and the
    # tools' own calls (LlamaIndex's span here would read as a second LLM call)

    @router_span
    def predict_and_call(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        error_on_no_tool_call: bool = True,
        error_on_tool_error: bool = False,
        **kwargs: Any,
    ) -> AgentChatResponse:
        base = FunctionCallingLLM if self.metadata.is_function_calling_model else LLM
        body: Callable[..., AgentChatResponse] = _unwrapped(base.predict_and_call)
        return body(
            self,
            tools,
            user_msg=user_msg,
            chat_history=chat_history,
            verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls,
            error_on_no_tool_call=error_on_no_tool_call,
            error_on_tool_error=error_on_tool_error,
            **kwargs,
        )

    @router_span
    async def apredict_and_call(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        error_on_no_tool_call: bool = True,
        error_on_tool_error: bool = False,
        **kwargs: Any,
    ) -> AgentChatResponse:
        base = FunctionCallingLLM if self.metadata.is_function_calling_model else LLM
        body: Callable[..., Awaitable[AgentChatResponse]] = _unwrapped(base.apredict_and_call)
        return await body(
            self,
            tools,
            user_msg=user_msg,
            chat_history=chat_history,
            verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls,
            error_on_no_tool_call=error_on_no_tool_call,
            error_on_tool_error=error_on_tool_error,
            **kwargs,
        )


def _unwrapped(method: Any) -> Any:
    """A LlamaIndex method without its span (ours replaces it)."""
    return getattr(method, "__wrapped__", method)


def _no_text(_: object) -> str:
    return ""  # a partial object is not text: an interrupted stream carries none


def _has_content(partial: object) -> bool:
    """A partial object with a field filled in is output (an empty one is a header)."""
    return not isinstance(partial, BaseModel) or bool(partial.model_dump(exclude_none=True))


def _first(item: tuple[T, fc.Served]) -> T:
    return item[0]


def _served(item: tuple[R, fc.Served]) -> R:
    return served_copy(*item)
