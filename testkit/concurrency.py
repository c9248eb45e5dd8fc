"""Work done at the same time: one thread per input, all started before any is joined."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def run_in_threads(work: Callable[[T], object], inputs: Iterable[T]) -> None:
    """Call ``work(item)`` for every item, each in its own thread; return when all are done.

    An exception in ``work`` ends only its thread: record failures inside ``work``.
    """
    threads = [threading.Thread(target=work, args=(item,)) for item in inputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
