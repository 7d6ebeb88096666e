"""``FailoverChatModel``: a LangChain chat model over an ordered chain of chat models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from langchain_core.caches import BaseCache
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.globals import get_llm_cache
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.runnables.config import (
    set_config_context,
)
from langchain_core.tools import BaseTool
from langchain_core.tracers._streaming import _StreamingCallbackHandler
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, model_validator
from typing_extensions import Self, override

import failover_core as fc
from failover_core.config.options import check_options
from failover_core.config.policy import POLICY_OPTIONS
from failover_core.drivers.abandon import current_attempt
from failover_core.pool.pool import PoolGroup

from . import _callbacks as cb
from ._children import (
    DROPPED_KWARGS,
    TOOL_KWARGS,
    Child,
    Request,
    common_profile,
    direct_kwargs,
    key_of,
    providers,
    register_provider,
    response_headers,
    with_headers,
)
from ._streaming import (
    Stamps,
    aafter_prefill,
    after_prefill,
    ajoined,
    amessage_chunks,
    as_chunk,
    ascreened,
    ascreened_stream,
    chunk_commits,
    chunk_text,
    commits,
    joined,
    message_chunks,
    message_text,
    plain,
    prefill_call,
    prefills,
    resumable_request,
    screened,
    screened_stream,
    served_copy,
    streams,
)
from ._structured import FailoverStructuredOutput

__all__ = ["FailoverChatModel", "key_of", "register_provider"]

Models = Sequence[BaseChatModel | fc.Pool] | Mapping[str, BaseChatModel | fc.Pool]

_CHAIN_FIELDS = frozenset({"models", "registry", *POLICY_OPTIONS})
"""Fields the chain is built from: assigning one rebuilds it."""


_MEMBERS: dict[str, Any] = {
    "model_type": BaseChatModel,
    "what": "LangChain chat models (BaseChatModel instances)",
    "specs": "FailoverChatModel.from_specs",
}


def _entries(models: Models, pools: list[PoolGroup]) -> list[Child]:
    return fc.build_entries(
        models,
        **_MEMBERS,
        key_of=key_of,
        make=Child,
        nested=lambda m: m.failover_chain if isinstance(m, FailoverChatModel) else None,
        pools=pools,
        pooled=with_headers,
    )


def _ignore(_: object) -> None:
    return None


_streaming_classes: dict[type, bool] = {}  # handler class -> takes the tokens under it


def _streams_tokens(handler: object) -> bool:
    # A runtime-checkable Protocol costs tens of µs per isinstance: asked once per class.
    cls = type(handler)
    known = _streaming_classes.get(cls)
    if known is None:
        known = _streaming_classes.setdefault(cls, isinstance(handler, _StreamingCallbackHandler))
    return known


def _streamed_to(manager: BaseCallbackManager) -> bool:
    """A handler takes the tokens of the model runs under this one (LangGraph's
    "messages" mode, ``astream_events``): chat models stream even in ``invoke``."""
    return any(_streams_tokens(h) for h in manager.handlers)


def _whole(chunks: list[AIMessageChunk], stamps: Stamps) -> AIMessage:
    """The answer a stream added up to, saying who served it as an invoke's answer does
    (a resumed stream: the model that finished it, and where it took over)."""
    if not chunks or stamps.shown is None:
        raise ValueError("the stream produced no chunks")
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return cast(AIMessage, served_copy(message_chunk_to_message(total), stamps.shown))


class FailoverChatModel(BaseChatModel):
    """A chat model that fails over along an ordered chain of chat models.

    Transient errors are retried with backoff, then the model is benched for every chain
    in the process and the next one is tried; auth/model-dead errors bench at once;
    request-specific errors skip to the next model without a bench. Every decision goes
    to ``observer``, to the log, and to callback handlers as the custom event
    ``"failover"``. The answer's ``response_metadata["failover"]`` names the model that
    served it and the failed attempts before it.

    In traces it is a router, like ``with_fallbacks``: its own run is a chain run and each
    attempt is the child's own chat-model run under it, so usage, cost and streamed
    tokens are counted once, on the run of the model that made the call.

    ``temperature``, ``max_tokens`` and ``stop``, when set, are passed to every child on
    each call. Children should be built with ``max_retries=0``; the model warns once per
    child that retries on its own.
    """

    models: Models = Field(repr=False)
    """The chain, in order; a dict gives the health keys explicitly. A
    :class:`failover_core.Pool` of deployments of one model is one entry."""
    max_retries: int | None = None
    """Attempts per model on transient errors (default 3; below 1 means 1)."""
    cooldown: timedelta | float | str | None = None
    """How long a failed model stays benched: seconds, a timedelta or "5m" (default 5 min)."""
    backoff: Any = None
    """Seconds to wait after failed attempt n: a callable, or a tenacity wait strategy."""
    observer: Any = None
    """Called with every :class:`failover_core.FailoverEvent`."""
    rules: Sequence[Any] = ()
    """Classifier rules for this chain, consulted before the global ones."""
    registry: Any = Field(default=None, exclude=True)
    """A :class:`failover_core.HealthRegistry` of its own (default: the process-wide one)."""
    timeout: fc.Deadline = Field(default_factory=lambda: fc.get_failover_defaults().timeout)
    """Most one non-streamed attempt may take, end to end (seconds/timedelta; None: off)."""
    first_token_timeout: fc.Deadline = Field(
        default_factory=lambda: fc.get_failover_defaults().first_token_timeout
    )
    """Most a streamed attempt may take to its first text or tool call (None: off)."""
    idle_timeout: fc.Deadline = Field(
        default_factory=lambda: fc.get_failover_defaults().idle_timeout
    )
    """Longest gap between chunks once a stream has produced output (None: off)."""
    hedge_after: Any = Field(default_factory=lambda: fc.get_failover_defaults().hedge_after)
    """Race the next model when an attempt has no output after this: seconds, a timedelta,
    ``"p95"`` (adaptive) or None (off, the default). See the README's Hedging section."""
    resume_streams: Any = Field(default_factory=lambda: fc.get_failover_defaults().resume_streams)
    """Continue a stream broken after plain text on the next model able to (True: the
    ``ChatAnthropic`` children; or a list of the keys able), instead of raising
    :class:`failover_core.StreamInterruptedError`. See the README's Resumed streams."""
    transient_cooldown: timedelta | float | str | None = None
    """The first bench after transient failures (default 8 s); each failed probe doubles
    it, up to ``cooldown``. See docs/guides/cooldowns.md."""
    dead_cooldown: timedelta | float | str | None = None
    """The first bench after an auth/model-dead error (default: the whole ``cooldown``)."""
    on_content_filter: str | None = None
    """A content filter's refusal: ``"raise"`` it at once (default) or try the ``"next"``
    model; nothing is benched either way."""
    reasoning_timeout: fc.Deadline = Field(
        default_factory=lambda: fc.get_failover_defaults().reasoning_timeout
    )
    """Replaces ``timeout`` and ``first_token_timeout`` for reasoning children (o-series,
    GPT-5, Claude with thinking, Gemini thinking); default 10 min, None: never cut."""
    on_transient: Any = Field(default_factory=lambda: fc.get_failover_defaults().on_transient)
    """``"retry"`` (default): retry a transient error on the same model with backoff;
    ``"next"``: send the request to the next healthy model at once (fail over first)."""
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    streaming: bool = False
    """Stream from children even in ``invoke`` (LangChain's backward-compatible flag)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _chain: fc.FailoverChain[Child] = PrivateAttr()
    _identity: dict[str, Any] = PrivateAttr(default_factory=dict)
    _own_profile: bool = PrivateAttr(default=False)

    def __init__(self, **data: Any) -> None:
        """Refuse what would be silently ignored: an unknown option, a spec string."""
        fields = type(self).model_fields
        check_options(
            type(self).__name__, data, {*fields, *(f.alias for f in fields.values() if f.alias)}
        )
        models = data.get("models")
        members = list(models.values()) if isinstance(models, Mapping) else models
        for model in members if isinstance(members, (list, tuple)) else ():
            if type(model).__name__ == "_ConfigurableModel":
                raise TypeError(
                    "init_chat_model(..., configurable_fields=...) builds a model that picks "
                    "its provider and model at call time, from config['configurable']; a "
                    "failover chain needs fixed models, each with its own health key. Build "
                    "each child without configurable_fields (e.g. init_chat_model("
                    "'openai:gpt-4o-mini')); per-call settings such as temperature can be "
                    "bound on the failover model (.bind(temperature=...))"
                )
        if "models" in data:  # before pydantic, whose errors would name its internals
            fc.check_models(data["models"], **_MEMBERS)
        super().__init__(**data)

    @model_validator(mode="after")
    def _build_chain(self) -> Self:
        # LangChain's own validator has run: a profile here is one the user gave.
        self._own_profile = self.profile is not None
        self._rebuild()
        return self

    def _rebuild(self) -> None:
        """Build the chain (policy, entries, registry) from the fields as they are now."""
        policy = fc.FailoverPolicy.of(self)
        pools: list[PoolGroup] = []
        entries = _entries(self.models, pools)
        chain = fc.FailoverChain(entries, policy, self.registry, pools=pools)
        for entry in entries:
            fc.warn_if_child_retries(entry.key, entry.model, stacklevel=5)
        self._chain = chain
        self._identity = {
            "models": list(chain.keys),
            "max_retries": policy.max_retries,
            "cooldown": policy.cooldown.total_seconds(),
        }
        if not self._own_profile:
            object.__setattr__(self, "profile", common_profile([e.model for e in entries]))

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _CHAIN_FIELDS:
            if name == "profile":
                self._own_profile = value is not None
            super().__setattr__(name, value)
            return
        old = getattr(self, name)
        super().__setattr__(name, value)
        try:
            self._rebuild()
        except BaseException:
            super().__setattr__(name, old)
            raise

    @override
    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose chain is rebuilt from its own fields (``update`` included)."""
        check_options(type(self).__name__, update or {}, type(self).model_fields)
        copied = super().model_copy(update=update, deep=deep)
        if update and "profile" in update:
            copied._own_profile = update["profile"] is not None
        copied._rebuild()
        return copied

    @classmethod
    def from_specs(
        cls,
        specs: str | Sequence[str | Sequence[str]],
        *,
        max_retries: int | None = None,
        cooldown: timedelta | float | str | None = None,
        backoff: Any = None,
        observer: Any = None,
        timeout: fc.DeadlineOption = fc.DEFAULT,
        first_token_timeout: fc.DeadlineOption = fc.DEFAULT,
        idle_timeout: fc.DeadlineOption = fc.DEFAULT,
        hedge_after: fc.HedgeOption = fc.DEFAULT,
        resume_streams: bool | Sequence[str] | None = None,
        transient_cooldown: timedelta | float | str | None = None,
        dead_cooldown: timedelta | float | str | None = None,
        on_content_filter: str | None = None,
        reasoning_timeout: fc.DeadlineOption = fc.DEFAULT,
        on_transient: fc.OnTransient | None = None,
        per_provider: Mapping[str, Mapping[str, Any]] | None = None,
        **model_kwargs: Any,
    ) -> FailoverChatModel:
        """Build a chain from ``"provider:model"`` specs (a list, or one comma-separated string).

        Each model is built by LangChain's ``init_chat_model`` (or a factory given to
        :func:`register_provider`) with ``model_kwargs`` and ``max_retries=0``, so the
        failover model is the only retry layer. ``per_provider`` gives kwargs to one
        provider's models only, e.g. ``per_provider={"openai": {"api_key": ...},
        "anthropic": {"api_key": ...}}``. ``max_retries`` here is the failover model's
        attempts per model, and the deadlines are the failover model's own.
        """
        built = providers.build_models(specs, model_kwargs, per_provider)
        deadlines: dict[str, Any] = {
            "timeout": timeout,
            "first_token_timeout": first_token_timeout,
            "idle_timeout": idle_timeout,
            "hedge_after": hedge_after,
            "resume_streams": fc.DEFAULT if resume_streams is None else resume_streams,
            "reasoning_timeout": reasoning_timeout,
            "on_transient": fc.DEFAULT if on_transient is None else on_transient,
        }
        return cls(
            models=built,
            max_retries=max_retries,
            cooldown=cooldown,
            transient_cooldown=transient_cooldown,
            dead_cooldown=dead_cooldown,
            on_content_filter=on_content_filter,
            backoff=backoff,
            observer=observer,
            **{name: value for name, value in deadlines.items() if value is not fc.DEFAULT},
        )

    # -- identity -----------------------------------------------------------------------

    @property
    def failover_chain(self) -> fc.FailoverChain[Child]:
        """The core chain: entries (key and model), policy, registry."""
        return self._chain

    @property
    def keys(self) -> tuple[str, ...]:
        """The health keys of the chain's models, in order."""
        return self._chain.keys

    @property
    def model_name(self) -> str:
        """``"failover"``: no provider's model name, on purpose.

        Code that picks features by model name (``create_agent`` chooses provider-native
        structured output for names like ``gpt-4o``) must not take one child's name for the
        whole chain. The chain's models are in :attr:`keys`; traces show them all.
        """
        return "failover"

    @property
    def _llm_type(self) -> str:
        return "failover"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return dict(self._identity)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        # Read only on the legacy generate() path, where the failover run is a model run.
        params = LangSmithParams(
            ls_provider="failover",
            ls_model_name=str(kwargs.get("model") or "failover:" + ",".join(self._chain.keys)),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # What BaseChatModel builds (identifying params, type, stop, call kwargs), from a
        # dict made once: it is part of every cache key.
        return {**self._identity, "_type": self._llm_type, "stop": stop, **kwargs}

    def get_token_ids(self, text: str) -> list[int]:
        """Tokenized by the first model in the chain (the one serving when all is well)."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        return self._chain.entries[0].model.get_token_ids(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Counted by the first model in the chain, with its own tokenizer and rules."""
        return self._chain.entries[0].model.get_num_tokens_from_messages(messages, tools)

    # -- tools and structured output ----------------------------------------------------

    @override
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; each child binds them itself at call time, in its own format.

        ``tool_choice`` (``"auto"``, ``"any"``, ``"required"``, a tool name, ...) and
        ``parallel_tool_calls``/``strict`` are handed to each child's ``bind_tools``.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    @override
    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        include_raw: bool = False,
        method: str | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Each attempt is the serving child's own ``with_structured_output(schema,
        method=, strict=, include_raw=)``: OpenAI's ``response_format`` (JSON schema,
        ``strict``, JSON mode answering a dict), Anthropic's own, and so on. Options left
        unset are left to each child's default. A child that refuses the options is
        skipped for the request; with ``include_raw=True`` the raw message says who
        served, as any answer does."""
        options: dict[str, Any] = {"include_raw": include_raw, **kwargs}
        if method is not None:
            options["method"] = method
        if strict is not None:
            options["strict"] = strict
        return FailoverStructuredOutput(self, schema, options)

    # -- one request --------------------------------------------------------------------

    def _request(
        self, input: LanguageModelInput, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Request:
        call = {k: v for k, v in kwargs.items() if k not in TOOL_KWARGS + DROPPED_KWARGS}
        tools = {k: kwargs[k] for k in TOOL_KWARGS if k in kwargs}
        for name in ("temperature", "max_tokens"):
            value = getattr(self, name)
            if value is not None:
                call.setdefault(name, value)
        if stop or self.stop:
            call["stop"] = stop or self.stop
        return Request(self._convert_input(input).to_messages(), call, tools)

    def _cache(self) -> BaseCache | None:
        """The cache set on the failover model itself (children keep their own)."""
        if isinstance(self.cache, BaseCache):
            return self.cache
        if self.cache is True:
            cache = get_llm_cache()
            if cache is None:
                raise ValueError("cache=True on FailoverChatModel, but no global cache is set")
            return cache
        return None

    def _cache_key(
        self, request: Request, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[str, str]:
        return dumps(request.messages), self._get_llm_string(stop=stop, **kwargs)

    def _streaming_disabled(self, **kwargs: Any) -> bool:
        if self.disable_streaming is True:
            return True
        return self.disable_streaming == "tool_calling" and bool(kwargs.get("tools"))

    @staticmethod
    def _unobserved(config: RunnableConfig, model: BaseChatModel) -> bool:
        """True when no handler could see a child run: its generation is called directly
        (its cache and rate limiter included), without the bookkeeping of a run."""
        return not config.get("callbacks") and not model.callbacks and not model.verbose

    def _call_child(self, child: Child, request: Request, config: RunnableConfig) -> BaseMessage:
        target, kwargs = request.target(child.model)
        if target is child.model and self._unobserved(config, child.model):
            stop, rest = direct_kwargs(kwargs)
            result = child.model._generate_with_cache(request.messages, stop=stop, **rest)
            return self._heard(child, result.generations[0].message)
        config = self._attempt_config(child, config)
        return self._heard(child, target.invoke(request.messages, config, **kwargs))

    @staticmethod
    def _attempt_config(child: Child, config: RunnableConfig) -> RunnableConfig:
        """``config`` for a sync attempt; one its driver may abandon (on a worker, past a
        deadline or losing a hedged race) ends its run then, and is silent after."""
        scope = current_attempt()
        return config if scope is None else cb.guarded(config, scope, child.model)

    async def _acall_child(
        self, child: Child, request: Request, config: RunnableConfig
    ) -> BaseMessage:
        target, kwargs = request.target(child.model)
        if target is child.model and self._unobserved(config, child.model):
            stop, rest = direct_kwargs(kwargs)
            result = await child.model._agenerate_with_cache(request.messages, stop=stop, **rest)
            return self._heard(child, result.generations[0].message)
        watch = cb.AttemptRun()
        attempt = cb.watched(config, watch)
        try:
            return self._heard(child, await target.ainvoke(request.messages, attempt, **kwargs))
        except BaseException as exc:  # cancelled: the child's run has no end unless we end it
            await cb.aend_cancelled(watch, attempt, child.model, exc)
            raise

    def _heard(self, child: Child, message: Any) -> BaseMessage:
        """``message`` from ``child``, its rate-limit headers noted for its pool."""
        self._heard_key(child.key, message)
        return cast(BaseMessage, message)

    def _heard_key(self, key: str, message: BaseMessage) -> None:
        if self._chain.pools:
            self._chain.note_response(key, response_headers(message))

    def _answer(
        self,
        request: Request,
        config: RunnableConfig,
        on_retry: Callable[[fc.Sleep], Any],
        on_event: Callable[[fc.FailoverEvent], Any],
    ) -> AIMessage:
        if self.rate_limiter:
            self.rate_limiter.acquire(blocking=True)
        policy = self._chain.policy
        message, served = self._chain.invoke(
            lambda child: screened(policy, child.key, self._call_child(child, request, config)),
            request=request.messages,
            on_retry=on_retry,
            on_event=on_event,
        )
        return cast(AIMessage, served_copy(message, served))

    async def _aanswer(
        self,
        request: Request,
        config: RunnableConfig,
        on_retry: Callable[[fc.Sleep], Any],
        on_event: Callable[[fc.FailoverEvent], Any],
    ) -> AIMessage:
        if self.rate_limiter:
            await self.rate_limiter.aacquire(blocking=True)
        policy = self._chain.policy
        message, served = await self._chain.ainvoke(
            lambda c: ascreened(policy, c.key, self._acall_child(c, request, config)),
            request=request.messages,
            on_retry=on_retry,
            on_event=on_event,
        )
        return cast(AIMessage, served_copy(message, served))

    def _continued(
        self, request: Request, child: Child, text: str
    ) -> tuple[Runnable[Any, Any], list[BaseMessage], dict[str, Any]] | None:
        """What to call on ``child`` to continue ``text``: the request's messages plus the
        text as the assistant's own turn (a prefill). ``None`` when this request may not be
        continued (structured output, JSON mode, a forced tool choice) or ``child`` cannot.
        """
        prefill = text.rstrip()  # the Messages API refuses a prefill ending in whitespace
        if not prefill or not resumable_request(request):
            return None
        if not self._chain.policy.may_continue(child.key, able=prefills(child.model)):
            return None
        target, call = request.target(child.model)
        call = prefill_call(child.model, call)
        return target, [*request.messages, AIMessage(content=prefill)], call

    def _chunks(
        self,
        request: Request,
        config: RunnableConfig,
        on_retry: Callable[[fc.Sleep], Any],
        on_event: Callable[[fc.FailoverEvent], Any],
        restart: Callable[[], object] | None = None,
        stamps: Stamps | None = None,
    ) -> Iterator[AIMessageChunk]:
        """One request's failover stream, as the caller sees it (see :class:`Stamps`).

        ``restart``: the caller takes a whole answer (``invoke``): a broken stream that
        cannot be resumed starts over on the next model, after ``restart()``.
        """

        def open_stream(child: Child) -> Iterator[AIMessageChunk]:
            target, call = request.target(child.model)
            attempt = self._attempt_config(child, config)
            chunks = message_chunks(target.stream(request.messages, attempt, **call))
            return screened_stream(self._chain.policy, child.key, chunks)

        def open_continuation(
            child: Child, text: str
        ) -> Callable[[], Iterator[AIMessageChunk]] | None:
            continued = self._continued(request, child, text)
            if continued is None:
                return None
            target, messages, call = continued
            return lambda: after_prefill(
                text,
                message_chunks(
                    target.stream(messages, self._attempt_config(child, config), **call)
                ),
            )

        stamps = stamps or Stamps()

        def started_over() -> None:
            stamps.reset()
            if restart is not None:
                restart()

        if self.rate_limiter:
            self.rate_limiter.acquire(blocking=True)
        chunks = self._chain.stream(
            open_stream,
            message_text,
            request.messages,
            on_retry,
            on_event,
            commits,
            resume=open_continuation,
            plain=plain,
            restart=None if restart is None else started_over,
        )
        heard: fc.Served | None = None
        for chunk, served in chunks:
            if served is not heard:  # a model's first chunk: its pool reads the headers
                self._heard_key(served.model, chunk)
                heard = served
            yield stamps(chunk, served)

    async def _achunks(
        self,
        request: Request,
        config: RunnableConfig,
        on_retry: Callable[[fc.Sleep], Any],
        on_event: Callable[[fc.FailoverEvent], Any],
        restart: Callable[[], object] | None = None,
        stamps: Stamps | None = None,
    ) -> AsyncIterator[AIMessageChunk]:
        """The async twin of :meth:`_chunks`."""

        def open_stream(child: Child) -> AsyncIterator[AIMessageChunk]:
            target, call = request.target(child.model)
            chunks = amessage_chunks(target.astream(request.messages, config, **call))
            return ascreened_stream(self._chain.policy, child.key, chunks)

        def open_continuation(
            child: Child, text: str
        ) -> Callable[[], AsyncIterator[AIMessageChunk]] | None:
            continued = self._continued(request, child, text)
            if continued is None:
                return None
            target, messages, call = continued
            return lambda: aafter_prefill(
                text, amessage_chunks(target.astream(messages, config, **call))
            )

        stamps = stamps or Stamps()

        def started_over() -> None:
            stamps.reset()
            if restart is not None:
                restart()

        if self.rate_limiter:
            await self.rate_limiter.aacquire(blocking=True)
        chunks = self._chain.astream(
            open_stream,
            message_text,
            request.messages,
            on_retry,
            on_event,
            commits,
            resume=open_continuation,
            plain=plain,
            restart=None if restart is None else started_over,
        )
        heard: fc.Served | None = None
        async for chunk, served in chunks:
            if served is not heard:  # a model's first chunk: its pool reads the headers
                self._heard_key(served.model, chunk)
                heard = served
            yield stamps(chunk, served)

    def _answer_streamed(
        self,
        request: Request,
        config: RunnableConfig,
        on_retry: Callable[[fc.Sleep], Any],
        on_event: Callable[[fc.FailoverEvent], Any],
    ) -> AIMessage:
        """``invoke`` under a streaming callback (LangGraph's "messages" mode, an agent's
        token stream): the children stream, so the answer is the stream driver's, with its
        guarantees. Text shown is never shown again: a broken stream is resumed where
        ``resume_streams`` allows, else the next model answers from scratch."""
        output: list[AIMessageChunk] = []
        stamps = Stamps()
        for chunk in self._chunks(request, config, on_retry, on_event, output.clear, stamps):
            output.append(chunk)
        return _whole(output, stamps)

    async def _aanswer_streamed(
        self,
        request: Request,
        config: RunnableConfig,
        on_retry: Callable[[fc.Sleep], Any],
        on_event: Callable[[fc.FailoverEvent], Any],
    ) -> AIMessage:
        output: list[AIMessageChunk] = []
        stamps = Stamps()
        chunks = self._achunks(request, config, on_retry, on_event, output.clear, stamps)
        async for chunk in chunks:
            output.append(chunk)
        return _whole(output, stamps)

    # -- the Runnable surface: the failover run is a chain run --------------------------

    @override
    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        if self.streaming and not self._streaming_disabled(**kwargs):
            return joined(self.stream(input, config, stop=stop, **kwargs))
        config = cb.with_model_config(ensure_config(config), self)
        request = self._request(input, stop, kwargs)
        cache = self._cache()
        manager, run_manager = cb.start_router_run(config, input, self.get_name())
        try:
            key = self._cache_key(request, stop, kwargs) if cache is not None else None
            hit = cache.lookup(*key) if cache is not None and key is not None else None
            if hit:
                message = cast(AIMessage, cast(ChatGeneration, hit[0]).message)
            else:
                child_config, on_retry, on_event = cb.child_run(config, manager, run_manager)
                answer = self._answer_streamed if _streamed_to(manager) else self._answer
                with set_config_context(child_config) as context:
                    message = context.run(answer, request, child_config, on_retry, on_event)
                if cache is not None and key is not None:
                    cache.update(*key, [ChatGeneration(message=message)])
        except BaseException as exc:
            run_manager.on_chain_error(exc)
            raise
        run_manager.on_chain_end(message)
        return message

    @override
    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        if self.streaming and not self._streaming_disabled(**kwargs):
            return await ajoined(self.astream(input, config, stop=stop, **kwargs))
        config = cb.with_model_config(ensure_config(config), self)
        request = self._request(input, stop, kwargs)
        cache = self._cache()
        manager, run_manager = await cb.astart_router_run(config, input, self.get_name())
        try:
            key = self._cache_key(request, stop, kwargs) if cache is not None else None
            hit = await cache.alookup(*key) if cache is not None and key is not None else None
            if hit:
                message = cast(AIMessage, cast(ChatGeneration, hit[0]).message)
            else:
                child_config, on_retry, on_event = cb.achild_run(config, manager, run_manager)
                aanswer = self._aanswer_streamed if _streamed_to(manager) else self._aanswer
                with set_config_context(child_config):
                    message = await aanswer(request, child_config, on_retry, on_event)
                if cache is not None and key is not None:
                    await cache.aupdate(*key, [ChatGeneration(message=message)])
        except BaseException as exc:
            await run_manager.on_chain_error(exc)
            raise
        await run_manager.on_chain_end(message)
        return message

    @override
    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        if self._streaming_disabled(**kwargs):
            yield cast(AIMessageChunk, self.invoke(input, config, stop=stop, **kwargs))
            return
        config = cb.with_model_config(ensure_config(config), self)
        request = self._request(input, stop, kwargs)
        manager, run_manager = cb.start_router_run(config, input, self.get_name())
        child_config, on_retry, on_event = cb.child_run(config, manager, run_manager)
        output: AIMessageChunk | None = None
        try:
            for chunk in self._chunks(request, child_config, on_retry, on_event):
                output = chunk if output is None else output + chunk
                yield chunk
        except BaseException as exc:
            run_manager.on_chain_error(exc)
            raise
        run_manager.on_chain_end(output)

    @override
    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        if self._streaming_disabled(**kwargs):
            yield cast(AIMessageChunk, await self.ainvoke(input, config, stop=stop, **kwargs))
            return
        config = cb.with_model_config(ensure_config(config), self)
        request = self._request(input, stop, kwargs)
        manager, run_manager = await cb.astart_router_run(config, input, self.get_name())
        child_config, on_retry, on_event = cb.achild_run(config, manager, run_manager)
        output: AIMessageChunk | None = None
        try:
            async for chunk in self._achunks(request, child_config, on_retry, on_event):
                output = chunk if output is None else output + chunk
                yield chunk
        except BaseException as exc:
            await run_manager.on_chain_error(exc)
            raise
        await run_manager.on_chain_end(output)

    # -- generate() and the v3 event stream ---------------------------------------------

    @override
    def generate(
        self,
        messages: list[list[BaseMessage]],
        stop: list[str] | None = None,
        callbacks: Any = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: Any = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Each prompt answered as :meth:`invoke` answers it: a chain run with the serving
        child's model run under it, which LangSmith prices (a model run named after the
        failover model has no price)."""
        answers = [
            self.invoke(
                prompt,
                self._generate_config(callbacks, tags, metadata, run_name, run_id, n),
                stop=stop,
                **kwargs,
            )
            for n, prompt in enumerate(messages)
        ]
        return LLMResult(generations=[[ChatGeneration(message=m)] for m in answers])

    @override
    async def agenerate(
        self,
        messages: list[list[BaseMessage]],
        stop: list[str] | None = None,
        callbacks: Any = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: Any = None,
        **kwargs: Any,
    ) -> LLMResult:
        """The async twin of :meth:`generate` (prompts answered concurrently)."""
        answers = await asyncio.gather(
            *(
                self.ainvoke(
                    prompt,
                    self._generate_config(callbacks, tags, metadata, run_name, run_id, n),
                    stop=stop,
                    **kwargs,
                )
                for n, prompt in enumerate(messages)
            )
        )
        return LLMResult(generations=[[ChatGeneration(message=m)] for m in answers])

    @staticmethod
    def _generate_config(
        callbacks: Any,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        run_name: str | None,
        run_id: Any,
        n: int,
    ) -> RunnableConfig:
        config = RunnableConfig(callbacks=callbacks, tags=tags or [], metadata=metadata or {})
        if run_name is not None:
            config["run_name"] = run_name
        if run_id is not None and n == 0:
            config["run_id"] = run_id
        return config

    #
    # invoke, stream and their async twins above are the failover model's surface; only
    # generate()/agenerate() and LangChain's beta stream_events(version="v3") still open a
    # chat-model run for the failover model itself. There the children are called without
    # runs of their own, so each call is still counted once, on the failover run.

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        message = self._answer(request, RunnableConfig(), _ignore, _ignore)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        message = await self._aanswer(request, RunnableConfig(), _ignore, _ignore)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs)

        def open_stream(child: Child) -> Iterator[ChatGenerationChunk]:
            target, call = request.target(child.model)
            stop, rest = direct_kwargs(call)
            if target is not child.model or not streams(child.model):
                message = self._call_child(child, request, RunnableConfig())
                return iter([as_chunk(message)])
            return child.model._stream(request.messages, stop=stop, **rest)

        chunks = self._chain.stream(open_stream, chunk_text, messages, commits=chunk_commits)
        for n, (chunk, served) in enumerate(chunks):
            if not n:
                self._heard_key(served.model, chunk.message)
            yield chunk if n else ChatGenerationChunk(message=served_copy(chunk.message, served))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs)

        async def open_stream(child: Child) -> AsyncIterator[ChatGenerationChunk]:
            target, call = request.target(child.model)
            stop, rest = direct_kwargs(call)
            if target is not child.model or not streams(child.model):
                yield as_chunk(await self._acall_child(child, request, RunnableConfig()))
                return
            async for chunk in child.model._astream(request.messages, stop=stop, **rest):
                yield chunk

        chunks = self._chain.astream(open_stream, chunk_text, messages, commits=chunk_commits)
        n = 0
        async for chunk, served in chunks:
            if not n:
                self._heard_key(served.model, chunk.message)
            yield chunk if n else ChatGenerationChunk(message=served_copy(chunk.message, served))
            n += 1
