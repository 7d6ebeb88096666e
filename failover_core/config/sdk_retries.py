"""A warning for children that retry on their own, shared by the adapters."""

from __future__ import annotations

import threading
import warnings

__all__ = ["SDKRetriesWarning", "warn_if_child_retries"]


class SDKRetriesWarning(UserWarning):
    """A child model retries on its own, multiplying the failover model's attempts."""


_warned: set[str] = set()
_warned_lock = threading.Lock()
_MISSING = object()


def warn_if_child_retries(key: str, child: object, stacklevel: int = 2) -> bool:
    """Warn once per key when ``child.max_retries`` says its SDK retries; says if it did.

    ``None`` counts as retrying: it means "the SDK's default", which is 2 for the openai
    and anthropic SDKs. A child without the attribute is not judged.
    """
    retries = getattr(child, "max_retries", _MISSING)
    if retries is _MISSING or isinstance(retries, bool) or retries == 0:
        return False
    if retries is not None and not (isinstance(retries, int) and retries > 0):
        return False
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    shown = "its SDK's default" if retries is None else retries
    warnings.warn(
        f"{key} retries on its own (max_retries={shown}), so each failover attempt may be "
        "several calls and failover comes later; build it with max_retries=0 and let the "
        "failover model retry",
        SDKRetriesWarning,
        stacklevel=stacklevel + 1,
    )
    return True
