"""A Python client for session-buddy, for Mahavishnu and other projects.

::

    from session_buddy.client import SessionBuddyClient

    async with SessionBuddyClient.stdio(token=token) as sb:
        session = await sb.start(working_directory="/path/to/project")

    oauth = ClientCredentials("mahavishnu", secret, issuer="https://idp.example.com/realms/x")
    async with SessionBuddyClient.http("https://sessions.example.com/mcp", oauth=oauth) as sb:
        await sb.whoami()
"""

from __future__ import annotations

from session_buddy.client.client import DEFAULT_URL, SessionBuddyClient, ToolResult
from session_buddy.client.credentials import MintedTokens, NoToken, StaticToken, TokenSource
from session_buddy.client.errors import (
    SessionBuddyAuthError,
    SessionBuddyConnectionError,
    SessionBuddyError,
    SessionBuddyToolError,
)
from session_buddy.client.oauth import ClientCredentials

__all__ = [
    "DEFAULT_URL",
    "ClientCredentials",
    "MintedTokens",
    "NoToken",
    "SessionBuddyAuthError",
    "SessionBuddyClient",
    "SessionBuddyConnectionError",
    "SessionBuddyError",
    "SessionBuddyToolError",
    "StaticToken",
    "TokenSource",
    "ToolResult",
]
