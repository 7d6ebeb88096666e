"""Fleet-wide health on Redis (the public import path; the store lives in
:mod:`failover_core.health.redis`)."""

from .health.failopen import NotCached
from .health.redis.store import HedgeTally, RedisHealthStore

__all__ = ["HedgeTally", "NotCached", "RedisHealthStore"]
