"""Small wording rules shared by every layer: times, durations, counts and shortened input.

Pure functions of their arguments, importing nothing from session_buddy, so the session
layer, the MCP layer and the CLI word the same facts the same way. None of them raises
for any value of its declared type.
"""

from __future__ import annotations

from datetime import UTC, datetime

MAX_SHOWN_CHARS = 200


def iso_time(timestamp: float) -> str:
    """A Unix timestamp as an ISO 8601 UTC string with second precision.

    Timestamps outside the calendar (a token may carry ``exp`` = 10**12) never raise.
    """
    try:
        return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        edge = datetime.max if timestamp > 0 else datetime.min
        return f"{'after' if timestamp > 0 else 'before'} {edge.isoformat(timespec='seconds')}"


def format_duration(seconds: float) -> str:
    """A duration for people: ``"45 s"``, ``"12 min"``, ``"1 h 5 min"``, ``"3 h"``."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def plural(count: int, word: str) -> str:
    """``"1 commit"``, ``"3 commits"``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def printable(text: str, keep: str = "") -> str:
    """``text`` safe to write to a terminal: every character a terminal could act on, or
    that could make text read differently than it is stored, written as its Python escape
    (``\\x1b``, ``\\x07``, ``\\x00``, ``\\ud800``, ``\\u202e``): control characters (C0,
    DEL, C1), format characters such as bidi overrides, lone surrogates, separators other
    than the space. Characters in ``keep`` (``"\\n"`` for multi-line text) stay as they are.
    """
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(ch if ch.isprintable() or ch in keep else repr(ch)[1:-1] for ch in text)


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` for a message: control characters escaped, the middle elided when long.

    The result is at most ``limit`` characters, all printable: no control character, no
    NUL and no lone surrogate, so any terminal, log or database takes it as it is.
    """
    if len(text) <= limit:
        shown = printable(text)  # returns printable text as it is, checked in C
        if len(shown) <= limit:
            return shown
    head = limit // 2
    tail = limit - head - 1
    return f"{printable(text[:head])[:head]}…{printable(text[-tail:])[-tail:]}"
