"""Why the database cannot be used: one exception with a ``kind`` and a ``fix``.

``str()`` names the database (a file path, or ``host:port/db`` for PostgreSQL — never a
password) and says what is wrong. Callers branch on ``kind``, show ``fix``, and never
parse the message.
"""

from __future__ import annotations

from typing import Literal

StorageProblem = Literal[
    # SQLite files
    "not_a_directory",
    "unusable_directory",
    "corrupted",
    "read_only",
    "cannot_open",
    # PostgreSQL servers
    "unreachable",
    "auth_failed",
    "no_database",
    "permission_denied",
    "bad_url",
    # both
    "constraint",
    "newer_schema",
    "failed",
]
DATA_DIR_FIX = "check SESSION_BUDDY_DATA_DIR (see: session-buddy auth status)"
STORAGE_UNAVAILABLE_PREFIX = "❌ Storage unavailable"


class StorageError(Exception):
    """The database cannot be used. ``str()`` names it and says what is wrong;
    ``kind`` says which way it failed and ``fix`` what to do about it."""

    def __init__(
        self, message: str, *, kind: StorageProblem = "failed", fix: str = DATA_DIR_FIX
    ) -> None:
        super().__init__(message)
        self.kind: StorageProblem = kind
        self.fix = fix

    @property
    def user_message(self) -> str:
        """The line a tool call or an HTTP client sees: ``❌ Storage unavailable: …``."""
        return f"{STORAGE_UNAVAILABLE_PREFIX}: {self}"
