"""Where an exception came from: the provider call, or the caller's own code.

Only an error that comes from the provider call (raised by the SDK or the HTTP layer for
that request, or chained from one) says anything about a model's health. An exception
raised by the caller's own code during the call (a callback handler with
``raise_error=True``, a tool, the caller's parsing) is re-raised as it is: it benches
nothing and no other model is tried, since the next model would meet the same handler.

A framework's callback dispatcher is where a handler's exception enters the model call
(LangChain's ``handle_event``, LlamaIndex's ``CallbackManager.on_event_start``): the
adapters register those functions, and an exception whose traceback passes through one
was raised by a handler. Code that knows better can mark an exception itself.
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["caller_raised", "mark_caller_error", "register_callback_dispatch"]

_MARK = "__llm_failover_caller__"
_MAX_FRAMES = 200
_lock = threading.Lock()
_dispatchers: frozenset[tuple[str, str]] = frozenset()


def register_callback_dispatch(module: str, *functions: str) -> None:
    """Functions of ``module`` that call the caller's handlers and let their exceptions
    through: an exception raised inside one is the caller's."""
    global _dispatchers
    with _lock:
        _dispatchers = _dispatchers | {(module, name) for name in functions}


def mark_caller_error(exc: BaseException) -> BaseException:
    """Mark ``exc`` as raised by the caller's own code; returns it."""
    with contextlib.suppress(AttributeError, TypeError):  # __slots__: its frames still tell
        setattr(exc, _MARK, True)
    return exc


def caller_raised(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by the caller's own code (marked, or raised inside a
    registered callback dispatcher), not by the provider call."""
    if getattr(exc, _MARK, False) is True:
        return True
    dispatchers = _dispatchers
    if not dispatchers:
        return False
    tb = exc.__traceback__
    frames = 0
    while tb is not None and frames < _MAX_FRAMES:
        code = tb.tb_frame.f_code
        module = tb.tb_frame.f_globals.get("__name__")
        if (module, code.co_name) in dispatchers:
            return True
        tb, frames = tb.tb_next, frames + 1
    return False
