"""Abandoned sync attempts are told why, at the moment their driver walks away.

The core hook adapters build on (``failover_core.drivers.abandon``): an attempt run on a
worker sees its :class:`AttemptScope` as ``current_attempt()``; the driver abandons it
with the reason (a deadline's ``AttemptTimeoutError``, a hedge loser's
``CancelledError('lost a hedged race to <key>')``) before it moves on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import failover_core as fc
from failover_core.drivers.abandon import AttemptScope, current_attempt

WAIT = 2.0  # how long an abandoned attempt blocks; released by the test


@dataclass
class Blocking:
    """A child whose call (or first chunk) blocks until released, or answers at once."""

    key: str
    blocks: bool = True
    release: threading.Event = field(default_factory=threading.Event)
    heard: list[tuple[str, str]] = field(default_factory=list)  # (who, reason) at abandonment
    scopes: list[AttemptScope | None] = field(default_factory=list)

    def _watch(self, order: list[str]) -> None:
        scope = current_attempt()
        self.scopes.append(scope)
        if scope is not None:
            scope.on_abandon(lambda why: order.append(f"{self.key}: {why!r}"))

    def call(self, order: list[str]) -> str:
        self._watch(order)
        if self.blocks:
            self.release.wait(WAIT)
        return f"{self.key}:ok"

    def stream(self, order: list[str]) -> Iterator[str]:
        self._watch(order)
        if self.blocks:
            self.release.wait(WAIT)
        yield f"{self.key}:"
        yield "ok"


def _chain(*children: Blocking, **options: object) -> fc.FailoverChain[Blocking]:
    policy = fc.FailoverPolicy.build(backoff=lambda n: 0.0, max_retries=1, **options)  # type: ignore[arg-type]
    return fc.FailoverChain(list(children), policy)


@pytest.mark.parametrize("path", ["invoke", "stream"])
def test_an_attempt_past_its_deadline_is_abandoned_with_the_timeout_before_the_next(
    registry: fc.HealthRegistry, path: str
) -> None:
    hung, fine = Blocking("a"), Blocking("b", blocks=False)
    order: list[str] = []
    if path == "invoke":
        chain = _chain(hung, fine, timeout=0.3)
        answer, served = chain.invoke(lambda c: (order.append(f"call {c.key}"), c.call(order))[1])
    else:
        chain = _chain(hung, fine, first_token_timeout=0.3)
        pairs = list(
            chain.stream(lambda c: (order.append(f"call {c.key}"), c.stream(order))[1], str)
        )
        answer, served = "".join(p for p, _ in pairs), pairs[0][1]
    hung.release.set()
    assert answer == "b:ok" and served.model == "b"
    assert order[0] == "call a" and order[2] == "call b", "told before the next attempt"
    assert order[1].startswith("a: AttemptTimeoutError('a passed its")
    assert isinstance(hung.scopes[0], AttemptScope) and hung.scopes[0].abandoned
    assert not fine.scopes[0] or not fine.scopes[0].abandoned


@pytest.mark.parametrize("path", ["invoke", "stream"])
def test_a_hedges_loser_is_abandoned_as_lost_to_the_winner(
    registry: fc.HealthRegistry, path: str
) -> None:
    slow, fast = Blocking("a"), Blocking("b", blocks=False)
    order: list[str] = []
    chain = _chain(slow, fast, hedge_after=0.05)
    if path == "invoke":
        answer, served = chain.invoke(lambda c: c.call(order))
    else:
        pairs = list(chain.stream(lambda c: c.stream(order), str))
        answer, served = "".join(p for p, _ in pairs), pairs[0][1]
    slow.release.set()
    assert answer == "b:ok" and served.hedged
    assert order == [f"a: {asyncio.CancelledError('lost a hedged race to b')!r}"]


def test_an_attempt_run_without_a_worker_has_no_scope(registry: fc.HealthRegistry) -> None:
    child = Blocking("a", blocks=False)
    chain = _chain(child, timeout=None, first_token_timeout=None, idle_timeout=None)
    assert chain.invoke(lambda c: c.call([]))[0] == "a:ok"
    assert child.scopes == [None]


def test_a_hook_added_after_the_abandonment_runs_at_once() -> None:
    scope = AttemptScope()
    scope.abandon(TimeoutError("late"))
    scope.abandon(TimeoutError("again"))  # once only
    heard: list[str] = []
    scope.on_abandon(lambda why: heard.append(str(why)))
    assert heard == ["late"] and str(scope.reason) == "late"
