"""What can go wrong when calling session-buddy, one exception class per kind."""

from __future__ import annotations

from session_buddy.auth.errors import AUTH_FAILED_PREFIX, AUTHZ_FAILED_PREFIX


class SessionBuddyError(Exception):
    """Base class of every error :class:`~session_buddy.client.SessionBuddyClient` raises."""


class SessionBuddyConnectionError(SessionBuddyError):
    """The server could not be started or reached, or the connection broke."""


class SessionBuddyAuthError(SessionBuddyError):
    """The server refused the credentials (or the client has none it can use).

    ``reason`` is the server's short public reason (``"Token has expired"``);
    ``str(error)`` is the full line (``"❌ Authentication failed: Token has expired"``).
    ``retry_after`` is set (seconds) when the server throttled this client.
    """

    def __init__(self, message: str, *, reason: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.reason = reason if reason is not None else reason_of(message)
        self.retry_after = retry_after


class SessionBuddyToolError(SessionBuddyError):
    """A tool ran and refused the request (bad path, no active session, …)."""

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message)
        self.tool = tool


def reason_of(message: str) -> str:
    """``"Token has expired"`` from ``"❌ Authentication failed: Token has expired"``."""
    for prefix in (AUTH_FAILED_PREFIX, AUTHZ_FAILED_PREFIX):
        if message.startswith(prefix):
            return message[len(prefix) :].lstrip(": ").strip()
    return message


def is_auth_failure(message: str) -> bool:
    """True for the ``❌ Authentication failed`` and ``❌ Authorization failed`` lines."""
    return message.startswith((AUTH_FAILED_PREFIX, AUTHZ_FAILED_PREFIX))
