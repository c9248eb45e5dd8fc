"""``python -m session_buddy``: the same command line as ``session-buddy``."""

from __future__ import annotations

from session_buddy.cli import app

if __name__ == "__main__":
    app(prog_name="session-buddy")
