"""``Pool``: interchangeable deployments of one model, one entry of a chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import ChainConfigError
from .balancer import PoolBalancer, get_pool_balancer

__all__ = ["Pool", "PoolGroup"]


class Pool:
    """Deployments of one model (keys, regions, providers serving the same weights) that
    count as one entry of a failover chain.

    ``Pool(a, b, c)`` keys its members ``provider/model#1``, ``#2``, ...; ``Pool({"east":
    a, "west": b})`` gives the keys. Each request goes to one member, picked by
    power-of-two-choices over a peak-EWMA of latency weighted by requests in flight;
    members that said they are out of rate limit are skipped until the reset; a member
    that fails with a transient error is followed at once by another member, and the
    chain moves on only when the pool's members have all failed. Members are benched
    one by one, each under its own key.

    ``balancer``: a :class:`PoolBalancer` of its own (default: the process-wide one,
    whose state is per member key).
    """

    __slots__ = ("_balancer", "members")

    def __init__(self, *members: Any, balancer: PoolBalancer | None = None) -> None:
        if len(members) == 1 and isinstance(members[0], Mapping):
            items: list[tuple[str | None, Any]] = []
            for key, member in members[0].items():
                if not isinstance(key, str) or not key.strip():
                    raise ChainConfigError(
                        f"a pool member's key must be a non-empty string, got {key!r}"
                    )
                items.append((key.strip(), member))
        elif (
            len(members) == 1
            and isinstance(members[0], Sequence)
            and not isinstance(members[0], str)
        ):
            items = [(None, member) for member in members[0]]
        else:
            items = [(None, member) for member in members]
        if not items:
            raise ChainConfigError("a pool needs at least one member")
        for _, member in items:
            if isinstance(member, Pool):
                raise ChainConfigError("a pool cannot contain a pool; list the members in one")
        if balancer is not None and not isinstance(balancer, PoolBalancer):
            raise TypeError(f"balancer must be a PoolBalancer, got {balancer!r}")
        self.members: tuple[tuple[str | None, Any], ...] = tuple(items)
        self._balancer = balancer

    @property
    def balancer(self) -> PoolBalancer:
        """Its own balancer, or the process-wide one as it is now."""
        return self._balancer if self._balancer is not None else get_pool_balancer()

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{key!r}: {type(m).__name__}" if key else type(m).__name__ for key, m in self.members
        )
        return f"Pool({inner})"


@dataclass(frozen=True, slots=True)
class PoolGroup:
    """A pool inside a chain: its members' keys (consecutive entries) and its balancer."""

    keys: tuple[str, ...]
    pool: Pool

    @property
    def balancer(self) -> PoolBalancer:
        return self.pool.balancer
