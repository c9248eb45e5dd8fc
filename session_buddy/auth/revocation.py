"""Revoked tokens, shared by every process that uses the same data directory.

The SQLite tables are the truth; each process keeps an in-memory set so a check is a
set lookup (O(1)), and pulls new revocations from an append-only log at most every
``sync_interval`` seconds, so a revocation written by another process (a CLI, another
server) is honoured within that interval. Entries are forgotten once their token has
expired.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from session_buddy.auth.errors import RevocationUnavailableError
from session_buddy.store.db import Database, StorageError

logger = logging.getLogger(__name__)

# Kept past exp so a leeway never revives a forgotten revocation.
RETENTION_AFTER_EXPIRY = 600.0
# How long the database may be unreadable before every token is refused.
MAX_STALE_SECONDS = 5.0


class RevocationStore:
    """Revocations keyed by a token's ``jti`` (or its SHA-256 when it has none)."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        sync_interval: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock
        self._sync_interval = sync_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._last_seq = 0
        self._next_sync = 0.0
        self._next_purge = 0.0
        self._failing_since: float | None = None
        self._last_failure = ""
        self._load()

    def _load(self) -> None:
        now = self._clock()
        # The log position first: a revocation committed between the two reads is then
        # fetched again by the next sync instead of being skipped for good.
        seq = self._db.query("SELECT COALESCE(MAX(seq), 0) FROM revocation_log")
        rows = self._db.query(
            "SELECT token_key, expires_at FROM revoked_tokens WHERE expires_at > ?",
            (now - RETENTION_AFTER_EXPIRY,),
        )
        with self._lock:
            self._expiry = {row[0]: row[1] for row in rows}
            self._last_seq = int(seq[0][0])
            self._next_sync = self._monotonic() + self._sync_interval

    def revoke(self, token_key: str, expires_at: float) -> bool:
        """Record a revocation durably (committed before this returns).

        Returns True when this call revoked the token, False when some process had
        already (the check and the write share one ``BEGIN IMMEDIATE`` transaction).
        """
        now = self._clock()
        with self._db.transaction() as conn:
            existed = conn.execute(
                "SELECT 1 FROM revoked_tokens WHERE token_key = ?", (token_key,)
            ).fetchone()
            conn.execute(
                "INSERT INTO revoked_tokens(token_key, expires_at, revoked_at) VALUES (?, ?, ?) "
                "ON CONFLICT(token_key) DO UPDATE SET expires_at = "
                "MAX(expires_at, excluded.expires_at)",
                (token_key, expires_at, now),
            )
            conn.execute("INSERT INTO revocation_log(token_key) VALUES (?)", (token_key,))
        with self._lock:
            self._expiry[token_key] = max(expires_at, self._expiry.get(token_key, 0.0))
        if now >= self._next_purge:
            self.purge_expired()
        return existed is None

    def is_revoked(self, token_key: str) -> bool:
        """Whether the token is revoked, as of at most ``sync_interval`` ago.

        Raises :class:`RevocationUnavailableError` once the database has been unreadable
        for ``MAX_STALE_SECONDS``: other processes' revocations could not be honoured, so
        tokens are refused rather than accepted on stale knowledge (fail closed).
        """
        if self._monotonic() >= self._next_sync:
            self._sync()
        if self._failing_since is not None:
            stale = self._monotonic() - self._failing_since
            if stale > MAX_STALE_SECONDS:
                raise RevocationUnavailableError(
                    f"revocation store unreadable for {stale:.0f} s: {self._last_failure}"
                )
        return token_key in self._expiry

    def _sync(self) -> None:
        with self._lock:
            if self._monotonic() < self._next_sync:
                return
            self._next_sync = self._monotonic() + self._sync_interval
            last = self._last_seq
        try:
            rows = self._db.query(
                "SELECT l.seq, l.token_key, r.expires_at FROM revocation_log l "
                "JOIN revoked_tokens r ON r.token_key = l.token_key WHERE l.seq > ? "
                "ORDER BY l.seq",
                (last,),
            )
        except StorageError as exc:
            # Keep every revocation already known; try again on the next interval.
            logger.warning("revocation sync failed: %s", exc)
            self._last_failure = str(exc)
            if self._failing_since is None:
                self._failing_since = self._monotonic()
            return
        self._failing_since = None
        if rows:
            with self._lock:
                for seq, key, expires_at in rows:
                    self._expiry[key] = max(expires_at, self._expiry.get(key, 0.0))
                    self._last_seq = max(self._last_seq, seq)

    def purge_expired(self) -> int:
        """Forget revocations of tokens that expired long enough ago; returns how many."""
        cutoff = self._clock() - RETENTION_AFTER_EXPIRY
        self._next_purge = self._clock() + 60.0
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM revocation_log WHERE token_key IN "
                "(SELECT token_key FROM revoked_tokens WHERE expires_at <= ?)",
                (cutoff,),
            )
            purged = conn.execute(
                "DELETE FROM revoked_tokens WHERE expires_at <= ?", (cutoff,)
            ).rowcount
        with self._lock:
            self._expiry = {k: e for k, e in self._expiry.items() if e > cutoff}
        return purged

    def count(self) -> int:
        """Revocations currently in force (read from the database, not the cache)."""
        cutoff = self._clock() - RETENTION_AFTER_EXPIRY
        rows = self._db.query("SELECT COUNT(*) FROM revoked_tokens WHERE expires_at > ?", (cutoff,))
        return int(rows[0][0])
