"""``session-buddy serve`` on the event loop and HTTP parser chosen on the command line.

``python -m benchmarks.http_stack asyncio-h11|uvloop-h11 serve --transport http …`` runs
the product's own CLI with :data:`session_buddy.mcp.server.UVICORN_LOOP` and
``UVICORN_HTTP`` set first, so the benchmark measures what ships (uvloop, h11) against
asyncio, the loop uvicorn falls back to without uvloop, everything else identical.
"""

from __future__ import annotations

import sys

from session_buddy.cli import app
from session_buddy.mcp import server

STACKS = {"uvloop-h11": ("uvloop", "h11"), "asyncio-h11": ("asyncio", "h11")}


def main() -> None:
    stack, *arguments = sys.argv[1:]
    server.UVICORN_LOOP, server.UVICORN_HTTP = STACKS[stack]
    app(arguments, prog_name="session-buddy")


if __name__ == "__main__":
    main()
