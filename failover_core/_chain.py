"""A chain of entries and the four drivers that carry out the flow's commands.

The drivers mirror each other line for line: sync and async calls, sync and async streams.
All decisions are :class:`~failover_core._flow.FailoverFlow`'s; a driver only calls,
sleeps, and raises.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, Generic, Protocol, TypeVar

from ._config import FailoverPolicy
from ._errors import ChainConfigError
from ._events import FailoverEvent, aawait_observer, run_observer
from ._flow import Attempt, FailoverFlow, GiveUp, Served, Sleep
from ._health import HealthRegistry, get_health_registry

__all__ = [
    "Entry",
    "FailoverChain",
    "OnEvent",
    "OnRetry",
    "build_entries",
    "check_unique_keys",
]

T = TypeVar("T")
C = TypeVar("C")
M = TypeVar("M")
E = TypeVar("E", bound="Entry")


class Entry(Protocol):
    """What the core needs of a chain member: its health key. Adapters say how to call it."""

    @property
    def key(self) -> str: ...


def build_entries(
    models: Sequence[M] | Mapping[str, M],
    *,
    model_type: type,
    what: str,
    key_of: Callable[[M], str],
    make: Callable[[str, M], E],
    nested: Callable[[M], Sequence[E] | None],
) -> list[E]:
    """An adapter's entries for ``models``: a list (keys from ``key_of``) or a dict of keys.

    A model for which ``nested`` returns entries (a failover model itself) is spliced in,
    so keys and cooldowns stay flat, as in the seed. ``what`` names the models in errors.
    """
    if isinstance(models, Mapping):
        items: list[tuple[str | None, M]] = list(models.items())
    elif isinstance(models, Sequence) and not isinstance(models, str):
        items = [(None, model) for model in models]
    else:
        raise TypeError(f"expected a list or a dict of {what}, got {models!r}")
    out: list[E] = []
    for key, model in items:
        if not isinstance(model, model_type):
            raise TypeError(f"expected {what}, got {model!r}")
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ChainConfigError(f"a model key must be a non-empty string, got {key!r}")
        inner = nested(model)
        if inner is not None:
            out.extend(inner)
        else:
            out.append(make(key.strip() if key is not None else key_of(model), model))
    return out


def check_unique_keys(entries: Sequence[Entry]) -> None:
    """Refuse an empty chain or one naming a key twice (they would share one bench)."""
    if not entries:
        raise ChainConfigError("a failover chain needs at least one model")
    seen: set[str] = set()
    dupes: list[str] = []
    for entry in entries:
        if entry.key in seen and entry.key not in dupes:
            dupes.append(entry.key)
        seen.add(entry.key)
    if dupes:
        raise ChainConfigError(
            f"duplicate model key(s) in one chain: {', '.join(dupes)}; "
            "give distinct keys with a dict, e.g. {'openai/gpt-4o#a': model_a, ...}"
        )


def _close(it: object) -> None:
    close = getattr(it, "close", None)
    if callable(close):
        close()


async def _aclose(it: object) -> None:
    aclose = getattr(it, "aclose", None)
    if callable(aclose):
        await aclose()


OnRetry = Callable[[Sleep], object]
"""Called before each backoff sleep (an adapter reports retries to its framework)."""
OnEvent = Callable[[FailoverEvent], object]
"""Called with each decision after the observer saw it (an adapter forwards it)."""


def _deliver(flow: FailoverFlow, on_event: OnEvent | None) -> None:
    for observer, pending in flow.drain_observer_calls():
        run_observer(observer, pending)
    for event in flow.drain():
        if on_event is not None:
            on_event(event)


async def _adeliver(flow: FailoverFlow, on_event: OnEvent | None) -> None:
    for observer, pending in flow.drain_observer_calls():
        await aawait_observer(observer, pending)
    for event in flow.drain():
        if on_event is not None:
            result = on_event(event)
            if inspect.isawaitable(result):
                await result


async def _anotify_retry(on_retry: OnRetry | None, command: Sleep) -> None:
    if on_retry is not None:
        result = on_retry(command)
        if inspect.isawaitable(result):
            await result


class FailoverChain(Generic[E]):
    """Ordered entries plus a policy and a registry; runs requests through the flow.

    ``sleep``/``asleep`` are injectable so tests (and users' tests) never wait for real.
    """

    def __init__(
        self,
        entries: Sequence[E],
        policy: FailoverPolicy,
        registry: HealthRegistry | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        check_unique_keys(entries)
        if registry is not None and not isinstance(registry, HealthRegistry):
            raise TypeError(f"registry must be a HealthRegistry, got {registry!r}")
        self.entries: tuple[E, ...] = tuple(entries)
        self.policy = policy
        self._registry = registry
        self.sleep = sleep
        self.asleep = asleep

    @property
    def registry(self) -> HealthRegistry:
        """The registry given, or the process-wide one as it is now."""
        return self._registry if self._registry is not None else get_health_registry()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.entries)

    def flow(self, request: object = None) -> FailoverFlow:
        return FailoverFlow(self.keys, self.policy, self.registry, request)

    # -- request/response ---------------------------------------------------------------

    def invoke(
        self,
        call: Callable[[E], T],
        request: object = None,
        on_retry: OnRetry | None = None,
        on_event: OnEvent | None = None,
    ) -> tuple[T, Served]:
        """Call entries in order per the flow; return the first result and who served it."""
        flow = self.flow(request)
        command: Attempt | Sleep | GiveUp = flow.start()
        while True:
            if isinstance(command, Attempt):
                try:
                    result = call(self.entries[command.index])
                except Exception as exc:
                    command = flow.failed(exc)
                    _deliver(flow, on_event)
                    continue
                except BaseException:
                    flow.abandon()
                    raise
                return result, flow.succeeded()
            if isinstance(command, Sleep):
                if on_retry is not None:
                    on_retry(command)
                self.sleep(command.seconds)
                command = flow.slept()
                _deliver(flow, on_event)
                continue
            raise command.error

    async def ainvoke(
        self,
        call: Callable[[E], Awaitable[T]],
        request: object = None,
        on_retry: OnRetry | None = None,
        on_event: OnEvent | None = None,
    ) -> tuple[T, Served]:
        """The async twin of :meth:`invoke`; cancellation propagates at once.

        ``on_retry`` and ``on_event`` may be coroutine functions here.
        """
        flow = self.flow(request)
        await self.registry.prepare(self.keys)  # a probe lease, claimed off the loop
        command: Attempt | Sleep | GiveUp = flow.start()
        while True:
            if isinstance(command, Attempt):
                try:
                    result = await call(self.entries[command.index])
                except Exception as exc:
                    command = flow.failed(exc)
                    await _adeliver(flow, on_event)
                    continue
                except BaseException:
                    flow.abandon()
                    raise
                return result, flow.succeeded()
            if isinstance(command, Sleep):
                await _anotify_retry(on_retry, command)
                await self.asleep(command.seconds)
                command = flow.slept()
                await _adeliver(flow, on_event)
                continue
            raise command.error

    # -- streaming ----------------------------------------------------------------------

    def stream(
        self,
        open_stream: Callable[[E], Iterable[C]],
        text_of: Callable[[C], str],
        request: object = None,
        on_retry: OnRetry | None = None,
        on_event: OnEvent | None = None,
        commits: Callable[[C], bool] | None = None,
    ) -> Iterator[tuple[C, Served]]:
        """Stream from the first entry that produces output; fail over only before that.

        Chunks for which ``commits`` is false (a role header, an empty delta) are held back
        until the first that is true, so a failure right after them still fails over.
        A failure after output raises :class:`~failover_core.StreamInterruptedError`
        carrying the text already delivered.
        """
        flow = self.flow(request)
        command: Attempt | Sleep | GiveUp = flow.start()
        while True:
            if isinstance(command, Sleep):
                if on_retry is not None:
                    on_retry(command)
                self.sleep(command.seconds)
                command = flow.slept()
                _deliver(flow, on_event)
                continue
            if isinstance(command, GiveUp):
                raise command.error
            it: Iterator[C] | None = None
            held: list[C] = []
            ended = False
            try:
                it = iter(open_stream(self.entries[command.index]))
                while not held or (commits is not None and not commits(held[-1])):
                    held.append(next(it))
            except StopIteration:
                ended = True  # an empty (or output-less) stream is an answer too
            except Exception as exc:
                _close(it)
                command = flow.failed(exc)
                _deliver(flow, on_event)
                continue
            except BaseException:
                flow.abandon()
                _close(it)
                raise
            break
        served = flow.committed()
        texts = [text_of(chunk) for chunk in held]
        try:
            for chunk in held:
                yield chunk, served
            while it is not None and not ended:
                try:
                    chunk = next(it)
                except StopIteration:
                    break
                except Exception as exc:
                    error = flow.interrupted(exc, "".join(texts), len(texts))
                    _deliver(flow, on_event)
                    raise error from exc
                texts.append(text_of(chunk))
                yield chunk, served
            flow.succeeded()  # a stream is evidence of health once it has ended
        finally:
            flow.abandon()  # a consumer that stopped early gives back any probe lease
            _close(it)

    async def astream(
        self,
        open_stream: Callable[[E], AsyncIterable[C]],
        text_of: Callable[[C], str],
        request: object = None,
        on_retry: OnRetry | None = None,
        on_event: OnEvent | None = None,
        commits: Callable[[C], bool] | None = None,
    ) -> AsyncIterator[tuple[C, Served]]:
        """The async twin of :meth:`stream`."""
        flow = self.flow(request)
        await self.registry.prepare(self.keys)  # a probe lease, claimed off the loop
        command: Attempt | Sleep | GiveUp = flow.start()
        while True:
            if isinstance(command, Sleep):
                await _anotify_retry(on_retry, command)
                await self.asleep(command.seconds)
                command = flow.slept()
                await _adeliver(flow, on_event)
                continue
            if isinstance(command, GiveUp):
                raise command.error
            it: AsyncIterator[C] | None = None
            held: list[C] = []
            ended = False
            try:
                it = aiter(open_stream(self.entries[command.index]))
                while not held or (commits is not None and not commits(held[-1])):
                    held.append(await anext(it))
            except StopAsyncIteration:
                ended = True
            except Exception as exc:
                await _aclose(it)
                command = flow.failed(exc)
                await _adeliver(flow, on_event)
                continue
            except BaseException:
                flow.abandon()
                await _aclose(it)
                raise
            break
        served = flow.committed()
        texts = [text_of(chunk) for chunk in held]
        try:
            for chunk in held:
                yield chunk, served
            while it is not None and not ended:
                try:
                    chunk = await anext(it)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    error = flow.interrupted(exc, "".join(texts), len(texts))
                    await _adeliver(flow, on_event)
                    raise error from exc
                texts.append(text_of(chunk))
                yield chunk, served
            flow.succeeded()  # a stream is evidence of health once it has ended
        finally:
            flow.abandon()  # a consumer that stopped early gives back any probe lease
            await _aclose(it)
