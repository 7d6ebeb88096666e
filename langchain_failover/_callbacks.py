"""LangChain callback plumbing: child runs under the failover run, decisions as events.

Facts this relies on (langchain-core 1.x): an LLM run manager has no ``get_child()``, so
the child manager is built the way chain run managers build theirs; ``.stream()`` and
``.astream()`` call ``_stream``/``_astream`` without a run manager, so the failover model
pre-assigns its run id and rebuilds the manager from the same config; custom events reach
handlers (and ``astream_events``) only through a manager that has the handlers, with the
failover run's id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import tenacity
from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.runnables import RunnableConfig

import failover_core as fc
from failover_core._config import retry_call_state

EVENT_NAME = "failover"
"""The custom event name every failover decision is dispatched under."""

NOSTREAM = "nostream"
"""LangGraph's tag for runs whose tokens its "messages" stream mode must not repeat."""

RunManager = CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun


def _without_ls(metadata: dict[str, Any]) -> dict[str, Any]:
    # The failover run's ls_* params (ls_model_name="failover:...") must not reach children.
    return {k: v for k, v in metadata.items() if not k.startswith("ls_")}


def child_manager(run_manager: CallbackManagerForLLMRun) -> CallbackManager:
    """Callbacks for a child call: a child run of ``run_manager``'s run, tagged nostream."""
    manager = CallbackManager(handlers=[], parent_run_id=run_manager.run_id)
    manager.set_handlers(run_manager.inheritable_handlers)
    manager.add_tags(run_manager.inheritable_tags)
    manager.add_metadata(_without_ls(run_manager.inheritable_metadata))
    manager.add_tags([NOSTREAM], inherit=False)
    return manager


def achild_manager(run_manager: AsyncCallbackManagerForLLMRun) -> AsyncCallbackManager:
    """The async twin of :func:`child_manager`."""
    manager = AsyncCallbackManager(handlers=[], parent_run_id=run_manager.run_id)
    manager.set_handlers(run_manager.inheritable_handlers)
    manager.add_tags(run_manager.inheritable_tags)
    manager.add_metadata(_without_ls(run_manager.inheritable_metadata))
    manager.add_tags([NOSTREAM], inherit=False)
    return manager


@dataclass(frozen=True)
class StreamRun:
    """What ``stream()`` knows of its run, handed to ``_stream`` (which is not told)."""

    run_id: uuid.UUID
    config: RunnableConfig

    def _manager_args(self, model: Any) -> tuple[Any, ...]:
        config = self.config
        return (
            config.get("callbacks"),
            model.callbacks,
            model.verbose,
            config.get("tags"),
            model.tags,
            config.get("metadata"),
            model.metadata,
        )

    def run_manager(self, model: Any) -> CallbackManagerForLLMRun:
        """The failover run's manager as ``stream()`` built it (same handlers, same id)."""
        return CallbackManagerForLLMRun(
            **_run_args(self.run_id, CallbackManager.configure(*self._manager_args(model)))
        )

    def arun_manager(self, model: Any) -> AsyncCallbackManagerForLLMRun:
        parent = AsyncCallbackManager.configure(*self._manager_args(model))
        return AsyncCallbackManagerForLLMRun(**_run_args(self.run_id, parent))


def _run_args(run_id: uuid.UUID, parent: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "handlers": parent.handlers,
        "inheritable_handlers": parent.inheritable_handlers,
        "parent_run_id": parent.parent_run_id,
        "tags": parent.tags,
        "inheritable_tags": parent.inheritable_tags,
        "metadata": parent.metadata,
        "inheritable_metadata": parent.inheritable_metadata,
    }


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
