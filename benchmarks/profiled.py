"""``session-buddy serve`` with cProfile switched on by a signal, after start-up.

``python -m benchmarks.profiled STATS_FILE serve --transport http …`` runs the product's
own CLI; ``SIGUSR1`` starts profiling (the main thread: the event loop), and the profile
is written to ``STATS_FILE`` when serving ends (SIGTERM drains and returns). Start-up
(imports, schemas) is thus left out of what :mod:`benchmarks.profile_server` reports.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

from session_buddy.cli import app


def main() -> None:
    stats_file, *arguments = sys.argv[1:]
    profiler = cProfile.Profile()

    def start(signum: int, frame: FrameType | None) -> None:
        profiler.enable()

    signal.signal(signal.SIGUSR1, start)
    try:
        app(arguments, prog_name="session-buddy", standalone_mode=False)
    finally:
        profiler.disable()
        profiler.dump_stats(stats_file)


if __name__ == "__main__":
    main()
