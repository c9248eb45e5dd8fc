"""Slow down an HTTP client that keeps presenting bad tokens.

The rule: after :data:`FAILURE_LIMIT` (20) bad credentials from one client address within
:data:`FAILURE_WINDOW_SECONDS` (60 s), that client is *blocked* for
:data:`BLOCK_SECONDS` (60 s). While blocked, a request that presents a bad credential
gets ``429 Too Many Requests`` with ``Retry-After`` instead of being verified and answered
in full; a request with a valid credential, or with none, is served as usual — a valid
token is never throttled. When the block ends, counting starts afresh.

What counts as a bad credential (:func:`is_bad_credential`, read from the error class's
``bad_credential``): a token that is malformed, badly signed, expired, revoked or
otherwise invalid, and an Authorization header whose user differs from the ``token``
argument's. A *missing* token, a role the tool does not accept, and server-side problems
(unusable secret, unreadable revocation store) do not count: they say nothing about
someone guessing tokens.

Both kinds of credential feed the same counter. The bearer middleware counts bad
``Authorization`` headers itself; bad ``token`` arguments are found by the tool layer,
which reports them through a callback the middleware leaves in the request's ASGI state
(see :mod:`session_buddy.mcp.bearer`). The counter is keyed by the peer's IP address
only (its port changes with every connection); behind a reverse proxy every client
shares the proxy's address.

Several instances count together once :meth:`AuthFailureThrottle.share` is started with
the database's :class:`~session_buddy.store.failures.FailureRepository`: one background
thread adds this instance's new refusals (one transaction for all of them) as soon as a
refusal wakes it — but never within ``SYNC_SPACING_SECONDS`` (20 ms) of its last round —
and otherwise every ``sync_interval`` (0.1 s) reads the other instances' recent counts and
every block any instance decided. A request never waits for the database. A client
spreading bad credentials over N instances is therefore blocked after at most ``limit``
refusals plus what the other instances refused in the last round or two before they
heard of it (measured by ``make stress``); while the database is unreachable each
instance keeps counting on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from session_buddy.auth import errors
from session_buddy.store.errors import StorageError
from session_buddy.store.failures import FailureRepository, bucket_of

logger = logging.getLogger(__name__)

FAILURE_LIMIT = 20
FAILURE_WINDOW_SECONDS = 60.0
BLOCK_SECONDS = 60.0
MAX_TRACKED_CLIENTS = 10_000
SYNC_INTERVAL_SECONDS = 0.1
# A refusal wakes the sync at once, but syncs are never closer than this: under a flood an
# instance writes at most 1 / SYNC_SPACING_SECONDS transactions a second.
SYNC_SPACING_SECONDS = 0.02
PURGE_INTERVAL_SECONDS = 60.0


def is_bad_credential(error: errors.AuthError) -> bool:
    """Whether ``error`` means the caller presented a credential we refuse (the error
    class says so: ``bad_credential``)."""
    return error.bad_credential


class AuthFailureThrottle:
    """Counts bad credentials per client and says when a client is blocked.

    Thread-safe: tool calls run in worker threads and report failures from there.
    ``clock`` returns Unix time (shared blocks are absolute); tests pass a fake one.
    """

    def __init__(
        self,
        *,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW_SECONDS,
        block: float = BLOCK_SECONDS,
        clock: Callable[[], float] = time.time,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self._limit = limit
        self._window = window
        self._block = block
        self._clock = clock
        self._max_clients = max_clients
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        # Sharing (see the module doc): refusals not yet written, blocks not yet written,
        # what this instance wrote per (client, bucket), and the others' recent counts.
        self._shared: FailureRepository | None = None
        self._pending: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._pending_blocks: dict[str, float] = {}
        self._written: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._others: dict[str, int] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_purge = 0.0
        self.sync_failures = 0
        self.writes = 0

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` is unblocked, or None when it is not blocked."""
        now = self._clock()
        with self._lock:
            until = self._blocked_until.get(client)
            if until is None:
                return None
            if now >= until:
                del self._blocked_until[client]
                return None
            return until - now

    def blocked_count(self) -> int:
        """How many clients are blocked right now (for the metrics)."""
        now = self._clock()
        with self._lock:
            return sum(1 for until in self._blocked_until.values() if until > now)

    def record_failure(self, client: str) -> bool:
        """Count one bad credential from ``client``; True when this one starts a block.

        Failures while the client is blocked are not counted: the block has a fixed end.
        """
        now = self._clock()
        with self._lock:
            until = self._blocked_until.get(client)
            if until is not None and now < until:
                return False
            times = self._failures.get(client)
            if times is None:
                self._make_room(now)
                times = self._failures[client] = deque()
            while times and now - times[0] >= self._window:
                times.popleft()
            times.append(now)
            if self._shared is not None:
                self._pending[(client, bucket_of(now))] += 1
                self._wake.set()
            if len(times) + self._others.get(client, 0) < self._limit:
                return False
            self._start_block(client, now)
            return True

    def _start_block(self, client: str, now: float) -> None:
        """Block ``client`` from ``now`` (caller holds the lock)."""
        self._failures.pop(client, None)
        self._others.pop(client, None)
        self._blocked_until[client] = now + self._block
        if self._shared is not None:
            self._pending_blocks[client] = now + self._block

    # -- sharing with other instances ----------------------------------------------------

    def share(
        self, repository: FailureRepository, *, interval: float = SYNC_INTERVAL_SECONDS
    ) -> None:
        """Count together with every instance on ``repository``'s database, from now on."""
        with self._lock:
            if self._thread is not None:
                return
            self._shared = repository
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._sync_loop, args=(interval,), name="session-buddy-throttle", daemon=True
            )
        self._thread.start()

    def stop_sharing(self) -> None:
        thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout=2.0)
        with self._lock:
            self._thread = None

    def _sync_loop(self, interval: float) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait(interval)  # a new refusal, or the next round of reading
            self._wake.clear()
            wait = SYNC_SPACING_SECONDS - (time.monotonic() - last)
            if wait > 0 and self._stop.wait(wait):
                break
            if self._stop.is_set():
                break
            last = time.monotonic()
            try:
                self.sync()
            except StorageError as exc:
                if self.sync_failures == 0:
                    logger.warning("failure throttle cannot share counts (counting alone): %s", exc)
                self.sync_failures += 1
            else:
                if self.sync_failures:
                    logger.info("failure throttle shares counts again")
                self.sync_failures = 0

    def sync(self) -> None:
        """Write this instance's new refusals and blocks; read everyone's. One round."""
        shared = self._shared
        if shared is None:
            return
        now = self._clock()
        with self._lock:
            pending, self._pending = dict(self._pending), defaultdict(int)
            blocks, self._pending_blocks = self._pending_blocks, {}
            clients = set(self._failures)
        try:
            if pending:
                shared.add(pending)
                self.writes += 1
            if blocks:
                shared.block(blocks)
                self.writes += 1
        except StorageError:
            with self._lock:  # keep them for the next round
                for key, count in pending.items():
                    self._pending[key] += count
                for client, until in blocks.items():
                    self._pending_blocks.setdefault(client, until)
            raise
        since = bucket_of(now - self._window)
        totals = shared.totals(clients, since) if clients else {}
        blocked = shared.blocked(now)
        if now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL_SECONDS
            shared.purge(since - 1, now)
        with self._lock:
            for key, count in pending.items():
                self._written[key] += count
            self._written = defaultdict(
                int, {key: n for key, n in self._written.items() if key[1] >= since}
            )
            mine: defaultdict[str, int] = defaultdict(int)
            for (client, _bucket), count in self._written.items():
                mine[client] += count
            self._others = {
                client: max(0, total - mine[client]) for client, total in totals.items()
            }
            for client, until in blocked.items():
                if until > self._blocked_until.get(client, 0.0):
                    self._blocked_until[client] = until
                    self._failures.pop(client, None)
            for client, times in list(self._failures.items()):
                if len(times) + self._others.get(client, 0) >= self._limit:
                    self._start_block(client, now)

    def _make_room(self, now: float) -> None:
        """Bound memory under a flood from many addresses (caller holds the lock)."""
        if len(self._failures) < self._max_clients:
            return
        stale = [c for c, times in self._failures.items() if now - times[-1] >= self._window]
        for client in stale:
            del self._failures[client]
        if len(self._failures) >= self._max_clients:
            self._failures.clear()
        expired = [c for c, until in self._blocked_until.items() if now >= until]
        for client in expired:
            del self._blocked_until[client]
