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
from typing import Any, Generic, Protocol, TypeVar, cast

from .._errors import ChainConfigError, StreamInterruptedError
from ..classification.origin import caller_raised
from ..config.model_kinds import is_reasoning_model
from ..config.options import not_a_model
from ..config.policy import FailoverPolicy, get_failover_defaults
from ..flow.engine import Attempt, FailoverFlow, GiveUp, Served, Sleep
from ..health.default import get_health_registry
from ..health.registry import HealthRegistry
from ..pool.pool import Pool, PoolGroup
from ..telemetry.events import FailoverEvent, aawait_observer, run_observer
from .deadlines import AsyncStreamAttempt, StreamAttempt, acall_within, call_within
from .lanes import as_hedge
from .race import aopen_prefix, arace, open_prefix, race

__all__ = [
    "Entry",
    "FailoverChain",
    "OnEvent",
    "OnRetry",
    "Resume",
    "build_entries",
    "check_models",
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


def check_models(
    models: object, *, model_type: type, what: str, name: str = "models", specs: str | None = None
) -> list[tuple[str | None, Any]]:
    """``models`` as (key or None, model) pairs, or a :class:`TypeError` naming the culprit.

    ``what`` names the models expected, ``name`` the option (``models``, ``llms``) and
    ``specs`` the way to build a chain from model names (``FailoverChatModel.from_specs``).
    """
    if isinstance(models, str):
        raise not_a_model(f"a list or a dict of {what}", name, models, specs)
    if isinstance(models, Mapping):
        items: list[tuple[str | None, Any]] = list(models.items())
        where = [f"{name}[{key!r}]" for key in models]
    elif isinstance(models, Sequence):
        items = [(None, model) for model in models]
        where = [f"{name}[{i}]" for i in range(len(items))]
    else:
        raise TypeError(f"expected a list or a dict of {what}; {name} is {models!r}")
    for (_, model), place in zip(items, where, strict=True):
        if not isinstance(model, (model_type, Pool)):  # a pool's members are checked as built
            raise not_a_model(what, place, model, specs)
    return items


def build_entries(
    models: Sequence[M | Pool] | Mapping[str, M | Pool],
    *,
    model_type: type,
    what: str,
    key_of: Callable[[M], str],
    make: Callable[[str, M], E],
    nested: Callable[[M], Sequence[E] | FailoverChain[E] | None],
    pools: list[PoolGroup] | None = None,
    pooled: Callable[[M], M] | None = None,
    name: str = "models",
    specs: str | None = None,
) -> list[E]:
    """An adapter's entries for ``models``: a list (keys from ``key_of``) or a dict of keys.

    A model for which ``nested`` returns entries (a failover model itself) is spliced in,
    so keys and cooldowns stay flat, as in the seed. ``what``, ``name`` and ``specs`` word
    the error for a member that is not a model (see :func:`check_models`).
    A :class:`~failover_core.Pool` becomes one entry per member, keyed by the pool's own
    keys or ``key_of(member)#n``; each pool is appended to ``pools`` (give a list whenever
    ``models`` may hold one), and ``pooled`` may adapt each member (an adapter turns on
    response headers so the pool reads rate limits).
    """
    items = check_models(models, model_type=model_type, what=what, name=name, specs=specs)
    out: list[E] = []
    for key, model in items:
        if isinstance(model, Pool):
            group = _pool_entries(key, model, model_type, what, key_of, make, nested, pooled)
            out.extend(group[0])
            if pools is None:
                raise ChainConfigError("this chain does not take pools")
            pools.append(group[1])
            continue
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ChainConfigError(f"a model key must be a non-empty string, got {key!r}")
        inner = nested(model)
        if isinstance(inner, FailoverChain):
            if inner.pools and pools is None:
                raise ChainConfigError("this chain does not take pools")
            if pools is not None:
                pools.extend(inner.pools)
            inner = inner.entries
        if inner is not None:
            out.extend(inner)
        else:
            out.append(make(key.strip() if key is not None else key_of(model), model))
    return out


def _pool_entries(
    key: str | None,
    pool: Pool,
    model_type: type,
    what: str,
    key_of: Callable[[M], str],
    make: Callable[[str, M], E],
    nested: Callable[[M], Sequence[E] | FailoverChain[E] | None],
    pooled: Callable[[M], M] | None,
) -> tuple[list[E], PoolGroup]:
    """A pool's member entries: its keys, or ``key_of(member)#n`` (``key#n`` when the pool
    itself is keyed in a dict)."""
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ChainConfigError(f"a model key must be a non-empty string, got {key!r}")
    entries: list[E] = []
    members = cast(tuple[tuple[str | None, M], ...], pool.members)
    for n, (own, member) in enumerate(members, start=1):
        if not isinstance(member, model_type):
            raise TypeError(f"expected {what} in a pool, got {member!r}")
        if nested(member) is not None:
            raise ChainConfigError("a failover model cannot be a pool member; pool its models")
        if own is None:
            own = f"{key.strip() if key is not None else key_of(member)}#{n}"
        entries.append(make(own, pooled(member) if pooled is not None else member))
    return entries, PoolGroup(tuple(e.key for e in entries), pool)


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


def _check_pools(keys: Sequence[str], pools: Sequence[PoolGroup]) -> None:
    """Each pool's members are consecutive entries of the chain, each in one pool."""
    seen: set[str] = set()
    for group in pools:
        if not isinstance(group, PoolGroup) or not group.keys:
            raise TypeError(f"expected a PoolGroup with members, got {group!r}")
        first = keys.index(group.keys[0]) if group.keys[0] in keys else -1
        if first < 0 or tuple(keys[first : first + len(group.keys)]) != group.keys:
            raise ChainConfigError(f"pool members {group.keys} are not consecutive entries")
        if seen & set(group.keys):
            raise ChainConfigError(f"a model is in two pools: {sorted(seen & set(group.keys))}")
        seen.update(group.keys)


S = TypeVar("S")


def _bounded(entry: Entry) -> bool:
    """Whether the entry's transport keeps a sync attempt's deadline in the caller's thread
    (an adapter's entry says so with a ``bounded`` attribute; see drivers/bounded.py)."""
    return getattr(entry, "bounded", False) is True


Resume = Callable[[E, str], Callable[[], S] | None]
"""An adapter's continuation of a broken stream: given an entry and the text delivered so
far, a function opening that entry's stream continuing the text (the request's messages
plus the text as the assistant's own turn), or ``None`` when the entry (or the request)
cannot continue it. Opening is deferred, so asking costs nothing."""


def _openers(
    resume: Resume[E, S], entries: Sequence[E], text: str
) -> tuple[dict[int, Callable[[], S]], Callable[[int], bool]]:
    """Openers of continuations of ``text``, filled in as the flow asks who can continue."""
    openers: dict[int, Callable[[], S]] = {}

    def can_continue(index: int) -> bool:
        opener = resume(entries[index], text)
        if opener is not None:
            openers[index] = opener
        return opener is not None

    return openers, can_continue


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
    openers, can_continue = _openers(resume, entries, text)
    command = flow.resume(error, text, can_continue)
    return command, None if command is None else openers.get(command.index)


def _resume_failed(
    flow: FailoverFlow,
    error: Exception,
    texts: Sequence[str],
    resume: Resume[E, S],
    entries: Sequence[E],
) -> tuple[Attempt, Callable[[], S]] | StreamInterruptedError:
    """A continuation failed before its output: the next one, or the interruption."""
    text = "".join(texts)
    openers, can_continue = _openers(resume, entries, text)
    command = flow.continuation_failed(error, text, len(texts), can_continue)
    if isinstance(command, StreamInterruptedError):
        return command
    return command, openers[command.index]


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


def _racer(first: Attempt, attempt: Attempt) -> None:
    """In a racer's own context: a hedge's requests must not queue behind the attempt it
    races for a pooled connection (see lanes.py)."""
    if attempt is not first:
        as_hedge()


def _entry_call(
    call: Callable[[E], T], entries: Sequence[E], first: Attempt, attempt: Attempt
) -> T:
    _racer(first, attempt)
    return call(entries[attempt.index])


Limits = Callable[[str], "tuple[float | None, float | None, float | None]"]
"""A chain's deadlines for one entry key: ``(timeout, first_token_timeout, idle_timeout)``."""


def _reasoning(entry: object) -> bool:
    """Whether the model behind an adapter's entry reasons before answering."""
    model = getattr(entry, "model", None) or getattr(entry, "llm", None)
    return model is not None and is_reasoning_model(model)


async def _aentry_call(
    call: Callable[[E], Awaitable[T]],
    entries: Sequence[E],
    limits: Limits,
    first: Attempt,
    attempt: Attempt,
) -> T:
    _racer(first, attempt)
    timeout = limits(attempt.key)[0]
    return await acall_within(timeout, attempt.key, call(entries[attempt.index]))


def _prefix(
    limits: Limits,
    open_stream: Callable[[E], Iterable[C]],
    commits: Callable[[C], bool] | None,
    entries: Sequence[E],
    first: Attempt,
    attempt: Attempt,
) -> tuple[StreamAttempt[C], list[C], bool]:
    _racer(first, attempt)
    _, first_token, idle = limits(attempt.key)
    it = StreamAttempt[C](attempt.key, first_token, idle)
    return open_prefix(it, partial(open_stream, entries[attempt.index]), commits)


async def _aprefix(
    limits: Limits,
    open_stream: Callable[[E], AsyncIterable[C]],
    commits: Callable[[C], bool] | None,
    entries: Sequence[E],
    first: Attempt,
    attempt: Attempt,
) -> tuple[AsyncStreamAttempt[C], list[C], bool]:
    _racer(first, attempt)
    _, first_token, idle = limits(attempt.key)
    it = AsyncStreamAttempt[C](attempt.key, first_token, idle)
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
        pools: Sequence[PoolGroup] = (),
    ) -> None:
        check_unique_keys(entries)
        _check_pools([e.key for e in entries], pools)
        check_resume_keys(entries, policy)
        if registry is not None and not isinstance(registry, HealthRegistry):
            raise TypeError(f"registry must be a HealthRegistry, got {registry!r}")
        self.entries: tuple[E, ...] = tuple(entries)
        self.policy = policy
        self._registry = registry
        self.sleep = sleep
        self.asleep = asleep
        self.pools: tuple[PoolGroup, ...] = tuple(pools)
        self._pool_of = {key: group for group in self.pools for key in group.keys}
        self.reasoning: frozenset[str] = frozenset(e.key for e in entries if _reasoning(e))
        """Keys of the reasoning models, whose deadlines are ``reasoning_timeout``."""

    def limits(self, key: str) -> tuple[float | None, float | None, float | None]:
        """``(timeout, first_token_timeout, idle_timeout)`` for the entry ``key``."""
        return self.policy.deadlines(key in self.reasoning)

    @property
    def registry(self) -> HealthRegistry:
        """The registry given, or the process-wide one as it is now."""
        return self._registry if self._registry is not None else get_health_registry()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.entries)

    def flow(self, request: object = None) -> FailoverFlow:
        return FailoverFlow(self.keys, self.policy, self.registry, request, pools=self.pools)

    def note_response(self, key: str, headers: Mapping[str, Any] | None) -> None:
        """Headers of ``key``'s answer (rate limits), for its pool's balancer; adapters
        call it where the child exposes them. Keys outside any pool are ignored."""
        group = self._pool_of.get(key)
        if group is not None and headers:
            group.balancer.observe(key, headers)

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
                        run = partial(_entry_call, call, self.entries, command)
                        deliver = partial(_deliver, flow, on_event)
                        timeout = self.limits(command.key)[0]
                        result = race(flow, command, run, hedge_after, timeout, deliver)
                    else:
                        entry = self.entries[command.index]
                        attempt = partial(call, entry)
                        result = call_within(
                            self.limits(command.key)[0], command.key, attempt, _bounded(entry)
                        )
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
                        arun = partial(_aentry_call, call, self.entries, self.limits, command)
                        adeliver = partial(_adeliver, flow, on_event)
                        result = await arace(flow, command, arun, hedge_after, adeliver)
                    else:
                        aw = call(self.entries[command.index])
                        timeout = self.limits(command.key)[0]
                        result = await acall_within(timeout, command.key, aw)
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
        restart: Callable[[], object] | None = None,
    ) -> Iterator[tuple[C, Served]]:
        """Stream from the first entry that produces output; fail over only before that.

        Chunks for which ``commits`` is false (a role header, an empty delta) are held back
        until the first that is true, so a failure right after them still fails over.
        A failure after output raises :class:`~failover_core.StreamInterruptedError`
        carrying the text already delivered, unless the policy resumes streams, every
        chunk so far was ``plain`` text and ``resume(entry, text)`` opens a continuation on
        an entry the flow picks: then the stream goes on with that continuation's chunks
        (each yielded with a :class:`Served` naming both models).

        ``restart``: the caller takes only a whole answer (an ``invoke`` whose tokens are
        streamed to callbacks). A broken stream that cannot be continued then starts over
        on the next model (never the one that broke, whose text was shown already):
        ``restart()`` is called first, and the caller drops what it had.
        """
        flow = self.flow(request)
        it, held, ended = self._first(flow, flow.start(), open_stream, on_retry, on_event, commits)
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
                step = self._continue(
                    flow, failure, texts, resume if resumable else None, on_event, commits, restart
                )
                if isinstance(step, tuple):
                    it, held, ended = step
                else:  # started over: a whole new answer
                    it, held, ended = self._first(
                        flow, step, open_stream, on_retry, on_event, commits
                    )
                    texts, resumable = [], resume is not None and plain is not None
                served = flow.committed()
            flow.succeeded()  # a stream is evidence of health once it has ended
        finally:
            flow.abandon()  # a consumer that stopped early gives back any probe lease
            it.close()

    def _first(
        self,
        flow: FailoverFlow,
        command: Attempt | Sleep | GiveUp,
        open_stream: Callable[[E], Iterable[C]],
        on_retry: OnRetry | None,
        on_event: OnEvent | None,
        commits: Callable[[C], bool] | None,
    ) -> tuple[StreamAttempt[C], list[C], bool]:
        """Carry out the flow's commands from ``command`` until a stream gives output:
        that stream, committed, with the chunks held and whether it already ended."""
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
            hedge_after = flow.hedge_delay(streamed=True)
            if hedge_after is not None:
                try:
                    prefix = partial(
                        _prefix, self.limits, open_stream, commits, self.entries, command
                    )
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
            _, first_token, idle = self.limits(command.key)
            it = StreamAttempt[C](
                command.key, first_token, idle, _bounded(self.entries[command.index])
            )
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
        return it, held, ended

    def _continue(
        self,
        flow: FailoverFlow,
        error: Exception,
        texts: list[str],
        resume: Resume[E, Iterable[C]] | None,
        on_event: OnEvent | None,
        commits: Callable[[C], bool] | None,
        restart: Callable[[], object] | None = None,
    ) -> tuple[StreamAttempt[C], list[C], bool] | Attempt | GiveUp:
        """A committed stream failed with ``error``: its continuation, opened up to its
        first output (the chunks held, whether it ended), the command to start over with
        (``restart``), or the interruption raised."""
        text = "".join(texts)
        command, opener = _resumed(flow, error, text, resume, self.entries)
        if resume is None or command is None or opener is None:
            if restart is not None and not caller_raised(error):
                again = flow.restarted(error)
                _deliver(flow, on_event)
                restart()
                return again
            interrupted = flow.interrupted(error, text, len(texts))
            _deliver(flow, on_event)
            if interrupted is error:  # the caller's own: raised as it is
                raise error
            raise interrupted from error
        while True:
            _deliver(flow, on_event)
            _, first_token, idle = self.limits(command.key)
            it = StreamAttempt[C](
                command.key, first_token, idle, _bounded(self.entries[command.index])
            )
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
                failed = _resume_failed(flow, exc, texts, resume, self.entries)
                if isinstance(failed, StreamInterruptedError):
                    _deliver(flow, on_event)
                    raise failed from error  # the real cause, never the continuation's
                command, opener = failed
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
        restart: Callable[[], object] | None = None,
    ) -> AsyncIterator[tuple[C, Served]]:
        """The async twin of :meth:`stream`."""
        flow = self.flow(request)
        await self.registry.prepare(self.keys)  # a probe lease, claimed off the loop
        it, held, ended = await self._afirst(
            flow, flow.start(), open_stream, on_retry, on_event, commits
        )
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
                step = await self._acontinue(
                    flow, failure, texts, resume if resumable else None, on_event, commits, restart
                )
                if isinstance(step, tuple):
                    it, held, ended = step
                else:  # started over: a whole new answer
                    it, held, ended = await self._afirst(
                        flow, step, open_stream, on_retry, on_event, commits
                    )
                    texts, resumable = [], resume is not None and plain is not None
                served = flow.committed()
            flow.succeeded()  # a stream is evidence of health once it has ended
        finally:
            flow.abandon()  # a consumer that stopped early gives back any probe lease
            await it.aclose()

    async def _afirst(
        self,
        flow: FailoverFlow,
        command: Attempt | Sleep | GiveUp,
        open_stream: Callable[[E], AsyncIterable[C]],
        on_retry: OnRetry | None,
        on_event: OnEvent | None,
        commits: Callable[[C], bool] | None,
    ) -> tuple[AsyncStreamAttempt[C], list[C], bool]:
        """The async twin of :meth:`_first`."""
        while True:
            if isinstance(command, Sleep):
                await _anotify_retry(on_retry, command)
                await self.asleep(command.seconds)
                command = flow.slept()
                await _adeliver(flow, on_event)
                continue
            if isinstance(command, GiveUp):
                raise command.error
            hedge_after = flow.hedge_delay(streamed=True)
            if hedge_after is not None:
                try:
                    aprefix = partial(
                        _aprefix, self.limits, open_stream, commits, self.entries, command
                    )
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
            _, first_token, idle = self.limits(command.key)
            it = AsyncStreamAttempt[C](command.key, first_token, idle)
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
        return it, held, ended

    async def _acontinue(
        self,
        flow: FailoverFlow,
        error: Exception,
        texts: list[str],
        resume: Resume[E, AsyncIterable[C]] | None,
        on_event: OnEvent | None,
        commits: Callable[[C], bool] | None,
        restart: Callable[[], object] | None = None,
    ) -> tuple[AsyncStreamAttempt[C], list[C], bool] | Attempt | GiveUp:
        """The async twin of :meth:`_continue`."""
        text = "".join(texts)
        command, opener = _resumed(flow, error, text, resume, self.entries)
        if resume is None or command is None or opener is None:
            if restart is not None and not caller_raised(error):
                again = flow.restarted(error)
                await _adeliver(flow, on_event)
                restart()
                return again
            interrupted = flow.interrupted(error, text, len(texts))
            await _adeliver(flow, on_event)
            if interrupted is error:  # the caller's own: raised as it is
                raise error
            raise interrupted from error
        while True:
            await _adeliver(flow, on_event)
            _, first_token, idle = self.limits(command.key)
            it = AsyncStreamAttempt[C](command.key, first_token, idle)
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
                failed = _resume_failed(flow, exc, texts, resume, self.entries)
                if isinstance(failed, StreamInterruptedError):
                    await _adeliver(flow, on_event)
                    raise failed from error  # the real cause, never the continuation's
                command, opener = failed
                continue
            except BaseException:
                flow.abandon()
                await it.aclose()
                raise
            it.commit()
            return it, held, ended
