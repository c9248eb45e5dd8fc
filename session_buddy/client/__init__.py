"""A Python client for session-buddy, for Mahavishnu and other projects.

::

    from session_buddy.client import SessionBuddyClient

    async with SessionBuddyClient.stdio(token=token) as sb:
        session = await sb.start(working_directory="/path/to/project")

    # a project on another machine than the server: its id and the state of your clone
    async with SessionBuddyClient.http(url, token=token) as sb:
        session = await sb.start(project=describe_checkout("/home/me/repo"))

    # tokens from your identity provider, by client credentials
    oauth = ClientCredentials("mahavishnu", secret, issuer="https://idp.example.com/realms/x")
    async with SessionBuddyClient.http("https://sessions.example.com/mcp", oauth=oauth) as sb:
        await sb.whoami()
"""

from __future__ import annotations

from session_buddy.client.checkout import describe_checkout
from session_buddy.client.client import DEFAULT_URL, SessionBuddyClient, ToolResult
from session_buddy.client.credentials import MintedTokens, NoToken, StaticToken, TokenSource
from session_buddy.client.errors import (
    SessionBuddyAuthError,
    SessionBuddyConnectionError,
    SessionBuddyError,
    SessionBuddyToolError,
)
from session_buddy.client.oauth import ClientCredentials
from session_buddy.sessions.target import ReportedProject

__all__ = [
    "DEFAULT_URL",
    "ClientCredentials",
    "MintedTokens",
    "NoToken",
    "ReportedProject",
    "SessionBuddyAuthError",
    "SessionBuddyClient",
    "SessionBuddyConnectionError",
    "SessionBuddyError",
    "SessionBuddyToolError",
    "StaticToken",
    "TokenSource",
    "ToolResult",
    "describe_checkout",
]
