"""A clock that moves only when told to, for rules that take ``clock=`` (no sleeping)."""

from __future__ import annotations


class FixedClock:
    """Callable like ``time.time``; ``now`` is set or advanced by the test."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
