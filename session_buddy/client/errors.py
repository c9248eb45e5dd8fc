"""What can go wrong when calling session-buddy, one exception class per kind."""

from __future__ import annotations

# The ``kind`` of a tool's error data (session_buddy.mcp.error_meta) that means "refused
# credentials".
AUTH_ERROR_KINDS = frozenset({"authentication", "authorization"})


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

    def __init__(self, message: str, *, reason: str, retry_after: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


class SessionBuddyToolError(SessionBuddyError):
    """A tool ran and refused the request (bad path, no active session, …)."""

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message)
        self.tool = tool
