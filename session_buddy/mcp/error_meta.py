"""The machine-readable side of a tool's error result: ``{kind, reason, message}`` in ``_meta``.

Every tool declares an output schema, and clients check ``structuredContent`` against it —
the TypeScript SDK's ``Client.callTool`` (Claude Code, the Inspector, Cursor) even on error
results. So an error result carries no structured content at all: its text is the message,
verbatim, and the same as data travels in the result's ``_meta`` under
:data:`ERROR_META_KEY`, a key in our own namespace (MCP reserves ``_meta`` keys for such
extensions and every client passes them through untouched)::

    {"content": [{"type": "text", "text": "❌ Authorization failed: missing scope 'write'"}],
     "isError": true,
     "_meta": {"session-buddy/error": {"kind": "authorization", "reason": "missing_scope",
                                       "message": "missing scope 'write'"}}}

The server writes it (:mod:`session_buddy.mcp.results`) and reads it back for its metrics;
:class:`~session_buddy.client.SessionBuddyClient` reads it instead of parsing the text.
This module imports nothing of the server, so the client may use it.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from mcp_types import CallToolResult

ERROR_META_KEY = "session-buddy/error"
"""The ``_meta`` key of a tool error's data (prefix ``session-buddy/``, MCP's key syntax)."""

ErrorKind = Literal["authentication", "authorization", "session", "storage"]


class ToolErrorData(TypedDict):
    """What a refused or failed tool call says as data."""

    kind: ErrorKind
    reason: str
    """A stable code: the auth error's ``reason``, the session error's, the storage kind."""
    message: str
    """The short public text (``"Token has expired"``), without the ``❌ …:`` prefix."""


def error_meta(data: ToolErrorData) -> dict[str, Any]:
    """The ``_meta`` object of an error result carrying ``data``."""
    return {ERROR_META_KEY: dict(data)}


def error_data(result: CallToolResult) -> dict[str, Any] | None:
    """The error data of ``result``, if it is an error result that carries any.

    Read defensively: it may come from another server (or another version of this one).
    """
    if not result.is_error or not isinstance(result.meta, dict):
        return None
    data = result.meta.get(ERROR_META_KEY)
    return data if isinstance(data, dict) else None
