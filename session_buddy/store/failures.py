"""Refused credentials per client, counted by every instance together. Both backends.

Instances add their counts in batches (one transaction for many refusals) to 10-second
buckets per client address, read the sum of the recent buckets, and record a block when
one of them decides a client has failed too often; every instance then honours it.
"""

# SQL here is assembled only from constants and dialect keywords; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable, Mapping

from session_buddy.store.base import Database

BUCKET_SECONDS = 10


def bucket_of(timestamp: float) -> int:
    return int(timestamp // BUCKET_SECONDS)


class FailureRepository:
    """Reads and writes ``auth_failures`` and ``auth_blocks`` of one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, counts: Mapping[tuple[str, int], int]) -> None:
        """Add refusals per (client, bucket), all in one transaction."""
        if not counts:
            return
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO auth_failures(client, bucket, failures) VALUES (?, ?, ?) "
                "ON CONFLICT (client, bucket) DO UPDATE "
                "SET failures = auth_failures.failures + excluded.failures",
                [(client, bucket, n) for (client, bucket), n in counts.items()],
            )

    def totals(self, clients: Iterable[str], since_bucket: int) -> dict[str, int]:
        """Refusals per client in the buckets from ``since_bucket`` on (absent: none)."""
        wanted = sorted(set(clients))
        if not wanted:
            return {}
        marks = ", ".join("?" for _ in wanted)
        rows = self._db.query(
            "SELECT client, SUM(failures) FROM auth_failures "
            f"WHERE bucket >= ? AND client IN ({marks}) GROUP BY client",
            (since_bucket, *wanted),
        )
        return {str(row[0]): int(row[1]) for row in rows}

    def block(self, blocks: Mapping[str, float]) -> None:
        """Record that each client is blocked until the given (Unix) time."""
        if not blocks:
            return
        greatest = self._db.dialect.greatest
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO auth_blocks(client, blocked_until) VALUES (?, ?) "
                "ON CONFLICT (client) DO UPDATE SET blocked_until = "
                f"{greatest}(auth_blocks.blocked_until, excluded.blocked_until)",
                list(blocks.items()),
            )

    def blocked(self, now: float) -> dict[str, float]:
        """Every client blocked after ``now``, with the end of its block."""
        rows = self._db.query(
            "SELECT client, blocked_until FROM auth_blocks WHERE blocked_until > ?", (now,)
        )
        return {str(row[0]): float(row[1]) for row in rows}

    def purge(self, before_bucket: int, now: float) -> None:
        """Forget counts older than ``before_bucket`` and blocks that ended by ``now``."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM auth_failures WHERE bucket < ?", (before_bucket,))
            conn.execute("DELETE FROM auth_blocks WHERE blocked_until <= ?", (now,))
