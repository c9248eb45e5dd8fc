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
    "ssl",
    "not_allowed",
    # both
    "constraint",
    "bad_value",  # a value the database cannot store (a lone surrogate; a NUL on PostgreSQL)
    "newer_schema",
    "failed",
]
ROW_PROBLEMS: frozenset[StorageProblem] = frozenset({"constraint", "bad_value"})
"""Kinds that blame a statement's values: other rows can still be written."""
DATA_DIR_FIX = "check SESSION_BUDDY_DATA_DIR (see: session-buddy auth status)"
STORAGE_UNAVAILABLE_PREFIX = "❌ Storage unavailable"


class StorageError(Exception):
    """The database cannot be used. ``str()`` names it and says what is wrong;
    ``kind`` says which way it failed and ``fix`` what to do about it.

    Two kinds are about the statement's values, not the database: ``constraint`` and
    ``bad_value`` (:data:`ROW_PROBLEMS`) — the same statement with other values works.
    Every other kind is an outage: nothing can be written until it is fixed.
    """

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
