"""The failover LLM's own span: a router's span, not a model's, and one that lasts.

LlamaIndex wraps an LLM's methods in spans whose handlers are told the instance; tracers
such as OpenInference then mark the span as an LLM call, so a trace would show two LLM
calls for one. These decorators open the same kind of span (``FailoverLLM.chat-<uuid>``)
without the instance, so it reads as a chain holding the children's LLM calls.

A stream's span lasts until the stream ends: LlamaIndex would close it when the method
returns the generator, and the children, opened later by the generator's steps, would
start traces of their own. So each step runs with the span active, and the span's enter
and exit run in a private copy of the caller's context (handlers attach their own
context there, and it never leaks into the caller's).
"""

from __future__ import annotations

import functools
import inspect
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import Token, copy_context
from typing import Any, TypeVar, cast

from llama_index_instrumentation import get_dispatcher
from llama_index_instrumentation.dispatcher import (
    DISPATCHER_SPAN_DECORATED_ATTR,
    active_instrument_tags,
)
from llama_index_instrumentation.events.span import SpanDropEvent
from llama_index_instrumentation.span import active_span_id

__all__ = ["router_span", "stream_span", "astream_span"]

dispatcher = get_dispatcher("llamaindex_failover.llms")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _signature(func: Callable[..., Any]) -> inspect.Signature:
    """``func``'s signature without ``self`` (what LlamaIndex's spans report as arguments)."""
    sig = inspect.signature(func)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


def _mark(wrapper: Any) -> None:
    # LlamaIndex's span mixin wraps LLM methods again unless they say they are spans.
    setattr(wrapper, DISPATCHER_SPAN_DECORATED_ATTR, True)


def _enter(id_: str, bound: inspect.BoundArguments) -> Token[str | None]:
    token = active_span_id.set(id_)
    parent = None if token.old_value is Token.MISSING else token.old_value
    dispatcher.span_enter(
        id_=id_,
        bound_args=bound,
        instance=None,
        parent_id=parent,
        tags=active_instrument_tags.get(),
    )
    return token


def _drop(id_: str, bound: inspect.BoundArguments, err: BaseException) -> None:
    dispatcher.event(SpanDropEvent(span_id=id_, err_str=str(err)))
    dispatcher.span_drop(id_=id_, bound_args=bound, instance=None, err=err)


def router_span(func: F) -> F:
    """A span around a call (sync or async) that reads as the router it is."""
    sig = _signature(func)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(self: object, *args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            id_ = f"{type(self).__name__}.{func.__name__}-{uuid.uuid4()}"
            token = _enter(id_, bound)
            try:
                result = await func(self, *args, **kwargs)
            except BaseException as exc:
                _drop(id_, bound, exc)
                raise
            finally:
                active_span_id.reset(token)
            dispatcher.span_exit(id_=id_, bound_args=bound, instance=None, result=result)
            return result

        _mark(async_wrapper)
        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(self: object, *args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        id_ = f"{type(self).__name__}.{func.__name__}-{uuid.uuid4()}"
        token = _enter(id_, bound)
        try:
            result = func(self, *args, **kwargs)
        except BaseException as exc:
            _drop(id_, bound, exc)
            raise
        finally:
            active_span_id.reset(token)
        dispatcher.span_exit(id_=id_, bound_args=bound, instance=None, result=result)
        return result

    _mark(wrapper)
    return cast(F, wrapper)


class _StreamSpan:
    """One stream's span: entered now, exited (or dropped) once when the stream ends."""

    def __init__(self, owner: object, name: str, bound: inspect.BoundArguments) -> None:
        self.id = f"{type(owner).__name__}.{name}-{uuid.uuid4()}"
        self._bound = bound
        self._open = True
        self._context = copy_context()
        self._context.run(_enter, self.id, bound)

    def close(self, err: BaseException | None = None) -> None:
        if not self._open:
            return
        self._open = False
        if err is None:
            self._context.run(
                dispatcher.span_exit, id_=self.id, bound_args=self._bound, instance=None
            )
        else:
            self._context.run(_drop, self.id, self._bound, err)

    def steps(self, it: Iterator[T]) -> Iterator[T]:
        error: BaseException | None = None
        try:
            while True:
                token = active_span_id.set(self.id)
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    active_span_id.reset(token)
                yield item
        except GeneratorExit:
            raise  # the consumer stopped early: the span ends without an error
        except BaseException as exc:
            error = exc
            raise
        finally:
            token = active_span_id.set(self.id)
            try:
                getattr(it, "close", lambda: None)()
            finally:
                active_span_id.reset(token)
                self.close(error)

    async def asteps(self, it: AsyncIterator[T]) -> AsyncIterator[T]:
        error: BaseException | None = None
        try:
            while True:
                token = active_span_id.set(self.id)
                try:
                    item = await anext(it)
                except StopAsyncIteration:
                    return
                finally:
                    active_span_id.reset(token)
                yield item
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            token = active_span_id.set(self.id)
            try:
                aclose = getattr(it, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                active_span_id.reset(token)
                self.close(error)


def stream_span(func: F) -> F:
    """A span from the call to the end of the stream it returns, every step inside it."""
    sig = _signature(func)

    @functools.wraps(func)
    def wrapper(self: object, *args: Any, **kwargs: Any) -> Iterator[Any]:
        span = _StreamSpan(self, func.__name__, sig.bind(*args, **kwargs))
        token = active_span_id.set(span.id)
        try:
            it = func(self, *args, **kwargs)
        except BaseException as exc:
            span.close(exc)
            raise
        finally:
            active_span_id.reset(token)
        steps = span.steps(it)
        weakref.finalize(steps, span.close)  # a stream dropped unread still ends its span
        return steps

    _mark(wrapper)
    return cast(F, wrapper)


def astream_span(func: F) -> F:
    """The async twin of :func:`stream_span` (``await llm.astream_chat(...)``)."""
    sig = _signature(func)

    @functools.wraps(func)
    async def wrapper(self: object, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        span = _StreamSpan(self, func.__name__, sig.bind(*args, **kwargs))
        token = active_span_id.set(span.id)
        try:
            it = await func(self, *args, **kwargs)
        except BaseException as exc:
            span.close(exc)
            raise
        finally:
            active_span_id.reset(token)
        steps = span.asteps(it)
        weakref.finalize(steps, span.close)
        return steps

    _mark(wrapper)
    return cast(F, wrapper)
