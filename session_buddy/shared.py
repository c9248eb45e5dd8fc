"""Parts one process shares — one per key, an explicit cache — and who holds them.

One ``Database`` per location, one revocation store per database: so that a process
behaves as one (a revocation through any manager is refused by all at once). A holder (a
:class:`~session_buddy.runtime.Runtime`) holds the parts it was built with until it
closes; :meth:`SharedParts.forget` closes and drops only the parts nobody holds, so
forgetting (tests, a process switching data dirs) never pulls a part from under a runtime
that still uses it. This module imports nothing from session_buddy: every layer may use it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedParts(Generic[T]):
    """The process's parts of one kind, by key; ``close`` closes one that is forgotten."""

    def __init__(self, close: Callable[[T], object]) -> None:
        self._close = close
        self._lock = threading.Lock()
        self._parts: dict[str, T] = {}
        self._holds: Counter[str] = Counter()

    def get(self, key: str, build: Callable[[], T]) -> T:
        """The part for ``key``, built on first use (``build`` must not do I/O)."""
        with self._lock:
            part = self._parts.get(key)
            if part is None:
                part = self._parts[key] = build()
            return part

    def hold(self, key: str, build: Callable[[], T]) -> T:
        """:meth:`get`, and count the caller as a holder until :meth:`release`."""
        with self._lock:
            part = self._parts.get(key)
            if part is None:
                part = self._parts[key] = build()
            self._holds[key] += 1
            return part

    def release(self, key: str) -> None:
        """One holder of ``key``'s part is done with it (it stays shared until forgotten)."""
        with self._lock:
            if self._holds[key] > 0:
                self._holds[key] -= 1
            if self._holds[key] == 0:
                del self._holds[key]

    def held(self, key: str) -> bool:
        with self._lock:
            return self._holds[key] > 0

    def forget(self) -> None:
        """Close and drop every part no holder holds; the others stay, shared."""
        with self._lock:
            unheld = {key: part for key, part in self._parts.items() if self._holds[key] == 0}
            for key in unheld:
                del self._parts[key]
        for part in unheld.values():
            self._close(part)
