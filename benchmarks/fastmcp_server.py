"""The FastMCP comparison: FastMCP 4.1.6 with its ``JWTVerifier`` (HS256), one ``whoami``.

What a server author gets by following FastMCP's documentation for a shared-secret JWT:
``FastMCP(auth=JWTVerifier(public_key=secret, algorithm="HS256"))``, every request's
bearer token verified by FastMCP (Authlib), the tool reading the verified claims through
``get_access_token()``. Its ``whoami`` answers what session-buddy's does — the same
:class:`~session_buddy.mcp.identity.Identity`, built from the same
:class:`~session_buddy.auth.principal.Principal` — so the difference is the framework.

``python -m benchmarks.fastmcp_server --port N`` with the secret in
``SESSION_BUDDY_SECRET``; streamable HTTP at ``/mcp`` (FastMCP's defaults: MCP sessions,
SSE answers), uvicorn, and an unauthenticated ``GET /healthz`` so the test kit starts it
like ours.
"""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.auth import JWTVerifier
from fastmcp.server.dependencies import get_access_token
from starlette.requests import Request
from starlette.responses import JSONResponse

from session_buddy.auth.principal import Principal
from session_buddy.mcp.identity import Identity


def build(secret: str) -> FastMCP:
    server = FastMCP("fastmcp-jwt-baseline", auth=JWTVerifier(public_key=secret, algorithm="HS256"))

    @server.tool()
    def whoami() -> Identity:
        """Whether authentication is enabled, and who the verified caller is."""
        access = get_access_token()
        if access is None:  # FastMCP's auth middleware lets no such request through
            raise RuntimeError("no access token")
        return Identity.of(Principal.from_claims(access.claims or {}), auth_enabled=True)

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fastmcp_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level)
    app = build(os.environ["SESSION_BUDDY_SECRET"]).http_app(path="/mcp")
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, log_level=args.log_level.lower()
    )


if __name__ == "__main__":
    main()
