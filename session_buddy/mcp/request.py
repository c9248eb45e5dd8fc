"""What a tool call knows about the HTTP request behind it, in one place.

The streamable HTTP transport runs a tool in another task than the ASGI request, so the
bearer middleware leaves its findings in the request's ASGI ``scope["state"]`` and a tool
reads them through its ``Context``. The keys, and the functions that read them, live here:

* :data:`BEARER_STATE_KEY` — the :class:`Principal` of a verified ``Authorization`` header;
* :data:`AUTH_FAILURE_REPORTER_KEY` — a callable ``reporter(error)`` that counts a bad
  ``token`` argument towards the client's failure throttle.

Over stdio there is no request: every function answers "nothing" (and ``client_of`` says
``"stdio"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context

from session_buddy.auth.errors import AuthError
from session_buddy.auth.principal import Principal

BEARER_STATE_KEY = "session_buddy_principal"
AUTH_FAILURE_REPORTER_KEY = "session_buddy_report_auth_failure"
STDIO_CLIENT = "stdio"

FailureReporter = Callable[[AuthError], None]


def request_of_context(context: object) -> Any:
    """The HTTP request behind an MCP ``Context``, or None (stdio, or no request)."""
    if not isinstance(context, Context):
        return None
    try:
        return context.request_context.request
    except (ValueError, AttributeError):
        return None


def request_state(request: Any) -> dict[str, Any]:
    """The ASGI scope's ``state`` of an HTTP request (empty for stdio or no request)."""
    state = getattr(request, "scope", {}).get("state") if request is not None else None
    return state if isinstance(state, dict) else {}


def bearer_principal_of(request: Any) -> Principal | None:
    """The identity the HTTP bearer middleware verified for this request, if any."""
    principal = request_state(request).get(BEARER_STATE_KEY)
    return principal if isinstance(principal, Principal) else None


def failure_reporter_of(request: Any) -> FailureReporter | None:
    """The callable that counts a bad ``token`` argument for this request's client."""
    reporter = request_state(request).get(AUTH_FAILURE_REPORTER_KEY)
    return reporter if callable(reporter) else None


def client_of(request: Any) -> str:
    """The HTTP peer's IP address, or ``"stdio"`` when there is no HTTP request.

    The address only, not the port: a port changes with every connection, and failure
    logging is rate-limited per client, so a flood over new connections stays one line.
    """
    client = getattr(request, "client", None)
    return str(client.host) if client is not None else STDIO_CLIENT
