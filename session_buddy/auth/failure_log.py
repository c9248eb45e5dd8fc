"""Authentication failures, logged for monitoring without letting a flood fill the disk.

At most one line per (reason, client) every ``window`` seconds; the next line carries the
count of failures suppressed meanwhile. Lines name the tool, the reason, the client and a
token fingerprint (12 hex characters of its SHA-256) — never the token or a secret.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from session_buddy.auth.errors import AuthError
from session_buddy.auth.tokens import token_fingerprint

DEFAULT_WINDOW_SECONDS = 10.0
MAX_TRACKED_KEYS = 10_000


class AuthFailureLog:
    """Rate-limited logging of authentication failures."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        window: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger or logging.getLogger("session_buddy.auth")
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        # (reason, client) -> [window start, failures suppressed in this window]
        self._windows: dict[tuple[str, str], list[float]] = {}
        self.lines_written = 0

    def record(
        self,
        error: AuthError,
        *,
        token: object = None,
        tool: str | None = None,
        client: str = "local",
    ) -> bool:
        """Count a failure; returns True when a log line was written for it."""
        now = self._clock()
        key = (error.reason, client)
        with self._lock:
            state = self._windows.get(key)
            if state is not None and now - state[0] < self._window:
                state[1] += 1
                return False
            suppressed = int(state[1]) if state is not None else 0
            if len(self._windows) >= MAX_TRACKED_KEYS:
                self._windows.clear()
            self._windows[key] = [now, 0]
            self.lines_written += 1
        fingerprint = token_fingerprint(token) if token is not None else "-"
        fields = {
            "event": "auth_failure",
            "reason": error.reason,
            "tool": tool or "-",
            "client": client,
            "token_fp": fingerprint,
            "suppressed": suppressed,
        }
        self._logger.warning(
            "authentication failed: reason=%s detail=%s tool=%s client=%s token_fp=%s%s",
            error.reason,
            error.detail,
            tool or "-",
            client,
            fingerprint,
            f" (+{suppressed} similar suppressed in the last {self._window:g}s)"
            if suppressed
            else "",
            extra={"fields": fields},
        )
        return True
