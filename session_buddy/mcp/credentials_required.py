"""Bearer-only HTTP: a request that presents no credentials at all is answered ``401``.

With ``SESSION_BUDDY_BEARER_ONLY`` (on by default when an OAuth issuer is configured) the
``Authorization`` header is the only way in, so a request without one — ``initialize``
included — can do nothing but open an MCP session nobody can use. It gets ``401`` with the
server's bearer challenge instead (``resource_metadata``, ``scope``; no ``error``, RFC 6750
§3.1), which is where an OAuth client starts its login. Without this a stranger could
open sessions by the thousand and fill the server's session table.

Exempt: the paths a load balancer or a scraper needs without credentials (``/healthz``,
``/metrics``), and servers where tokens are optional (``SESSION_BUDDY_AUTH_REQUIRED=false``,
migration mode: the caller runs as ``anonymous`` on purpose). Refusals here are not bad
credentials: the failure throttle does not count them; they are reported to the recorders.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from session_buddy.auth.errors import TokenRequiredError
from session_buddy.mcp.body import MAX_INSPECTED_BODY_BYTES, RequestBody
from session_buddy.mcp.challenge import BearerChallenge
from session_buddy.mcp.refusals import RefusalReport, refusal_response
from session_buddy.mcp.request import BearerUser, peer_host


class CredentialsRequired:
    """ASGI middleware behind the authentication middleware: 401 for a request on any path
    but ``exempt`` that carries no verified ``Authorization`` header."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        exempt: Collection[str],
        challenge: BearerChallenge,
        refusals: RefusalReport,
        max_body_bytes: int = MAX_INSPECTED_BODY_BYTES,
    ) -> None:
        self.app = app
        self._exempt = frozenset(exempt)
        self._challenge = challenge
        self._refusals = refusals
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in self._exempt
            or isinstance(scope.get("user"), BearerUser)
        ):
            await self.app(scope, receive, send)
            return
        error = TokenRequiredError("no Authorization header on a bearer-only server")
        body = RequestBody(receive, self._max_body_bytes)
        await self._refusals.report(error, client=peer_host(scope), token=None, body=body)
        answer = refusal_response(error, self._challenge, presented=False)
        await answer(scope, receive, send)
