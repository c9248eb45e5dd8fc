"""Work done at the same time: threads, or real processes, all started before any is joined.

:func:`run_in_threads` runs one thread per input. :func:`race_in_processes` runs one
process per input and lets them all start the racy part at the same moment, so a guarantee
that must hold across server processes (one active session, one winner of a refresh, one
migration) is proven by processes, where no lock inside one interpreter can make it pass.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

RACE_TIMEOUT = 60.0
# Imported once by multiprocessing's fork server (a clean, single-threaded interpreter);
# every racer is forked from it, so a race costs milliseconds rather than one interpreter
# start-up and import per racer.
PRELOAD = (
    "pytest",
    "session_buddy.store",
    "session_buddy.store.postgres",
    "session_buddy.store.sessions",
    "session_buddy.store.revocations",
    "session_buddy.store.nonces",
    "alembic.command",  # what migrating imports
    "sqlalchemy",
    "testkit.concurrency",
    "testkit.store",
)


def run_in_threads(work: Callable[[T], object], inputs: Iterable[T]) -> None:
    """Call ``work(item)`` for every item, each in its own thread; return when all are done.

    An exception in ``work`` ends only its thread: record failures inside ``work``.
    """
    threads = [threading.Thread(target=work, args=(item,)) for item in inputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@dataclass(frozen=True)
class Outcome:
    """What one racing process did: its pid, and the value returned or the error raised."""

    pid: int
    value: Any = None
    error: str | None = None  # "ExceptionType: message" when the work raised


class StartSignal:
    """Handed to each racer: ``signal()`` returns once every racer has called it."""

    def __init__(self, barrier: Any, timeout: float) -> None:
        self._barrier = barrier
        self._timeout = timeout

    def __call__(self) -> None:
        self._barrier.wait(self._timeout)


def _racer(
    work: Callable[..., Any], args: Sequence[Any], barrier: Any, results: Any, timeout: float
) -> None:
    """One racer, in its own process (module level: it is pickled by name)."""
    try:
        value = work(StartSignal(barrier, timeout), *args)
    except BaseException as exc:  # reported to the parent, which judges it
        barrier.abort()  # a racer that fails before the start must not hang the others
        results.put((os.getpid(), None, f"{type(exc).__name__}: {exc}"))
    else:
        results.put((os.getpid(), value, None))


def race_in_processes(
    work: Callable[..., Any], inputs: Sequence[Sequence[Any]], *, timeout: float = RACE_TIMEOUT
) -> list[Outcome]:
    """Call ``work(start, *args)`` for each ``args`` of ``inputs``, each in a new process.

    The processes are forked from multiprocessing's fork server — never from this
    (threaded) process — with :data:`PRELOAD` already imported; they inherit the fork
    server's environment (this process's at its first race), so ``work`` takes what it
    needs as arguments rather than from ``SESSION_BUDDY_*`` variables. ``work`` (a module-level
    function: it is pickled by name and its module imported) prepares — opens its own
    database, say — then calls ``start()``, which returns when every racer has called it,
    and races. Its return value (picklable) or the exception it raised comes back as an
    :class:`Outcome`, one per process in the order they finished. A process that dies or
    hangs is an ``AssertionError``.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    barrier = context.Barrier(len(inputs))
    results = context.Queue()
    processes = [
        context.Process(target=_racer, args=(work, tuple(args), barrier, results, timeout))
        for args in inputs
    ]
    outcomes: list[Outcome] = []
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + timeout
        while len(outcomes) < len(processes):
            try:
                pid, value, error = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                if time.monotonic() >= deadline or all(not p.is_alive() for p in processes):
                    break
                continue
            outcomes.append(Outcome(pid, value, error))
        for process in processes:
            process.join(max(0.1, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(5)
        with contextlib.suppress(Exception):
            results.close()
    exits = [process.exitcode for process in processes]
    assert len(outcomes) == len(processes), f"racers answered {len(outcomes)}, exits {exits}"
    assert exits == [0] * len(processes), f"racer exit codes {exits}"
    assert os.getpid() not in {outcome.pid for outcome in outcomes}
    return outcomes
