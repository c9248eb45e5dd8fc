"""Revoked tokens in the database: SQL only, no caching and no policy. Both backends.

Two tables: ``revoked_tokens`` (one row per token key, with the token's expiry) is the
truth; ``revocation_log`` is an append-only feed whose ``seq`` lets a process fetch the
revocations other processes recorded since it last looked
(:class:`session_buddy.auth.revocation.RevocationStore` keeps the in-memory mirror). On
PostgreSQL every revocation also notifies :data:`CHANNEL`, and a reader looks back
:data:`LOOK_BACK_SECONDS` as well as past its ``seq``: sequence numbers can commit out of
order there.
"""

# SQL here is assembled only from constants and dialect keywords; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from session_buddy.store.base import Database

CHANNEL = "session_buddy_revocations"
LOOK_BACK_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revoked token: its key (``jti:…`` or ``sha256:…``) and when the token expires."""

    token_key: str
    expires_at: float
    revoked_at: float = 0.0


class RevocationRepository:
    """Reads and writes the revocation tables of one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, token_key: str, expires_at: float, now: float) -> bool:
        """Record a revocation durably; True when this call revoked it first.

        The check and the write share one write transaction, so of two processes
        revoking (or refreshing) the same token at once exactly one gets True.
        """
        greatest = self._db.dialect.greatest
        with self._db.transaction() as conn:
            first = (
                conn.execute(
                    "INSERT INTO revoked_tokens(token_key, expires_at, revoked_at) "
                    "VALUES (?, ?, ?) ON CONFLICT (token_key) DO NOTHING",
                    (token_key, expires_at, now),
                ).rowcount
                == 1
            )
            if not first:
                conn.execute(
                    f"UPDATE revoked_tokens SET expires_at = {greatest}(expires_at, ?) "
                    "WHERE token_key = ?",
                    (expires_at, token_key),
                )
            conn.execute("INSERT INTO revocation_log(token_key) VALUES (?)", (token_key,))
            self._db.notify(conn, CHANNEL)
        return first

    def log_position(self) -> int:
        """The newest ``seq`` of the log (0 when empty)."""
        rows = self._db.query("SELECT COALESCE(MAX(seq), 0) FROM revocation_log")
        return int(rows[0][0])

    def in_force(self, cutoff: float) -> dict[str, float]:
        """Every revocation whose token expires after ``cutoff``: token key → expiry.

        What a process loads at start: one read of the index ``revoked_tokens_in_force``
        (no table row per revocation), straight into a dict (no object per row).
        """
        rows = self._db.query(
            "SELECT token_key, expires_at FROM revoked_tokens WHERE expires_at > ?", (cutoff,)
        )
        return dict(cast("list[tuple[str, float]]", rows))

    def since(self, seq: int) -> tuple[list[Revocation], int]:
        """Revocations logged after ``seq``, and the log position they reach."""
        since = "l.seq > ?"
        if self._db.dialect.name == "postgresql":
            # statement_timestamp(), not clock_timestamp(): it is fixed for the statement
            # (stable), so the index on logged_at serves this condition; and it is when
            # the statement began, never later than any clock reading during it, so the
            # window reaches at least as far back as the one it replaces.
            since += (
                f" OR l.logged_at > statement_timestamp() - interval '{LOOK_BACK_SECONDS} seconds'"
            )
        rows = self._db.query(
            "SELECT l.seq, l.token_key, r.expires_at, r.revoked_at FROM revocation_log l "
            f"JOIN revoked_tokens r ON r.token_key = l.token_key WHERE {since} "
            "ORDER BY l.seq",
            (seq,),
        )
        position = max((int(row[0]) for row in rows), default=seq)
        return [Revocation(row[1], float(row[2]), float(row[3])) for row in rows], position

    def purge(self, cutoff: float) -> int:
        """Delete revocations of tokens that expired by ``cutoff``; returns how many."""
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM revocation_log WHERE token_key IN "
                "(SELECT token_key FROM revoked_tokens WHERE expires_at <= ?)",
                (cutoff,),
            )
            purged = conn.execute(
                "DELETE FROM revoked_tokens WHERE expires_at <= ?", (cutoff,)
            ).rowcount
        return int(purged)

    def count(self, cutoff: float) -> int:
        """How many revocations are in force after ``cutoff``."""
        rows = self._db.query("SELECT COUNT(*) FROM revoked_tokens WHERE expires_at > ?", (cutoff,))
        return int(rows[0][0])
