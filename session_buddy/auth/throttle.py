"""Slow down an HTTP client that keeps presenting bad tokens.

The rule: after :data:`FAILURE_LIMIT` (20) bad credentials from one client address within
:data:`FAILURE_WINDOW_SECONDS` (60 s), that client is *blocked* for
:data:`BLOCK_SECONDS` (60 s). While blocked, a request that presents a bad credential
gets ``429 Too Many Requests`` with ``Retry-After`` instead of being verified and answered
in full; a request with a valid credential, or with none, is served as usual — a valid
token is never throttled. When the block ends, counting starts afresh.

What counts as a bad credential (:func:`is_bad_credential`): a token that is malformed,
badly signed, expired, revoked or otherwise invalid, and an Authorization header whose
user differs from the ``token`` argument's. A *missing* token, a role the tool does not
accept, and server-side problems (unusable secret, unreadable revocation store) do not
count: they say nothing about someone guessing tokens.

Both kinds of credential feed the same counter. The bearer middleware counts bad
``Authorization`` headers itself; bad ``token`` arguments are found by the tool layer,
which reports them through a callback the middleware leaves in the request's ASGI state
(see :mod:`session_buddy.mcp.bearer`). The counter is keyed by the peer's IP address
only (its port changes with every connection); behind a reverse proxy every client
shares the proxy's address.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from session_buddy.auth import errors

FAILURE_LIMIT = 20
FAILURE_WINDOW_SECONDS = 60.0
BLOCK_SECONDS = 60.0
MAX_TRACKED_CLIENTS = 10_000

_BAD_CREDENTIALS = (
    errors.InvalidTokenError,
    errors.ExpiredTokenError,
    errors.RevokedTokenError,
    errors.IdentityMismatchError,
)


def is_bad_credential(error: errors.AuthError) -> bool:
    """Whether ``error`` means the caller presented a credential we refuse."""
    return isinstance(error, _BAD_CREDENTIALS)


class AuthFailureThrottle:
    """Counts bad credentials per client and says when a client is blocked.

    Thread-safe: tool calls run in worker threads and report failures from there.
    ``clock`` returns seconds (monotonic); tests pass a fake one.
    """

    def __init__(
        self,
        *,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW_SECONDS,
        block: float = BLOCK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
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
            if len(times) < self._limit:
                return False
            del self._failures[client]
            self._blocked_until[client] = now + self._block
            return True

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
