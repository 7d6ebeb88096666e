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

import inspect
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import Any, cast
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
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import (
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    merge_configs,
    patch_config,
)
from langchain_core.tracers.context import _configure_hooks
from langchain_core.tracers.core import _TracerCore

import failover_core as fc
from failover_core.classification.origin import register_callback_dispatch
from failover_core.config.policy import retry_call_state
from failover_core.drivers.abandon import AttemptScope

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
        data = event_data(event)
        record_on_tracers(run_manager, data)
        children.on_custom_event(EVENT_NAME, data, run_id=run_manager.run_id)

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
        data = event_data(event)
        record_on_tracers(run_manager, data)
        await children.on_custom_event(EVENT_NAME, data, run_id=run_manager.run_id)

    return patch_config(config, callbacks=children), on_retry, on_event


def event_data(event: fc.FailoverEvent) -> dict[str, Any]:
    """The custom event's payload: the decision's fields and the error's text."""
    return {
        "reason": event.reason,
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


def record_on_tracers(
    run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun,
    data: dict[str, Any],
) -> None:
    """Record a decision on the failover run where tracers keep it: an event in the run's
    ``events`` (as ``on_retry`` records a retry) and its reason in the run's metadata
    (``failover_decisions``), both sent to LangSmith with the run's end. Tracers have no
    ``on_custom_event`` (LangSmith's ``LangChainTracer`` drops custom events)."""
    key = str(run_manager.run_id)
    for handler in run_manager.handlers:
        run = getattr(handler, "run_map", {}).get(key) if isinstance(handler, _TracerCore) else None
        if run is None:
            continue
        run.events.append({"name": EVENT_NAME, "time": datetime.now(timezone.utc), "kwargs": data})
        metadata = run.extra.setdefault("metadata", {})
        metadata.setdefault("failover_decisions", []).append(data["reason"])


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

    def to_end(self) -> UUID | None:
        """The run to end now (marked ended), or ``None``: not started, or already over."""
        if self.run_id is None or self.ended:
            return None
        self.ended = True
        return self.run_id

    def run_of(self, manager: BaseCallbackManager) -> dict[str, Any]:
        """What a run manager for the watched run needs, with ``manager``'s handlers."""
        return {
            "run_id": self.run_id,
            "handlers": manager.handlers,
            "inheritable_handlers": manager.inheritable_handlers,
            "parent_run_id": self.parent_run_id,
            "tags": self.tags,
            "metadata": self.metadata,
        }

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
    if watch.to_end() is None:
        return
    manager = AsyncCallbackManager.configure(
        config.get("callbacks"), model.callbacks, model.verbose
    )
    run = AsyncCallbackManagerForLLMRun(**watch.run_of(manager))
    await run.on_llm_error(error, response=LLMResult(generations=[]))


# -- abandoned sync attempts -----------------------------------------------------------
#
# A sync attempt abandoned by its driver (past its deadline, a hedge's loser) runs on in
# its worker thread. At the moment it is abandoned, its run is ended as an error saying
# why, and from then on nothing it reports reaches the caller's handlers: they are given
# to the attempt as gated views (same state, same class for ``isinstance``, each callback
# dropped once the gate closes).


class _Gate:
    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = True


def _gated_method(original: Any) -> Any:
    """``original``, called only while the view's gate is open."""
    if inspect.iscoroutinefunction(original):

        async def amethod(self: Any, *args: Any, **kwargs: Any) -> Any:
            if self._failover_gate.open:
                return await original(self, *args, **kwargs)
            return None

        return amethod

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._failover_gate.open:
            return original(self, *args, **kwargs)
        return None

    return method


_view_classes: dict[type, type] = {}  # a handler class -> its gated view class, made once


def _view_class(base: type) -> type:
    """``base`` with every ``on_*`` callback gated, and a slot for the gate (the view's
    ``__dict__`` is the handler's own, shared by every attempt, so the gate is not in it)."""
    view_class = _view_classes.get(base)
    if view_class is None:
        names = [n for n in dir(base) if n.startswith("on_") and callable(getattr(base, n))]
        namespace: dict[str, Any] = {n: _gated_method(getattr(base, n)) for n in names}
        namespace["__module__"] = base.__module__
        namespace["__slots__"] = ("_failover_gate",)
        view_class = _view_classes.setdefault(base, type(base.__name__, (base,), namespace))
    return view_class


def _gated_view(handler: BaseCallbackHandler, gate: _Gate) -> BaseCallbackHandler:
    """``handler`` as an attempt sees it: the same object state (a tracer's run map, a
    usage counter's totals) and class, its callbacks dropped once ``gate`` closes. A
    handler that cannot be viewed so (slots, a metaclass) is given as it is."""
    try:
        view: Any = object.__new__(_view_class(type(handler)))
        object.__setattr__(view, "__dict__", handler.__dict__)
        object.__setattr__(view, "_failover_gate", gate)
    except Exception:  # any handler class we cannot mirror stays as it is
        return handler
    return cast(BaseCallbackHandler, view)


def guarded(config: RunnableConfig, scope: AttemptScope, model: BaseChatModel) -> RunnableConfig:
    """``config`` for a sync attempt its driver may abandon (``scope``): when it is, the
    attempt's run ends at once as an error with the driver's reason, and its handlers
    hear nothing more from it."""
    callbacks = config.get("callbacks")
    if not isinstance(callbacks, BaseCallbackManager) or not callbacks.handlers:
        return config
    gate, watch = _Gate(), AttemptRun()
    views = {id(h): _gated_view(h, gate) for h in callbacks.handlers}
    views.update(
        (id(h), _gated_view(h, gate)) for h in callbacks.inheritable_handlers if id(h) not in views
    )
    manager = callbacks.copy()
    manager.handlers = [views[id(h)] for h in callbacks.handlers]
    manager.inheritable_handlers = [views[id(h)] for h in callbacks.inheritable_handlers]
    manager.add_handler(watch, inherit=False)
    scope.on_abandon(partial(_end_abandoned, watch, gate, callbacks, model))
    # Handlers registered by context (get_usage_metadata_callback(), tracing_v2_enabled())
    # are among the views already; the child's own configure must not add the originals
    # again. This runs inside the attempt, in its worker's own copy of the context.
    for var, *_ in _configure_hooks:
        if var.get() is not None:
            var.set(None)
    return patch_config(config, callbacks=manager)


def _end_abandoned(
    watch: AttemptRun,
    gate: _Gate,
    callbacks: BaseCallbackManager,
    model: BaseChatModel,
    error: BaseException,
) -> None:
    gate.open = False
    if watch.to_end() is None:
        return
    manager = CallbackManager.configure(callbacks, model.callbacks, model.verbose)
    run = CallbackManagerForLLMRun(**watch.run_of(manager))
    run.on_llm_error(error, response=LLMResult(generations=[]))


# A handler's exception (raise_error=True) enters a child's call through these: it is the
# caller's own, re-raised as it is (failover_core.classification.origin).
register_callback_dispatch(
    "langchain_core.callbacks.manager",
    "handle_event",
    "ahandle_event",
    "_ahandle_event_for_handler",
)


def start_router_run(
    config: RunnableConfig, input: Any, name: str
) -> tuple[CallbackManager, CallbackManagerForChainRun]:
    """The failover model's own run: a chain run (a router, as ``with_fallbacks``), named
    as the caller asked (``run_name``), under the ``run_id`` the caller chose."""
    manager = get_callback_manager_for_config(config)
    run_manager = manager.on_chain_start(
        None, input, name=config.get("run_name") or name, run_id=config.pop("run_id", None)
    )
    return manager, run_manager


async def astart_router_run(
    config: RunnableConfig, input: Any, name: str
) -> tuple[AsyncCallbackManager, AsyncCallbackManagerForChainRun]:
    """The async twin of :func:`start_router_run`."""
    manager = get_async_callback_manager_for_config(config)
    run_manager = await manager.on_chain_start(
        None, input, name=config.get("run_name") or name, run_id=config.pop("run_id", None)
    )
    return manager, run_manager
