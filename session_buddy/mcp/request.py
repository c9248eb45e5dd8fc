"""What a tool call knows about the HTTP request behind it, in one place.

The streamable HTTP transport runs a tool in another task than the ASGI request, so the
HTTP layer leaves its findings in the request's ASGI scope and a tool reads them through
its ``Context``:

* ``scope["user"]`` — a :class:`BearerUser` (the :class:`Principal` of a verified
  ``Authorization`` header) where Starlette's authentication middleware put it;
* ``scope["state"][AUTH_FAILURE_REPORTER_KEY]`` — a callable ``reporter(error)`` that
  counts a bad ``token`` argument towards the client's failure throttle.

Over stdio there is no request: every function answers "nothing" (and ``client_of`` says
``"stdio"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from starlette.types import Scope

from session_buddy.auth.errors import AuthError
from session_buddy.auth.principal import Principal

AUTH_FAILURE_REPORTER_KEY = "session_buddy_report_auth_failure"
STDIO_CLIENT = "stdio"

FailureReporter = Callable[[AuthError], None]


class BearerUser(AuthenticatedUser):
    """The caller a verified ``Authorization: Bearer`` header names (``scope["user"]``).

    It is the SDK's ``AuthenticatedUser`` too, so the SDK's session manager binds each MCP
    session to the verified caller that opened it — compared by ``authorization_context``:
    the principal's owner (``user_id``, or ``sub@issuer`` for an identity provider) and the
    token's issuer — and answers anyone else's request for that session, ``DELETE``
    included, as if the session did not exist (404). The SDK gets the identity, never the
    token. A client without the header (the ``token`` argument) owns its sessions as
    "nobody": the header and the argument are two ways in, and a session opened one way is
    not used the other. Stateless servers have no sessions to bind.
    """

    def __init__(self, principal: Principal) -> None:
        super().__init__(
            AccessToken(
                token="",  # identity only: the SDK never needs the token
                client_id=principal.owner,
                scopes=sorted(principal.scopes) if principal.scopes is not None else [],
                subject=principal.owner,
                claims={"iss": principal.issuer} if principal.issuer is not None else {},
            )
        )
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.user_id

    @property
    def identity(self) -> str:
        return self.principal.user_id


def peer_host(scope: Scope) -> str:
    """The client's IP address (the TCP peer, or what a trusted proxy forwarded): what
    the failure log, the throttle and the audit key on; ports change per connection."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


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
    """The identity the HTTP bearer authentication verified for this request, if any."""
    user = getattr(request, "scope", {}).get("user") if request is not None else None
    return user.principal if isinstance(user, BearerUser) else None


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
