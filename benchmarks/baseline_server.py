"""The baseline for part 2: the MCP SDK's own auth (``AuthSettings`` + a ``TokenVerifier``).

What a server author gets by following the SDK: every request's bearer token goes through
``jwt.decode`` (PyJWT, no cache) in the SDK's ``BearerAuthBackend``, and the SDK's
``RequireAuthMiddleware`` refuses requests without one. Its ``session_status`` tool does
what session-buddy's does — the same :class:`SessionService` read on the same kind of
SQLite file, the same structured result — so the difference is the authentication path.

``python -m benchmarks.baseline_server --port N --data-dir DIR`` with the secret in
``SESSION_BUDDY_SECRET``; served over streamable HTTP at ``/mcp`` with uvicorn, with an
unauthenticated ``GET /healthz`` like session-buddy's (so the test kit starts both alike).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Annotated

import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from starlette.requests import Request
from starlette.responses import JSONResponse

from session_buddy.auth.principal import Principal
from session_buddy.mcp.results import structured
from session_buddy.sessions.models import SessionStatus
from session_buddy.sessions.service import SessionService
from session_buddy.store import SqliteDatabase


class PyJWTVerifier:
    """The SDK's ``TokenVerifier`` protocol, implemented the obvious way with PyJWT."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp"]}
            )
        except jwt.PyJWTError:
            return None
        user_id = claims.get("user_id") or claims.get("sub")
        if not isinstance(user_id, str) or not user_id:
            return None
        return AccessToken(
            token=token,
            client_id=user_id,
            scopes=[],
            expires_at=int(claims["exp"]),
            subject=user_id,
            claims=claims,
        )


def build(secret: str, data_dir: Path, host: str, port: int) -> MCPServer:
    service = SessionService(SqliteDatabase(data_dir / "session-buddy.db").open())
    url = f"http://{host}:{port}"
    server = MCPServer(
        "sdk-auth-baseline",
        token_verifier=PyJWTVerifier(secret),
        auth=AuthSettings(
            issuer_url=url,  # type: ignore[arg-type]
            resource_server_url=f"{url}/mcp",  # type: ignore[arg-type]
            validate_token_resource=False,
        ),
    )

    @server.tool()
    def session_status(working_directory: str) -> Annotated[CallToolResult, SessionStatus]:
        """Whether a session is active in the project, with its last checkpoint."""
        access = get_access_token()
        if access is None:  # RequireAuthMiddleware lets no such request through
            raise RuntimeError("no access token")
        principal = Principal.from_claims(access.claims or {})
        return structured(service.status(principal, working_directory))

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level)
    server = build(os.environ["SESSION_BUDDY_SECRET"], args.data_dir, args.host, args.port)
    app = server.streamable_http_app(streamable_http_path="/mcp", host=args.host)
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, log_level=args.log_level.lower()
    )


if __name__ == "__main__":
    main()
