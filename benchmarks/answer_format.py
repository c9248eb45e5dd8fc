"""``session-buddy serve`` with the HTTP answer format chosen on the command line.

``python -m benchmarks.answer_format sse|json serve --transport http …`` runs the product's
own CLI with :data:`session_buddy.mcp.server.JSON_RESPONSE` set first, so the benchmark
measures the choice the server ships (one JSON body per answer, with MCP sessions and
without) against the other one (an SSE stream per answer: the MCP SDK's default),
everything else identical.
"""

from __future__ import annotations

import sys

from session_buddy.cli import app
from session_buddy.mcp import server

FORMATS = {"json": True, "sse": False}


def main() -> None:
    answer_format, *arguments = sys.argv[1:]
    server.JSON_RESPONSE = FORMATS[answer_format]
    app(arguments, prog_name="session-buddy")


if __name__ == "__main__":
    main()
