"""Abandoned attempts: the moment a sync driver walks away from an attempt, and why.

A blocking call cannot be interrupted in place: a sync attempt past its deadline, or a
hedge's loser, goes on running on its worker thread after the request has moved on. What
it does afterwards must not reach the caller (an open trace run, tokens streamed after
the winner's, a phantom tool call in an agent). The drivers therefore give each attempt
they run on a worker an :class:`AttemptScope`, visible inside the attempt as
:func:`current_attempt`, and call :meth:`AttemptScope.abandon` at the moment they walk
away, with the error that says why: an :class:`~failover_core.AttemptTimeoutError` at a
deadline, a ``CancelledError("lost a hedged race to <key>")`` for a hedge's loser (the
error the async drivers cancel a loser with).

An adapter reads :func:`current_attempt` when it starts the child's call (inside the
attempt, on the worker) and registers :meth:`AttemptScope.on_abandon`: there it ends the
child's run/span as an error with that reason and silences whatever the child reports
afterwards. Hooks run once, on the thread that abandons (the caller's), before the driver
moves on; a hook registered after the abandonment runs at once. Async attempts need none
of this: they are cancelled, and cancellation ends them where they stand.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable

__all__ = ["AttemptScope", "current_attempt", "scoped_context"]

logger = logging.getLogger("failover_core")

AbandonHook = Callable[[BaseException], object]

_current: contextvars.ContextVar[AttemptScope | None] = contextvars.ContextVar(
    "failover_attempt", default=None
)


class AttemptScope:
    """One sync attempt run on a worker thread, which its driver may abandon."""

    __slots__ = ("_hooks", "_lock", "reason")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[AbandonHook] = []
        self.reason: BaseException | None = None
        """Why the attempt was abandoned (``None`` while it is not)."""

    @property
    def abandoned(self) -> bool:
        return self.reason is not None

    def on_abandon(self, hook: AbandonHook) -> None:
        """Call ``hook(reason)`` when the attempt is abandoned (at once if it already is)."""
        with self._lock:
            reason = self.reason
            if reason is None:
                self._hooks.append(hook)
                return
        _call(hook, reason)

    def abandon(self, reason: BaseException) -> None:
        """The driver walks away: run the hooks (once) with ``reason``."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            _call(hook, reason)


def _call(hook: AbandonHook, reason: BaseException) -> None:
    try:
        hook(reason)
    except Exception:  # an adapter's cleanup must not break the request it leaves
        logger.warning("failover: an abandoned attempt's hook raised", exc_info=True)


def current_attempt() -> AttemptScope | None:
    """The scope of the sync attempt running here, when a driver runs it on a worker."""
    return _current.get()


def scoped_context(scope: AttemptScope) -> contextvars.Context:
    """A copy of the caller's context in which :func:`current_attempt` is ``scope``."""
    ctx = contextvars.copy_context()
    ctx.run(_current.set, scope)
    return ctx
