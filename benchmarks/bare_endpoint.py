"""The floor: a bare Starlette endpoint on uvicorn answering every POST with one fixed
JSON body (a JSON-RPC result the size of a ``whoami`` answer), and ``GET /healthz``.

No MCP, no authentication, no routing beyond Starlette's: what any Python HTTP server on
this stack costs per request. ``python -m benchmarks.bare_endpoint --port N``.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BODY = {
    "jsonrpc": "2.0",
    "id": 1,
    "result": {
        "content": [{"type": "text", "text": "Authenticated as bench-user (issuer (none))."}],
        "structuredContent": {
            "auth_enabled": True,
            "authenticated": True,
            "user_id": "bench-user",
            "issuer": None,
            "role": None,
            "expires_at": "2026-01-01T00:00:00Z",
            "privileged": False,
            "scopes": None,
        },
        "isError": False,
    },
}
ANSWER = JSONResponse(BODY).body


async def answer(request: Request) -> Response:
    await request.body()  # read what the client sent, as any endpoint must
    return Response(ANSWER, media_type="application/json")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def app() -> Starlette:
    return Starlette(routes=[Route("/mcp", answer, methods=["POST"]), Route("/healthz", healthz)])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_endpoint")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    uvicorn.run(
        app(),
        host=args.host,
        port=args.port,
        log_config=None,
        log_level=args.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
