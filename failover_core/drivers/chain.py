"""A chain of entries and the four drivers that carry out the flow's commands.

The drivers mirror each other line for line: sync and async calls, sync and async streams.
All decisions are :class:`~failover_core.flow.engine.FailoverFlow`'s; a driver only calls,
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
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from .._errors import ChainConfigError
from ..config.policy import FailoverPolicy, get_failover_defaults
from ..flow.engine import Attempt, FailoverFlow, GiveUp, Served, Sleep
from ..health.default import get_health_registry
from ..health.registry import HealthRegistry
from ..telemetry.events import FailoverEvent, aawait_observer, run_observer
from .deadlines import AsyncStreamAttempt, StreamAttempt, acall_within, call_within
from .race import aopen_prefix, arace, open_prefix, race

__all__ = [
    "Entry",
    "FailoverChain",
    "OnEvent",
    "OnRetry",
    "Resume",
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


S = TypeVar("S")

Resume = Callable[[E, str], Callable[[], S] | None]
"""An adapter's continuation of a broken stream: given an entry and the text delivered so
far, a function opening that entry's stream continuing the text (the request's messages
plus the text as the assistant's own turn), or ``None`` when the entry (or the request)
cannot continue it. Opening is deferred, so asking costs nothing."""


def _resumed(
    flow: FailoverFlow,
    error: Exception,
    text: str,
    resume: Resume[E, S] | None,
    entries: Sequence[E],
) -> tuple[Attempt | None, Callable[[], S] | None]:
    """The flow's choice of an entry to continue ``text`` on, and its opener (or nones)."""
    if resume is None:
        return None, None
    openers: dict[int, Callable[[], S]] = {}

    def can_continue(index: int) -> bool:
        opener = resume(entries[index], text)
        if opener is not None:
            openers[index] = opener
        return opener is not None

    command = flow.resume(error, text, can_continue)
    return command, None if command is None else openers.get(command.index)


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


# -- racing hedged attempts (see race.py): an attempt, by the flow's command --------------


def _entry_call(call: Callable[[E], T], entries: Sequence[E], attempt: Attempt) -> T:
    return call(entries[attempt.index])


async def _aentry_call(
    call: Callable[[E], Awaitable[T]], entries: Sequence[E], timeout: float | None, attempt: Attempt
) -> T:
    return await acall_within(timeout, attempt.key, call(entries[attempt.index]))


def _prefix(
    policy: FailoverPolicy,
    open_stream: Callable[[E], Iterable[C]],
    commits: Callable[[C], bool] | None,
    entries: Sequence[E],
    attempt: Attempt,
) -> tuple[StreamAttempt[C], list[C], bool]:
    it = StreamAttempt[C](attempt.key, policy.first_token_timeout, policy.idle_timeout)
    return open_prefix(it, partial(open_stream, entries[attempt.index]), commits)


async def _aprefix(
    policy: FailoverPolicy,
    open_stream: Callable[[E], AsyncIterable[C]],
    commits: Callable[[C], bool] | None,
    entries: Sequence[E],
    attempt: Attempt,
) -> tuple[AsyncStreamAttempt[C], list[C], bool]:
    it = AsyncStreamAttempt[C](attempt.key, policy.first_token_timeout, policy.idle_timeout)
    return await aopen_prefix(it, partial(open_stream, entries[attempt.index]), commits)


def _close_prefix(prefix: tuple[StreamAttempt[Any], list[Any], bool]) -> None:
    prefix[0].close()


async def _aclose_prefix(prefix: tuple[AsyncStreamAttempt[Any], list[Any], bool]) -> None:
    await prefix[0].aclose()


def check_resume_keys(entries: Sequence[Entry], policy: FailoverPolicy) -> None:
    """Refuse ``resume_streams`` keys this chain does not have (a typo would leave streams
    unresumed, silently). The process default's list spans many chains: not checked."""
    keys = policy.resume_streams
    if not isinstance(keys, frozenset) or keys is get_failover_defaults().resume_streams:
        return
    unknown = sorted(keys - {e.key for e in entries})
    if unknown:
        raise ChainConfigError(
            f"resume_streams names model key(s) not in this chain: {', '.join(unknown)}; "
            f"the chain's keys are: {', '.join(e.key for e in entries)}"
        )


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
        check_resume_keys(entries, policy)
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
                hedge_after = flow.hedge_delay(streamed=False)
                try:
                    if hedge_after is not None:
                        run = partial(_entry_call, call, self.entries)
                        deliver = partial(_deliver, flow, on_event)
                        result = race(flow, command, run, hedge_after, self.policy.timeout, deliver)
                    else:
                        attempt = partial(call, self.entries[command.index])
                        result = call_within(self.policy.timeout, command.key, attempt)
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
                hedge_after = flow.hedge_delay(streamed=False)
                try:
                    if hedge_after is not None:
                        arun = partial(_aentry_call, call, self.entries, self.policy.timeout)
                        adeliver = partial(_adeliver, flow, on_event)
                        result = await arace(flow, command, arun, hedge_after, adeliver)
                    else:
                        aw = call(self.entries[command.index])
                        result = await acall_within(self.policy.timeout, command.key, aw)
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
        resume: Resume[E, Iterable[C]] | None = None,
        plain: Callable[[C], bool] | None = None,
    ) -> Iterator[tuple[C, Served]]:
        """Stream from the first entry that produces output; fail over only before that.

        Chunks for which ``commits`` is false (a role header, an empty delta) are held back
        until the first that is true, so a failure right after them still fails over.
        A failure after output raises :class:`~failover_core.StreamInterruptedError`
        carrying the text already delivered, unless the policy resumes streams, every
        chunk so far was ``plain`` text and ``resume(entry, text)`` opens a continuation on
        an entry the flow picks: then the stream goes on with that continuation's chunks
        (each yielded with a :class:`Served` naming both models).
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
            policy = self.policy
            hedge_after = flow.hedge_delay(streamed=True)
            if hedge_after is not None:
                try:
                    prefix = partial(_prefix, policy, open_stream, commits, self.entries)
                    deliver = partial(_deliver, flow, on_event)
                    it, held, ended = race(
                        flow, command, prefix, hedge_after, None, deliver, _close_prefix
                    )
                except Exception as exc:
                    command = flow.failed(exc)
                    _deliver(flow, on_event)
                    continue
                except BaseException:
                    flow.abandon()
                    raise
                break
            it = StreamAttempt[C](command.key, policy.first_token_timeout, policy.idle_timeout)
            held = []
            ended = False
            try:
                it.open(partial(open_stream, self.entries[command.index]))
                while not held or (commits is not None and not commits(held[-1])):
                    held.append(it.next())
            except StopIteration:
                ended = True  # an empty (or output-less) stream is an answer too
            except Exception as exc:
                it.close()
                command = flow.failed(exc)
                _deliver(flow, on_event)
                continue
            except BaseException:
                flow.abandon()
                it.close()
                raise
            break
        it.commit()
        served = flow.committed()
        texts: list[str] = []
        resumable = resume is not None and plain is not None
        try:
            while True:
                for chunk in held:
                    resumable = resumable and plain is not None and plain(chunk)
                    texts.append(text_of(chunk))
                    yield chunk, served
                held = []
                if ended:
                    break
                try:
                    held.append(it.next())
                    continue
                except StopIteration:
                    break
                except Exception as exc:
                    failure = exc  # continued outside this block: not the context of its errors
                it.close()
                it, held, ended = self._continue(
                    flow, failure, texts, resume if resumable else None, on_event, commits
                )
                served = flow.committed()
            flow.succeeded()  # a stream is evidence of health once it has ended
        finally:
            flow.abandon()  # a consumer that stopped early gives back any probe lease
            it.close()

    def _continue(
        self,
        flow: FailoverFlow,
        error: Exception,
        texts: list[str],
        resume: Resume[E, Iterable[C]] | None,
        on_event: OnEvent | None,
        commits: Callable[[C], bool] | None,
    ) -> tuple[StreamAttempt[C], list[C], bool]:
        """A committed stream failed with ``error``: its continuation, opened up to its
        first output (the chunks held, whether it ended), or the interruption raised."""
        while True:
            text = "".join(texts)
            command, opener = _resumed(flow, error, text, resume, self.entries)
            if command is None or opener is None:
                interrupted = flow.interrupted(error, text, len(texts))
                _deliver(flow, on_event)
                raise interrupted from error
            _deliver(flow, on_event)
            policy = self.policy
            it = StreamAttempt[C](command.key, policy.first_token_timeout, policy.idle_timeout)
            held: list[C] = []
            ended = False
            try:
                it.open(opener)
                while not held or (commits is not None and not commits(held[-1])):
                    held.append(it.next())
            except StopIteration:
                ended = True
            except Exception as exc:
                it.close()
                error = exc
                continue
            except BaseException:
                flow.abandon()
                it.close()
                raise
            it.commit()
            return it, held, ended

    async def astream(
        self,
        open_stream: Callable[[E], AsyncIterable[C]],
        text_of: Callable[[C], str],
        request: object = None,
        on_retry: OnRetry | None = None,
        on_event: OnEvent | None = None,
        commits: Callable[[C], bool] | None = None,
        resume: Resume[E, AsyncIterable[C]] | None = None,
        plain: Callable[[C], bool] | None = None,
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
            policy = self.policy
            hedge_after = flow.hedge_delay(streamed=True)
            if hedge_after is not None:
                try:
                    aprefix = partial(_aprefix, policy, open_stream, commits, self.entries)
                    adeliver = partial(_adeliver, flow, on_event)
                    it, held, ended = await arace(
                        flow, command, aprefix, hedge_after, adeliver, _aclose_prefix
                    )
                except Exception as exc:
                    command = flow.failed(exc)
                    await _adeliver(flow, on_event)
                    continue
                except BaseException:
                    flow.abandon()
                    raise
                break
            it = AsyncStreamAttempt[C](command.key, policy.first_token_timeout, policy.idle_timeout)
            held = []
            ended = False
            try:
                it.open(partial(open_stream, self.entries[command.index]))
                while not held or (commits is not None and not commits(held[-1])):
                    held.append(await it.next())
            except StopAsyncIteration:
                ended = True
            except Exception as exc:
                await it.aclose()
                command = flow.failed(exc)
                await _adeliver(flow, on_event)
                continue
            except BaseException:
                flow.abandon()
                await it.aclose()
                raise
            break
        it.commit()
        served = flow.committed()
        texts: list[str] = []
        resumable = resume is not None and plain is not None
        try:
            while True:
                for chunk in held:
                    resumable = resumable and plain is not None and plain(chunk)
                    texts.append(text_of(chunk))
                    yield chunk, served
                held = []
                if ended:
                    break
                try:
                    held.append(await it.next())
                    continue
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    failure = exc  # continued outside this block: not the context of its errors
                await it.aclose()
                it, held, ended = await self._acontinue(
                    flow, failure, texts, resume if resumable else None, on_event, commits
                )
                served = flow.committed()
            flow.succeeded()  # a stream is evidence of health once it has ended
        finally:
            flow.abandon()  # a consumer that stopped early gives back any probe lease
            await it.aclose()

    async def _acontinue(
        self,
        flow: FailoverFlow,
        error: Exception,
        texts: list[str],
        resume: Resume[E, AsyncIterable[C]] | None,
        on_event: OnEvent | None,
        commits: Callable[[C], bool] | None,
    ) -> tuple[AsyncStreamAttempt[C], list[C], bool]:
        """The async twin of :meth:`_continue`."""
        while True:
            text = "".join(texts)
            command, opener = _resumed(flow, error, text, resume, self.entries)
            if command is None or opener is None:
                interrupted = flow.interrupted(error, text, len(texts))
                await _adeliver(flow, on_event)
                raise interrupted from error
            await _adeliver(flow, on_event)
            policy = self.policy
            it = AsyncStreamAttempt[C](command.key, policy.first_token_timeout, policy.idle_timeout)
            held: list[C] = []
            ended = False
            try:
                it.open(opener)
                while not held or (commits is not None and not commits(held[-1])):
                    held.append(await it.next())
            except StopAsyncIteration:
                ended = True
            except Exception as exc:
                await it.aclose()
                error = exc
                continue
            except BaseException:
                flow.abandon()
                await it.aclose()
                raise
            it.commit()
            return it, held, ended
