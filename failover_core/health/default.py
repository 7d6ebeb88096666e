"""The process-wide registry, and the one seam where its store is chosen.

In-process by default; on Redis (behind a fail-open wrapper) when ``LLM_FAILOVER_REDIS_URL``
is set, or whatever :func:`set_health_store` is given. No store imports the registry, and
only this module knows the concrete stores.
"""

from __future__ import annotations

import os
import threading
import warnings
from datetime import datetime

from .failopen import FailOpenStore
from .records import BenchedModel, HealthStore
from .registry import HealthRegistry, Until, check_key

__all__ = [
    "REDIS_URL_ENV",
    "bench_model",
    "get_health_registry",
    "is_benched",
    "list_benched",
    "set_health_registry",
    "set_health_store",
    "unbench_model",
]

REDIS_URL_ENV = "LLM_FAILOVER_REDIS_URL"
"""When set, the process-wide registry keeps its health in that Redis (fail-open)."""

_registry_lock = threading.Lock()
_registry: HealthRegistry | None = None


def _from_environment() -> HealthRegistry:
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return HealthRegistry()
    try:
        from .redis.store import RedisHealthStore
    except ImportError:
        warnings.warn(
            f"{REDIS_URL_ENV} is set but the redis package is missing "
            "(pip install 'llm-failover[redis]'); health stays in-process",
            RuntimeWarning,
            stacklevel=3,
        )
        return HealthRegistry()
    try:
        store = RedisHealthStore.from_url(url)
    except Exception as exc:  # a malformed URL must not fail every request
        warnings.warn(
            f"{REDIS_URL_ENV} could not be used ({type(exc).__name__}: {exc}); "
            "health stays in-process",
            RuntimeWarning,
            stacklevel=3,
        )
        return HealthRegistry()
    return HealthRegistry(FailOpenStore(store))


def get_health_registry() -> HealthRegistry:
    """The process-wide registry every chain uses unless given its own.

    Built on first use: in-process, or on Redis when ``LLM_FAILOVER_REDIS_URL`` is set.
    """
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = _from_environment()
        return _registry


def set_health_registry(registry: HealthRegistry) -> HealthRegistry:
    """Replace the process-wide registry (e.g. one over a shared store); returns the old one."""
    global _registry
    if not isinstance(registry, HealthRegistry):
        raise TypeError(f"expected a HealthRegistry, got {type(registry).__name__}")
    old = get_health_registry()
    with _registry_lock:
        _registry = registry
    return old


def set_health_store(store: HealthStore, *, fail_open: bool = True) -> HealthRegistry:
    """Keep the process-wide health in ``store`` (a Redis store, for a fleet).

    With ``fail_open`` (the default) the store is wrapped in a
    :class:`~failover_core.FailOpenStore`, so its outages never reach a request. Returns
    the new registry.
    """
    if fail_open:
        store = FailOpenStore(store)
    registry = HealthRegistry(store)
    set_health_registry(registry)
    return registry


def list_benched() -> list[BenchedModel]:
    """Every model benched in this process right now."""
    return get_health_registry().list()


def bench_model(spec: str, until: Until) -> datetime:
    """Bench a model by hand (an operator's incident switch); returns the end.

    ``until`` is an aware datetime or a duration: seconds, a timedelta, or ``"30m"``."""
    return get_health_registry().bench(spec, until)


def unbench_model(spec: str) -> bool:
    """Bring a model back early; says whether it was benched."""
    return get_health_registry().unbench(check_key(spec))


def is_benched(spec: str) -> bool:
    """Whether a model is benched right now (expired benches read false)."""
    return get_health_registry().is_benched(spec)
