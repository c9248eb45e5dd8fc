"""Envelope nonces: which signed cross-project envelopes were already accepted. Both backends.

An accepted envelope's nonce (or, for envelopes without one, its signature) is kept until
the envelope would be too old to accept anyway; whichever process — on whichever machine —
records it first wins, so a replay to any other instance is refused.
"""

from __future__ import annotations

from session_buddy.store.base import Database

PURGE_INTERVAL_SECONDS = 60.0


class NonceRepository:
    """Reads and writes ``envelope_nonces`` of one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._next_purge = 0.0

    def first_sighting(self, nonce_key: str, expires_at: float, now: float) -> bool:
        """Record ``nonce_key`` until ``expires_at``; True when no live record existed."""
        if now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL_SECONDS
            self.purge(now)
        with self._db.transaction() as conn:
            if (
                conn.execute(
                    "INSERT INTO envelope_nonces(nonce_key, expires_at) VALUES (?, ?) "
                    "ON CONFLICT (nonce_key) DO NOTHING",
                    (nonce_key, expires_at),
                ).rowcount
                == 1
            ):
                return True
            # Seen before: only an expired record (not yet purged) may be taken over.
            return (
                conn.execute(
                    "UPDATE envelope_nonces SET expires_at = ? "
                    "WHERE nonce_key = ? AND expires_at <= ?",
                    (expires_at, nonce_key, now),
                ).rowcount
                == 1
            )

    def purge(self, now: float) -> int:
        """Forget nonces whose envelopes can no longer be accepted; returns how many."""
        with self._db.transaction() as conn:
            return int(
                conn.execute("DELETE FROM envelope_nonces WHERE expires_at <= ?", (now,)).rowcount
            )
