"""Structured output through a failover model: each attempt is the serving child's own
``with_structured_output``.

Providers build structured output their own way (OpenAI a ``response_format`` JSON
schema, ``strict`` or JSON mode; Anthropic a forced tool or its native format): a generic
forced tool call on the failover model would throw that away. So the failover runnable
builds, per child, ``child.with_structured_output(schema, method=..., strict=...,
include_raw=...)`` and runs the chain over those. Its trace is the failover model's: one
chain run, each attempt's chat-model run under it (the child's parser beside it).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from langchain_core.language_models import LanguageModelInput
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, RunnableSequence
from langchain_core.runnables.config import (
    ensure_config,
)
from typing_extensions import override

import failover_core as fc

from . import _callbacks as cb
from ._children import Child

__all__ = ["FailoverStructuredOutput"]


class FailoverModel(Protocol):
    """What this module needs of a ``FailoverChatModel`` (which imports this module)."""

    callbacks: Any
    tags: Any
    metadata: Any

    @property
    def failover_chain(self) -> fc.FailoverChain[Child]: ...

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str: ...

    def _convert_input(self, model_input: LanguageModelInput) -> PromptValue: ...

    @staticmethod
    def _attempt_config(child: Child, config: RunnableConfig) -> RunnableConfig: ...


class FailoverStructuredOutput(Runnable[LanguageModelInput, Any]):
    """``FailoverChatModel.with_structured_output(...)``: the chain over each child's own
    structured output. A child that cannot give it (an unsupported ``method``) is skipped
    for this request, like any error raised before a request was sent."""

    def __init__(self, model: FailoverModel, schema: Any, options: dict[str, Any]) -> None:
        self.model = model
        self.schema = schema
        self.options = options
        self._built: dict[str, Runnable[Any, Any]] = {}

    @override
    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        return self.model.get_name(suffix, name=name)

    def _structured(self, child: Child) -> Runnable[Any, Any]:
        built = self._built.get(child.key)
        if built is None:
            built = child.model.with_structured_output(self.schema, **self.options)
            self._built[child.key] = built
        return built

    def _steps(
        self, child: Child
    ) -> tuple[Runnable[Any, Any], dict[str, Any], Runnable[Any, Any] | None]:
        """The child's model call (the model itself, with its bound kwargs, so its run
        nests under the failover run) and what parses its answer; or the child's whole
        runnable when it is not ``model | parser``."""
        built = self._structured(child)
        if isinstance(built, RunnableSequence):
            first, rest = built.first, [*built.middle, built.last]
            if (
                isinstance(first, RunnableBinding)
                and first.bound is child.model
                and not first.config
            ):
                parse = rest[0] if len(rest) == 1 else RunnableSequence(*rest)
                return child.model, dict(first.kwargs), parse
        return built, {}, None

    def _call(self, child: Child, messages: Any, config: RunnableConfig) -> Any:
        target, kwargs, parse = self._steps(child)
        config = self.model._attempt_config(child, config)
        answer = target.invoke(messages, config, **kwargs)
        return answer if parse is None else parse.invoke(answer, config)

    async def _acall(self, child: Child, messages: Any, config: RunnableConfig) -> Any:
        target, kwargs, parse = self._steps(child)
        watch = cb.AttemptRun()
        attempt = cb.watched(config, watch)
        try:
            answer = await target.ainvoke(messages, attempt, **kwargs)
        except BaseException as exc:  # cancelled: the child's run has no end unless we end it
            await cb.aend_cancelled(watch, attempt, child.model, exc)
            raise
        return answer if parse is None else await parse.ainvoke(answer, config)

    @override
    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        config = cb.with_model_config(ensure_config(config), self.model)
        messages = self.model._convert_input(input).to_messages()
        manager, run_manager = cb.start_router_run(config, input, self.get_name())
        try:
            child_config, on_retry, on_event = cb.child_run(config, manager, run_manager)

            def call(child: Child) -> Any:
                return self._call(child, messages, child_config)

            output, served = self.model.failover_chain.invoke(
                call, request=messages, on_retry=on_retry, on_event=on_event
            )
            output = _stamped(output, served)
        except BaseException as exc:
            run_manager.on_chain_error(exc)
            raise
        run_manager.on_chain_end(output)
        return output

    @override
    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        config = cb.with_model_config(ensure_config(config), self.model)
        messages = self.model._convert_input(input).to_messages()
        manager, run_manager = await cb.astart_router_run(config, input, self.get_name())
        try:
            child_config, on_retry, on_event = cb.achild_run(config, manager, run_manager)

            async def call(child: Child) -> Any:
                return await self._acall(child, messages, child_config)

            output, served = await self.model.failover_chain.ainvoke(
                call, request=messages, on_retry=on_retry, on_event=on_event
            )
            output = _stamped(output, served)
        except BaseException as exc:
            await run_manager.on_chain_error(exc)
            raise
        await run_manager.on_chain_end(output)
        return output


def _stamped(output: Any, served: Any) -> Any:
    """With ``include_raw=True``, the raw message says who served, as an answer does."""
    from ._streaming import served_copy

    if isinstance(output, dict) and "raw" in output and hasattr(output["raw"], "response_metadata"):
        return {**output, "raw": served_copy(output["raw"], served)}
    return cast(Any, output)
