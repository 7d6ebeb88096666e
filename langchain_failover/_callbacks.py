"""LangChain callback plumbing: the failover run is a chain run, children are its model runs.

The failover model is a router in traces, like ``RunnableWithFallbacks``: its own run is a
chain run, and every attempt is the child's own chat-model run nested under it (with the
child's ``ls_provider``/``ls_model_name`` and usage, errored when it failed). Anything that
sums model runs (usage handlers, LangSmith cost, ``astream_events`` tokens, LangGraph's
"messages" mode) therefore sees each model call once.

Facts this relies on (langchain-core 1.x): a chain run manager's ``get_child()`` gives the
callbacks for runs nested under it; custom events reach handlers (and ``astream_events``)
only through a manager that has the handlers, with the failover run's id;
``on_retry`` needs a real tenacity ``RetryCallState``; a chat model's ``agenerate`` that is
cancelled reports no end for its run (see :class:`AttemptRun`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import tenacity
from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForChainRun,
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    BaseCallbackManager,
    CallbackManager,
    CallbackManagerForChainRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs, patch_config

import failover_core as fc
from failover_core.classification.origin import register_callback_dispatch
from failover_core.config.policy import retry_call_state

EVENT_NAME = "failover"
"""The custom event name every failover decision is dispatched under."""


def with_model_config(config: RunnableConfig, model: Any) -> RunnableConfig:
    """``config`` plus the callbacks, tags and metadata set on the failover model itself.

    They are inheritable: a usage handler given to the failover model must see the child
    model runs (which carry the usage), and a tag such as LangGraph's ``nostream`` must
    reach the runs that stream tokens. LangChain's own ``lc_versions`` stamp stays out:
    every child carries its own.
    """
    own: RunnableConfig = {}
    if model.callbacks:
        own["callbacks"] = model.callbacks
    if model.tags:
        own["tags"] = list(model.tags)
    if model.metadata and model.metadata.keys() - {"lc_versions"}:
        own["metadata"] = {k: v for k, v in model.metadata.items() if k != "lc_versions"}
    return merge_configs(config, own) if own else config


OnRetry = Callable[[fc.Sleep], Any]
OnEvent = Callable[[fc.FailoverEvent], Any]


def _ignore(_: object) -> None:
    return None


def child_run(
    config: RunnableConfig, manager: CallbackManager, run_manager: CallbackManagerForChainRun
) -> tuple[RunnableConfig, OnRetry, OnEvent]:
    """The config for each attempt (its run nested under the failover run), and the
    ``on_retry``/``on_event`` hooks reporting retries and decisions on the failover run.

    With no handler at all, nothing can see a run: the attempts get no callbacks, which
    lets a child's generation be called without the bookkeeping of one.
    """
    if not manager.handlers:
        return patch_config(config, callbacks=None), _ignore, _ignore
    children = run_manager.get_child()

    def on_retry(command: fc.Sleep) -> None:
        run_manager.on_retry(retry_state(command))

    def on_event(event: fc.FailoverEvent) -> None:
        children.on_custom_event(EVENT_NAME, event_data(event), run_id=run_manager.run_id)

    return patch_config(config, callbacks=children), on_retry, on_event


def achild_run(
    config: RunnableConfig,
    manager: AsyncCallbackManager,
    run_manager: AsyncCallbackManagerForChainRun,
) -> tuple[RunnableConfig, OnRetry, OnEvent]:
    """The async twin of :func:`child_run`."""
    if not manager.handlers:
        return patch_config(config, callbacks=None), _ignore, _ignore
    children = run_manager.get_child()

    async def on_retry(command: fc.Sleep) -> None:
        await run_manager.on_retry(retry_state(command))

    async def on_event(event: fc.FailoverEvent) -> None:
        await children.on_custom_event(EVENT_NAME, event_data(event), run_id=run_manager.run_id)

    return patch_config(config, callbacks=children), on_retry, on_event


def event_data(event: fc.FailoverEvent) -> dict[str, Any]:
    """The custom event's payload: the decision's fields and the error's text."""
    return {
        "model": event.model,
        "kind": event.kind.value,
        "status": event.status,
        "attempt": event.attempt,
        "benched": event.benched,
        "cooldown": event.benched_for.total_seconds() if event.benched_for else None,
        "until": event.until.isoformat() if event.until else None,
        "next_model": event.next_model,
        "error": f"{type(event.error).__name__}: {event.error}"[:1000],
    }


def retry_state(command: fc.Sleep) -> tenacity.RetryCallState:
    """A real tenacity ``RetryCallState`` for ``on_retry`` (tracers read its fields)."""
    return retry_call_state(command.attempt, command.error, command.seconds)


class AttemptRun(BaseCallbackHandler):
    """Watches one async attempt's chat-model run: its id once started, and whether it ended.

    langchain-core's ``agenerate`` reports nothing to callbacks when it is cancelled (its
    ``gather`` is cancelled before it can call ``on_llm_error``), so an ``ainvoke`` attempt
    cancelled midway (a hedge's loser, an attempt past its deadline, a request its caller
    cancelled) would stay open in every tracer forever. Given to that attempt alone (not
    inherited by runs inside it), this handler tells :func:`aend_cancelled` whether there
    is a run to end, and which.
    """

    run_inline = True  # told in line with the start: no thread, no reordering

    def __init__(self) -> None:
        self.run_id: UUID | None = None
        self.parent_run_id: UUID | None = None
        self.tags: list[str] = []
        self.metadata: dict[str, Any] = {}
        self.ended = False

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.run_id is None:
            self.run_id, self.parent_run_id = run_id, parent_run_id
            self.tags, self.metadata = list(tags or []), dict(metadata or {})

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        if run_id == self.run_id:
            self.ended = True

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if run_id == self.run_id:
            self.ended = True


def watched(config: RunnableConfig, watch: AttemptRun) -> RunnableConfig:
    """``config`` for one attempt, with ``watch`` among its callbacks (for that run only)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
    else:
        manager = AsyncCallbackManager(handlers=[])
        for handler in callbacks or []:
            manager.add_handler(handler)
    manager.add_handler(watch, inherit=False)
    return patch_config(config, callbacks=manager)


async def aend_cancelled(
    watch: AttemptRun, config: RunnableConfig, model: BaseChatModel, error: BaseException
) -> None:
    """End the attempt's run as an error if it started and nothing ended it.

    The error is the ``CancelledError`` itself, as langchain-core's own ``astream`` and v3
    event stream report a cancelled model run (a hedge's loser's says it lost the race).
    The handlers are found as ``agenerate`` found them: the attempt's callbacks and the
    model's own.
    """
    if watch.run_id is None or watch.ended:
        return
    watch.ended = True
    manager = AsyncCallbackManager.configure(
        config.get("callbacks"), model.callbacks, model.verbose
    )
    run = AsyncCallbackManagerForLLMRun(
        run_id=watch.run_id,
        handlers=manager.handlers,
        inheritable_handlers=manager.inheritable_handlers,
        parent_run_id=watch.parent_run_id,
        tags=watch.tags,
        metadata=watch.metadata,
    )
    await run.on_llm_error(error, response=LLMResult(generations=[]))


# A handler's exception (raise_error=True) enters a child's call through these: it is the
# caller's own, re-raised as it is (failover_core.classification.origin).
register_callback_dispatch(
    "langchain_core.callbacks.manager",
    "handle_event",
    "ahandle_event",
    "_ahandle_event_for_handler",
)
