"""Revoked tokens, shared by every process that uses the same database.

The database tables (:mod:`session_buddy.store.revocations`) are the truth; each process
keeps an in-memory set so a check is a set lookup (O(1)), and pulls new revocations from
an append-only log at most every ``sync_interval`` seconds, so a revocation written by
another process (a CLI, another server) is honoured within that interval. Entries are
forgotten once their token has expired.

Within one process every :class:`JWTManager` on the same database shares one store
(:func:`shared_revocation_store`), so a revocation or a refresh is honoured by all of
them at once, not after the next sync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from session_buddy.auth.errors import RevocationUnavailableError
from session_buddy.store.base import Database, Watch
from session_buddy.store.errors import StorageError
from session_buddy.store.revocations import CHANNEL, RevocationRepository

logger = logging.getLogger(__name__)

# Kept past exp so a leeway never revives a forgotten revocation.
RETENTION_AFTER_EXPIRY = 600.0
# How long the in-memory set may go unconfirmed before every token is refused.
MAX_STALE_SECONDS = 5.0


class RevocationStore:
    """Revocations keyed by a token's ``jti`` (or its SHA-256 when it has none).

    Where the database pushes changes (PostgreSQL), a notification triggers a read of the
    log at once and no token check waits for the database; while the push is down (and on
    SQLite, always) a check re-reads the log when ``sync_interval`` has passed. Either way
    the set is known current as of some moment; once that moment is more than
    ``MAX_STALE_SECONDS`` old, checks refuse every token. A notification whose read of the
    log fails is read again by the poller, and until then the listener's word counts for
    nothing: the set is current only as of the last successful read.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        sync_interval: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
        push: bool = True,
    ) -> None:
        self._db = db
        self._repository = RevocationRepository(db)
        self._clock = clock
        self._sync_interval = sync_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # One read of the log at a time: a check that finds the set stale while another
        # thread reads waits for that read rather than refuse on the old moment.
        self._reading = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._last_seq = 0
        self._next_sync = 0.0
        self._next_purge = 0.0
        self._known_at = self._monotonic()
        self._failing = False
        self._unread_push = False  # notified (or reconnected), and not read since
        self._pushes = 0
        self._last_failure = ""
        self._closed = threading.Event()
        # Called with the delay between another process's revocation and this one
        # learning of it (the metrics' propagation lag).
        self.on_learned: Callable[[float], None] | None = None
        self._load()
        self._watch: Watch | None = db.watch(CHANNEL, self._pushed) if push else None
        if self._watch is not None:
            # While the push is down, poll off the request path (never block a check).
            threading.Thread(
                target=self._poll_while_unpushed, name="session-buddy-revocations", daemon=True
            ).start()

    def _load(self) -> None:
        now = self._clock()
        # The log position first: a revocation committed between the two reads is then
        # fetched again by the next sync instead of being skipped for good.
        seq = self._repository.log_position()
        in_force = self._repository.in_force(now - RETENTION_AFTER_EXPIRY)
        with self._lock:
            self._expiry = {r.token_key: r.expires_at for r in in_force}
            self._last_seq = seq
            self._next_sync = self._monotonic() + self._sync_interval
            self._known_at = self._monotonic()

    def revoke(self, token_key: str, expires_at: float) -> bool:
        """Record a revocation durably (committed before this returns).

        Returns True when this call revoked the token, False when some process had
        already (the check and the write share one ``BEGIN IMMEDIATE`` transaction).
        """
        now = self._clock()
        first = self._repository.record(token_key, expires_at, now)
        with self._lock:
            self._expiry[token_key] = max(expires_at, self._expiry.get(token_key, 0.0))
        if now >= self._next_purge:
            self.purge_expired()
        return first

    def is_revoked(self, token_key: str) -> bool:
        """Whether the token is revoked, as the database said at most a moment ago.

        Raises :class:`RevocationUnavailableError` once the set has gone unconfirmed for
        ``MAX_STALE_SECONDS`` (database unreadable or unreachable): other processes'
        revocations could not be honoured, so tokens are refused rather than accepted on
        stale knowledge (fail closed).
        """
        watch = self._watch
        if watch is None:
            if self.sync_due:
                self._sync()
            known_at = self._known_at
        elif self._unread_push:  # the listener vouches only for what was read
            known_at = self._known_at
        else:
            known_at = max(self._known_at, watch.confirmed_at)
        stale = self._monotonic() - known_at
        if stale > MAX_STALE_SECONDS:
            raise RevocationUnavailableError(
                f"revocations unconfirmed for {stale:.0f} s: {self._last_failure}"
            )
        return token_key in self._expiry

    @property
    def sync_due(self) -> bool:
        """Whether the next :meth:`is_revoked` would read the database first, or wait for
        another thread's read (polling: its interval over, or the set not confirmed within
        it); never where the database pushes changes."""
        if self._watch is not None:
            return False
        now = self._monotonic()
        return now >= self._next_sync or now - self._known_at >= self._sync_interval

    def _poll_while_unpushed(self) -> None:
        watch = self._watch
        while not self._closed.wait(self._sync_interval):
            if watch is not None and (not watch.healthy or self._unread_push):
                self._sync()

    def close(self) -> None:
        """Stop the background poller (the database itself belongs to its owner)."""
        self._closed.set()

    def _pushed(self) -> None:
        """Another process revoked something (or the push reconnected): read the log now,
        and until a read succeeds, poll and trust only what was read."""
        with self._lock:
            self._next_sync = 0.0
            self._unread_push = True
            self._pushes += 1
        self._sync()

    def _sync(self) -> None:
        with self._reading:
            self._read_log()

    def _read_log(self) -> None:
        with self._lock:
            if self._monotonic() < self._next_sync:
                return
            self._next_sync = self._monotonic() + self._sync_interval
            last = self._last_seq
            pushes = self._pushes
        try:
            changes, position = self._repository.since(last)
        except StorageError as exc:
            # Keep every revocation already known; try again on the next interval.
            if not self._failing:
                logger.warning("revocation sync failed (retrying): %s", exc)
            self._failing = True
            self._last_failure = str(exc)
            return
        if self._failing:
            logger.info("revocation sync recovered")
        self._failing = False
        self._known_at = self._monotonic()
        with self._lock:
            if self._pushes == pushes:  # no notification came while reading
                self._unread_push = False
        learned: list[float] = []
        if changes:
            with self._lock:
                for change in changes:
                    known = self._expiry.get(change.token_key)
                    if known is None:
                        learned.append(change.revoked_at)
                    self._expiry[change.token_key] = max(change.expires_at, known or 0.0)
                self._last_seq = max(self._last_seq, position)
        observer = self.on_learned
        if observer is not None and learned:
            now = self._clock()
            for revoked_at in learned:
                observer(max(0.0, now - revoked_at))

    def purge_expired(self) -> int:
        """Forget revocations of tokens that expired long enough ago; returns how many."""
        cutoff = self._clock() - RETENTION_AFTER_EXPIRY
        self._next_purge = self._clock() + 60.0
        purged = self._repository.purge(cutoff)
        with self._lock:
            self._expiry = {k: e for k, e in self._expiry.items() if e > cutoff}
        return purged

    @property
    def known(self) -> int:
        """Revocations in the in-memory set (what every check consults)."""
        return len(self._expiry)

    def count(self) -> int:
        """Revocations currently in force (read from the database, not the cache)."""
        return self._repository.count(self._clock() - RETENTION_AFTER_EXPIRY)


_shared_lock = threading.Lock()
_shared: dict[str, RevocationStore] = {}


def shared_revocation_store(database: Database) -> RevocationStore:
    """The process's :class:`RevocationStore` for ``database`` (built on first use).

    An explicit cache, one store per database location: every manager, verifier and
    facade function of the process then sees a revocation the moment it is recorded.
    Raises :class:`StorageError` when the database cannot be read.
    """
    key = database.location
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            store = _shared[key] = RevocationStore(database)
        return store


def forget_shared_revocation_stores() -> None:
    """Close and drop the cached stores (tests, and processes that switch databases)."""
    with _shared_lock:
        stores = list(_shared.values())
        _shared.clear()
    for store in stores:
        store.close()
