"""How the CLI talks to people: data on stdout, one-line messages on stderr.

Every user error ends the command through :func:`fail`: one red line saying what is wrong
and how to fix it, exit code 1. Nothing here ever prints a token or a secret; the two
commands whose output *is* a token write it with :func:`emit` and nothing else.

Text that came from outside — a database row, a token's claims, a path, a caller's tool
name — reaches the terminal only escaped (:func:`~session_buddy.text.printable`): a table
cell is a :func:`cell`, a title a :func:`title`, and every message line is escaped here.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from session_buddy.text import printable

PIPE_WIDTH = 200


def console(*, stderr: bool = False) -> Console:
    """A console for this moment's stdout/stderr.

    In a terminal it uses the terminal's width; in a pipe it is wide, so a table row stays
    one line for ``grep``. ``soft_wrap``: a message is never broken across lines.
    """
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PIPE_WIDTH
    return Console(file=stream, stderr=stderr, width=width, highlight=False, soft_wrap=True)


def cell(value: object, style: str = "") -> Text:
    """A table cell (or any printed value) showing ``value`` as text: never markup, and
    every control or format character escaped, whatever the value holds."""
    return Text(printable(str(value)), style=style)


def title(value: object) -> Text:
    """A table title, escaped like a :func:`cell`."""
    return cell(value)


def _line(message: str, style: str | None = None, *, stderr: bool = True) -> None:
    console(stderr=stderr).print(Text(printable(message), style=style or ""))


def fail(message: str, fix: str | None = None) -> NoReturn:
    """Print ``message`` (and its fix) as one red line on stderr and exit with code 1."""
    if not message.startswith(("❌", "⚠️")):
        message = f"❌ {message}"
    _line(f"{message} — fix: {fix}" if fix else message, "red")
    raise typer.Exit(1)


def warn(message: str) -> None:
    """A yellow line on stderr, for things that work but probably are not what you want."""
    if not message.startswith("⚠️"):
        message = f"⚠️ {message}"
    _line(message, "yellow")


def note(message: str) -> None:
    """A plain line on stderr (keeps stdout clean for scripts)."""
    _line(message)


def success(message: str) -> None:
    """A green line on stdout."""
    _line(f"✅ {message}", "green", stderr=False)


def emit(text: str) -> None:
    """Exactly ``text`` and a newline on stdout: no colour, no wrapping, for scripts."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()
