"""Each MCP session belongs to the caller that opened it: the SDK's check, fed our identity.

The SDK's session manager (``mcp`` 2.x, ``StreamableHTTPSessionManager``) remembers who
opened a session — the ``AuthenticatedUser`` that Starlette's authentication leaves at
``scope["user"]``, compared by ``authorization_context``: client id, issuer, subject —
and answers any request for that session from someone else, ``DELETE`` included, as if
the session did not exist (404 "Session not found"). Our bearer middleware leaves a
:class:`~session_buddy.auth.principal.Principal` in the scope's state instead, so without
:class:`SessionOwner` every session would be unowned: anyone with a valid token of their
own and someone else's session id could end that session.

:class:`SessionOwner` hands the SDK the verified identity (user id and issuer; never the
token, which the SDK would only carry along). A client that sends no ``Authorization``
header (the ``token`` argument) owns its sessions as "nobody", as before: the header and
the argument are two ways in, and a session opened one way is not used the other.
Stateless servers have no sessions, so there is nothing to bind.
"""

from __future__ import annotations

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.types import ASGIApp, Receive, Scope, Send

from session_buddy.auth.principal import Principal
from session_buddy.mcp.request import BEARER_STATE_KEY


def session_user(principal: Principal) -> AuthenticatedUser:
    """The SDK's notion of who ``principal`` is (what it compares a session's owner by)."""
    claims = {"iss": principal.issuer} if principal.issuer is not None else {}
    scopes = sorted(principal.scopes) if principal.scopes is not None else []
    return AuthenticatedUser(
        AccessToken(
            token="",  # never needed: identity only
            client_id=principal.user_id,
            scopes=scopes,
            subject=principal.user_id,
            claims=claims,
        )
    )


class SessionOwner:
    """ASGI middleware (inside the bearer middleware): ``scope["user"]`` for the SDK from
    the principal a verified bearer header left in the scope's state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("state", {}).get(BEARER_STATE_KEY)
        if isinstance(principal, Principal):
            scope["user"] = session_user(principal)
        await self.app(scope, receive, send)
