"""Time in tests: a clock that moves only when told to, for rules that take ``clock=`` (no
sleeping); :func:`frozen_datetime` for code that reads ``datetime.now`` itself; and
:func:`seconds_until` for behaviour that takes real time to show."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, tzinfo


class FixedClock:
    """Callable like ``time.time``; ``now`` is set or advanced by the test."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def frozen_datetime(moment: datetime) -> type[datetime]:
    """A ``datetime`` class whose ``now()`` is always ``moment``: patched over a module's
    ``datetime`` (``mock.patch.object(module, "datetime", ...)``), it fixes that module's
    clock, so two implementations can be compared byte for byte."""

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> FrozenDatetime:
            return cls.fromtimestamp(moment.timestamp(), tz=tz)

    return FrozenDatetime


def seconds_until(
    condition: Callable[[], bool], timeout: float, interval: float = 0.01, *, what: str = ""
) -> float:
    """How long until ``condition()`` held, checked every ``interval``; an
    ``AssertionError`` after ``timeout`` seconds without it, naming ``what`` was waited
    for when given ("waited 5 s for the listener to connect")."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            if what:
                raise AssertionError(f"waited {timeout:g} s for {what}")
            raise AssertionError(f"still not so after {timeout:g} s")
        time.sleep(interval)
    return time.monotonic() - started
