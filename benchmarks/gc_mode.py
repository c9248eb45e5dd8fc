"""``session-buddy serve`` with the garbage collector settled one way or another.

``python -m benchmarks.gc_mode MODE serve --transport http …`` runs the product's own CLI
after setting :mod:`session_buddy.collector` for ``MODE``: ``stdlib`` (CPython's collector
as it comes: no freeze, its thresholds), ``freeze`` (``gc.freeze()`` after start-up,
CPython's thresholds) or ``freeze:A,B,C`` (and ``gc.set_threshold(A, B, C)``). The
benchmark measures the shipped default against these, everything else identical.
"""

from __future__ import annotations

import sys

from session_buddy import collector
from session_buddy.cli import app


def configure(mode: str) -> None:
    if mode == "stdlib":
        collector.TUNED = False
        return
    name, _, thresholds = mode.partition(":")
    if name != "freeze":
        raise SystemExit(f"unknown GC mode {mode!r}")
    collector.TUNED = True
    if thresholds:
        first, second, third = (int(part) for part in thresholds.split(","))
        collector.THRESHOLDS = (first, second, third)
    else:
        collector.THRESHOLDS = None


def main() -> None:
    mode, *arguments = sys.argv[1:]
    configure(mode)
    app(arguments, prog_name="session-buddy")


if __name__ == "__main__":
    main()
