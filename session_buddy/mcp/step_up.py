"""The MCP authorization spec's step-up: a bearer caller whose token lacks the scope a tool
needs gets HTTP ``403`` before the tool runs, with ``WWW-Authenticate: Bearer
error="insufficient_scope", scope="write", resource_metadata=…`` — what an OAuth client
reads to ask its authorization server for a token with that scope and retry.

The rule is the tool layer's (:class:`~session_buddy.mcp.tools.ToolSpec` names each tool's
scope; :func:`~session_buddy.auth.scopes.missing_scope` decides), applied here to the
verified ``Authorization`` header only. A call that carries a ``token`` argument is left to
the tool, which judges that token (its refusal stays a tool error, as over stdio), and so is
every token that covers every tool's scope: for those — ``admin``, ``read write``, a token
without a scope claim while scopes are not required — the body is never read. Otherwise
the ``tools/call`` body is read (at most 4 MiB, the SDK's own limit) and replayed.

The 403's body is a JSON-RPC error for the request's id, which both official SDK clients
hand to the caller as the call's error (``❌ Authorization failed: missing scope
'write'``); its ``data`` carries the OAuth error, the scope and our ``reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from session_buddy.auth.errors import MissingScopeError
from session_buddy.auth.failure_log import AuthFailureLog
from session_buddy.auth.principal import Principal
from session_buddy.auth.scopes import ImpliedBy, missing_scope
from session_buddy.auth.tokens import presented
from session_buddy.mcp.body import MAX_INSPECTED_BODY_BYTES, RequestBody
from session_buddy.mcp.challenge import BearerChallenge
from session_buddy.mcp.refusals import RefusalReport
from session_buddy.mcp.request import BearerUser, peer_host

FORBIDDEN = -32003
"""The JSON-RPC error code of a 403 (in the range JSON-RPC leaves to servers)."""


class ScopeStepUp:
    """ASGI middleware behind the authentication middleware: 403 for a ``tools/call`` whose
    bearer token lacks the tool's scope.

    ``tool_scopes``: each tool's required scope (None: any verified caller);
    ``implied_by`` and ``require_claim``: the scope rule's options, as the guard uses them.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tool_scopes: Mapping[str, str | None],
        implied_by: ImpliedBy,
        require_claim: bool,
        challenge: BearerChallenge,
        refusals: RefusalReport,
        failure_log: AuthFailureLog,
        max_body_bytes: int = MAX_INSPECTED_BODY_BYTES,
    ) -> None:
        self.app = app
        self._tool_scopes = {name: scope for name, scope in tool_scopes.items() if scope}
        self._every_scope = tuple(sorted(set(self._tool_scopes.values())))
        self._implied_by = implied_by
        self._require_claim = require_claim
        self._challenge = challenge
        self._refusals = refusals
        self._failure_log = failure_log
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not isinstance(user, BearerUser)
            or self._lacking(user.principal, self._every_scope) is None
        ):
            await self.app(scope, receive, send)
            return
        body = RequestBody(receive, self._max_body_bytes)
        if await body.read() is None:
            # Over the SDK's own limit (or the client left): answered as the SDK would.
            await Response("Request body too large", status_code=413)(scope, receive, send)
            return
        parsed = await body.json()
        refused = self._refused_call(user.principal, parsed)
        if refused is None:
            await self.app(scope, body.replay(), send)
            return
        tool, error = refused
        client = peer_host(scope)
        self._failure_log.record(error, tool=tool, client=client)
        await self._refusals.report(
            error,
            client=client,
            token=None,
            body=body,
            permission=error.scope,
            principal=user.principal,
        )
        await self._forbidden(error, request_id(parsed))(scope, receive, send)

    def _lacking(self, principal: Principal, needed: tuple[str, ...]) -> str | None:
        return missing_scope(
            principal.scopes,
            needed,
            require_claim=self._require_claim,
            implied_by=self._implied_by,
        )

    def _refused_call(
        self, principal: Principal, parsed: Any
    ) -> tuple[str, MissingScopeError] | None:
        """The first ``tools/call`` of the body that the bearer token may not make."""
        for message in parsed if isinstance(parsed, list) else [parsed]:
            if not isinstance(message, dict) or message.get("method") != "tools/call":
                continue
            params = message.get("params")
            if not isinstance(params, dict):
                continue
            name, arguments = params.get("name"), params.get("arguments")
            if isinstance(arguments, dict) and presented(arguments.get("token")):
                continue  # the tool judges the token argument itself
            needed = self._tool_scopes.get(name) if isinstance(name, str) else None
            lacking = None if needed is None else self._lacking(principal, (needed,))
            if lacking is not None and isinstance(name, str):
                return name, MissingScopeError(lacking)
        return None

    def _forbidden(self, error: MissingScopeError, request: object) -> JSONResponse:
        return JSONResponse(
            {
                "jsonrpc": "2.0",
                "id": request,
                "error": {
                    "code": FORBIDDEN,
                    "message": error.user_message,
                    "data": {
                        "error": "insufficient_scope",
                        "error_description": error.public_message,
                        "scope": error.scope,
                        "reason": error.reason,
                    },
                },
            },
            status_code=error.status,
            headers={
                "WWW-Authenticate": self._challenge.header(
                    error="insufficient_scope",
                    description=error.public_message,
                    scope=error.scope,
                )
            },
        )


def request_id(parsed: Any) -> object:
    """The id of a single JSON-RPC request (a string or an integer), else None."""
    if isinstance(parsed, dict):
        identifier = parsed.get("id")
        if isinstance(identifier, str) or (
            isinstance(identifier, int) and not isinstance(identifier, bool)
        ):
            return identifier
    return None
