"""``FailoverChatModel``: a LangChain chat model over an ordered chain of chat models."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, model_validator
from typing_extensions import Self, override

import failover_core as fc

from . import _callbacks as cb

__all__ = ["FailoverChatModel", "key_of", "register_provider"]

# A private kwarg carrying the failover run to _stream/_astream, which LangChain calls
# without a run manager from stream()/astream() and from invoke()'s streaming branch.
_RUN = "_failover_run"
_TOOL_KWARGS = ("tools", "tool_choice", "parallel_tool_calls", "strict")
_DROPPED_KWARGS = ("model", _RUN)  # never forwarded to a child


@dataclass(frozen=True)
class _Child:
    """One entry: its health key and the chat model behind it."""

    key: str
    model: BaseChatModel


def key_of(model: BaseChatModel) -> str:
    """``provider/model`` from the model's LangSmith params (``openai/gpt-4o-mini``)."""
    params = model._get_ls_params()
    provider = str(params.get("ls_provider") or model._llm_type)
    name = params.get("ls_model_name")
    return f"{provider}/{name}" if name else provider


def _entries(models: Sequence[BaseChatModel] | Mapping[str, BaseChatModel]) -> list[_Child]:
    return fc.build_entries(
        models,
        model_type=BaseChatModel,
        what="LangChain chat models (BaseChatModel)",
        key_of=key_of,
        make=_Child,
        nested=lambda m: m.failover_chain.entries if isinstance(m, FailoverChatModel) else None,
    )


_providers: fc.ProviderRegistry[BaseChatModel] = fc.ProviderRegistry()


def _init_chat_model(model: str, **kwargs: Any) -> BaseChatModel:
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:  # pragma: no cover - the langchain extra installs it
        raise fc.SpecError("from_specs needs the 'langchain' package") from exc
    built = init_chat_model(model, **kwargs)
    if not isinstance(built, BaseChatModel):
        raise fc.SpecError(f"init_chat_model built {type(built).__name__}, not a chat model")
    return built


def register_provider(provider: str, factory: Callable[..., BaseChatModel]) -> None:
    """Build ``provider:...`` specs with ``factory(model_name, **kwargs)`` in ``from_specs``.

    Without a registration, ``from_specs`` uses LangChain's ``init_chat_model``.
    """
    _providers.register(provider, factory)


def _ignore(_: object) -> None:
    return None


def _text(chunk: ChatGenerationChunk) -> str:
    return chunk.message.text


def _commits(chunk: ChatGenerationChunk) -> bool:
    """Output a caller can see: text or a tool call. A bare role header is not output."""
    message = chunk.message
    if message.content:
        return True
    return bool(isinstance(message, AIMessageChunk) and message.tool_call_chunks)


class FailoverChatModel(BaseChatModel):
    """A chat model that fails over along an ordered chain of chat models.

    Transient errors are retried with backoff, then the model is benched for every chain
    in the process and the next one is tried; auth/model-dead errors bench at once;
    request-specific errors skip to the next model without a bench. Every decision goes
    to ``observer``, to the log, and to callback handlers as the custom event
    ``"failover"``. The answer's ``response_metadata["failover"]`` names the model that
    served it and the failed attempts before it.

    ``temperature``, ``max_tokens`` and ``stop``, when set, are passed to every child on
    each call. Children should be built with ``max_retries=0``; the model warns once per
    child that retries on its own.
    """

    models: Sequence[BaseChatModel] | Mapping[str, BaseChatModel] = Field(repr=False)
    """The chain, in order; a dict gives the health keys explicitly."""
    max_retries: int | None = None
    """Attempts per model on transient errors (default 3; below 1 means 1)."""
    cooldown: timedelta | float | None = None
    """How long a failed model stays benched: a timedelta or seconds (default 5 minutes)."""
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
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    streaming: bool = False
    """Stream from children even in ``invoke`` (LangChain's backward-compatible flag)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _chain: fc.FailoverChain[_Child] = PrivateAttr()
    _name: str = PrivateAttr(default="failover")
    _identity: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _build_chain(self) -> Self:
        policy = fc.FailoverPolicy.build(
            max_retries=self.max_retries,
            cooldown=self.cooldown,
            backoff=self.backoff,
            observer=self.observer,
            rules=list(self.rules),
            timeout=self.timeout,
            first_token_timeout=self.first_token_timeout,
            idle_timeout=self.idle_timeout,
            hedge_after=self.hedge_after,
        )
        entries = _entries(self.models)
        self._chain = fc.FailoverChain(entries, policy, self.registry)
        self._name = "failover:" + ",".join(self._chain.keys)
        self._identity = {
            "models": list(self._chain.keys),
            "max_retries": policy.max_retries,
            "cooldown": policy.cooldown.total_seconds(),
        }
        for entry in entries:
            fc.warn_if_child_retries(entry.key, entry.model, stacklevel=4)
        return self

    @classmethod
    def from_specs(
        cls,
        specs: str | Sequence[str],
        *,
        max_retries: int | None = None,
        cooldown: timedelta | float | None = None,
        backoff: Any = None,
        observer: Any = None,
        timeout: fc.DeadlineOption = fc.DEFAULT,
        first_token_timeout: fc.DeadlineOption = fc.DEFAULT,
        idle_timeout: fc.DeadlineOption = fc.DEFAULT,
        hedge_after: fc.HedgeOption = fc.DEFAULT,
        **model_kwargs: Any,
    ) -> FailoverChatModel:
        """Build a chain from ``"provider:model"`` specs (a list, or one comma-separated string).

        Each model is built by LangChain's ``init_chat_model`` (or a factory given to
        :func:`register_provider`) with ``model_kwargs`` and ``max_retries=0``, so the
        failover model is the only retry layer. ``max_retries`` here is the failover
        model's attempts per model, and the deadlines are the failover model's own.
        """
        built = {spec.key: model for spec, model in _providers.build_chain(specs, model_kwargs)}
        deadlines: dict[str, Any] = {
            "timeout": timeout,
            "first_token_timeout": first_token_timeout,
            "idle_timeout": idle_timeout,
            "hedge_after": hedge_after,
        }
        return cls(
            models=built,
            max_retries=max_retries,
            cooldown=cooldown,
            backoff=backoff,
            observer=observer,
            **{name: value for name, value in deadlines.items() if value is not fc.DEFAULT},
        )

    # -- identity -----------------------------------------------------------------------

    @property
    def failover_chain(self) -> fc.FailoverChain[_Child]:
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
        params = LangSmithParams(
            ls_provider="failover",
            ls_model_name=str(kwargs.get("model") or self._name),
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
        # dict made once: this runs on every call. The private run kwarg is not a param.
        kwargs.pop(_RUN, None)
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

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        # The cache key: the private run kwarg differs on every call and is not a param.
        kwargs.pop(_RUN, None)
        return super()._get_llm_string(stop=stop, **kwargs)

    # -- tools --------------------------------------------------------------------------

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

    # -- calling children ---------------------------------------------------------------

    def _call_plan(
        self, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split call kwargs into (child call kwargs, child bind_tools kwargs)."""
        call = {k: v for k, v in kwargs.items() if k not in _TOOL_KWARGS + _DROPPED_KWARGS}
        tools = {k: kwargs[k] for k in _TOOL_KWARGS if k in kwargs}
        for name in ("temperature", "max_tokens"):
            value = getattr(self, name)
            if value is not None:
                call.setdefault(name, value)
        if stop or self.stop:
            call["stop"] = stop or self.stop
        return call, tools

    @staticmethod
    def _runnable(model: BaseChatModel, tools: dict[str, Any]) -> Runnable[Any, Any]:
        if not tools.get("tools"):
            return model
        options = {k: v for k, v in tools.items() if k != "tools"}
        return model.bind_tools(tools["tools"], **options)

    @staticmethod
    def _unobserved(run_manager: Any, model: BaseChatModel) -> bool:
        """No callback handler could see a child run (no tracing, no handlers at all)."""
        if run_manager is not None and (run_manager.handlers or run_manager.inheritable_handlers):
            return False
        return not model.callbacks and not model.verbose

    def _plan_child(
        self, model: BaseChatModel, tools: dict[str, Any], call: dict[str, Any], direct: bool
    ) -> tuple[Runnable[Any, Any], dict[str, Any], bool]:
        """What to call on a child: its runnable (tools bound) and kwargs, and whether its
        generation can be called directly.

        With nothing listening, a child run would be bookkeeping nobody sees, so the
        child's generation (its cache, rate limiter and own retries included) is called
        without it.
        """
        runnable = self._runnable(model, tools)
        if direct and runnable is model:
            return runnable, dict(call), True
        if direct and isinstance(runnable, RunnableBinding) and runnable.bound is model:
            return runnable, {**runnable.kwargs, **call}, True
        return runnable, call, False

    def _invoke_child(
        self,
        child: _Child,
        messages: list[BaseMessage],
        config: RunnableConfig,
        call: dict[str, Any],
        tools: dict[str, Any],
        direct: bool,
    ) -> BaseMessage:
        runnable, kwargs, direct = self._plan_child(child.model, tools, call, direct)
        if direct:
            stop = kwargs.pop("stop", None)
            result = child.model._generate_with_cache(messages, stop=stop, **kwargs)
            return result.generations[0].message
        return cast(BaseMessage, runnable.invoke(messages, config, **kwargs))

    async def _ainvoke_child(
        self,
        child: _Child,
        messages: list[BaseMessage],
        config: RunnableConfig,
        call: dict[str, Any],
        tools: dict[str, Any],
        direct: bool,
    ) -> BaseMessage:
        runnable, kwargs, direct = self._plan_child(child.model, tools, call, direct)
        if direct:
            stop = kwargs.pop("stop", None)
            result = await child.model._agenerate_with_cache(messages, stop=stop, **kwargs)
            return result.generations[0].message
        return cast(BaseMessage, await runnable.ainvoke(messages, config, **kwargs))

    def _sync_hooks(
        self, run_manager: CallbackManagerForLLMRun | None
    ) -> tuple[RunnableConfig, Callable[[fc.Sleep], None], Callable[[fc.FailoverEvent], None]]:
        if run_manager is None or not (run_manager.handlers or run_manager.inheritable_handlers):
            return RunnableConfig(), _ignore, _ignore
        children = cb.child_manager(run_manager)

        def on_retry(command: fc.Sleep) -> None:
            run_manager.on_retry(cb.retry_state(command))

        def on_event(event: fc.FailoverEvent) -> None:
            children.on_custom_event(cb.EVENT_NAME, cb.event_data(event), run_id=run_manager.run_id)

        return RunnableConfig(callbacks=children), on_retry, on_event

    def _async_hooks(
        self, run_manager: AsyncCallbackManagerForLLMRun | None
    ) -> tuple[RunnableConfig, Callable[[fc.Sleep], Any], Callable[[fc.FailoverEvent], Any]]:
        if run_manager is None or not (run_manager.handlers or run_manager.inheritable_handlers):
            return RunnableConfig(), _ignore, _ignore
        children = cb.achild_manager(run_manager)

        async def on_retry(command: fc.Sleep) -> None:
            await run_manager.on_retry(cb.retry_state(command))

        async def on_event(event: fc.FailoverEvent) -> None:
            await children.on_custom_event(
                cb.EVENT_NAME, cb.event_data(event), run_id=run_manager.run_id
            )

        return RunnableConfig(callbacks=children), on_retry, on_event

    @staticmethod
    def _served(message: BaseMessage, served: fc.Served) -> BaseMessage:
        message.response_metadata = {**message.response_metadata, "failover": served.as_dict()}
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return _generate_from(self._stream(messages, stop, run_manager, **kwargs))
        kwargs.pop(_RUN, None)
        call, tools = self._call_plan(stop, kwargs)
        config, on_retry, on_event = self._sync_hooks(run_manager)
        message, served = self._chain.invoke(
            lambda child: self._invoke_child(
                child, messages, config, call, tools, self._unobserved(run_manager, child.model)
            ),
            request=messages,
            on_retry=on_retry,
            on_event=on_event,
        )
        return ChatResult(generations=[ChatGeneration(message=self._served(message, served))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            chunks = [c async for c in self._astream(messages, stop, run_manager, **kwargs)]
            return _generate_from(iter(chunks))
        kwargs.pop(_RUN, None)
        call, tools = self._call_plan(stop, kwargs)
        config, on_retry, on_event = self._async_hooks(run_manager)
        message, served = await self._chain.ainvoke(
            lambda child: self._ainvoke_child(
                child, messages, config, call, tools, self._unobserved(run_manager, child.model)
            ),
            request=messages,
            on_retry=on_retry,
            on_event=on_event,
        )
        return ChatResult(generations=[ChatGeneration(message=self._served(message, served))])

    # -- streaming ----------------------------------------------------------------------
    #
    # BaseChatModel calls _stream/_astream without the run manager from stream()/astream()
    # and from invoke() when a streaming handler is attached (an agent in "messages" mode,
    # astream_events). So the run travels in a private kwarg: invoke() hands the manager
    # over from _generate_with_cache; stream() pre-assigns the run id, from which _stream
    # rebuilds the same manager. Either way children nest under the failover run and
    # decisions reach the handlers.

    def _generate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if run_manager is not None:
            kwargs.setdefault(_RUN, run_manager)
        return super()._generate_with_cache(messages, stop, run_manager, **kwargs)

    async def _agenerate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if run_manager is not None:
            kwargs.setdefault(_RUN, run_manager)
        return await super()._agenerate_with_cache(messages, stop, run_manager, **kwargs)

    @override
    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        config = ensure_config(config)
        run = cb.StreamRun(config.get("run_id") or uuid.uuid4(), config)
        config = {**config, "run_id": run.run_id}
        yield from super().stream(input, config, stop=stop, **{_RUN: run, **kwargs})

    @override
    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        config = ensure_config(config)
        run = cb.StreamRun(config.get("run_id") or uuid.uuid4(), config)
        config = {**config, "run_id": run.run_id}
        async for chunk in super().astream(input, config, stop=stop, **{_RUN: run, **kwargs}):
            yield chunk

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        run = kwargs.pop(_RUN, None)
        if run_manager is None and isinstance(run, CallbackManagerForLLMRun):
            run_manager = run
        elif run_manager is None and isinstance(run, cb.StreamRun):
            run_manager = run.run_manager(self)
        call, tools = self._call_plan(stop, kwargs)
        config, on_retry, on_event = self._sync_hooks(run_manager)

        def open_stream(child: _Child) -> Iterator[ChatGenerationChunk]:
            for chunk in self._runnable(child.model, tools).stream(messages, config, **call):
                yield ChatGenerationChunk(message=chunk)

        first = True
        for chunk, served in self._chain.stream(
            open_stream, _text, messages, on_retry, on_event, _commits
        ):
            if first:
                self._served(chunk.message, served)
                first = False
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        run = kwargs.pop(_RUN, None)
        if run_manager is None and isinstance(run, AsyncCallbackManagerForLLMRun):
            run_manager = run
        elif run_manager is None and isinstance(run, cb.StreamRun):
            run_manager = run.arun_manager(self)
        call, tools = self._call_plan(stop, kwargs)
        config, on_retry, on_event = self._async_hooks(run_manager)

        async def open_stream(child: _Child) -> AsyncIterator[ChatGenerationChunk]:
            async for chunk in self._runnable(child.model, tools).astream(messages, config, **call):
                yield ChatGenerationChunk(message=chunk)

        first = True
        async for chunk, served in self._chain.astream(
            open_stream, _text, messages, on_retry, on_event, _commits
        ):
            if first:
                self._served(chunk.message, served)
                first = False
            yield chunk


def _generate_from(chunks: Iterator[ChatGenerationChunk]) -> ChatResult:
    from langchain_core.language_models.chat_models import generate_from_stream

    return generate_from_stream(chunks)


def _with_init_chat_model(provider: str, model: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("max_retries", 0)  # the failover model is the one retry layer
    return _init_chat_model(model, model_provider=provider, **kwargs)


_providers.register("*", _with_init_chat_model)
