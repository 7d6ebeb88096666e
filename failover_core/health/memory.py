"""The in-process store: the default, and what a shared store falls back to."""

from __future__ import annotations

import threading

from .records import HealthRecord, Update

__all__ = ["MemoryHealthStore"]


class MemoryHealthStore:
    """The in-process store: a dict behind a lock, never held across a model call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, HealthRecord] = {}

    def get(self, key: str) -> HealthRecord | None:
        with self._lock:
            return self._records.get(key)

    def update(self, key: str, fn: Update) -> HealthRecord | None:
        with self._lock:
            new = fn(self._records.get(key))
            if new is None:
                self._records.pop(key, None)
            else:
                self._records[key] = new
            return new

    def items(self) -> list[tuple[str, HealthRecord]]:
        with self._lock:
            return list(self._records.items())

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
