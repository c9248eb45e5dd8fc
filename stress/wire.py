"""Talking to a server: the official MCP client, and the streamable HTTP wire by hand.

:func:`mcp_http` and :func:`mcp_stdio` open the official client (``mcp.Client``). The
``raw_*`` helpers speak the 2026-07-28 streamable HTTP wire directly (one self-contained
POST per call, no session) for what the official client cannot send: a bearer header on
one request, arguments that break the schema, thousands of forged calls.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from stress.harness import CALL_TIMEOUT, Context

PROTOCOL_VERSION = "2026-07-28"


# -- the official MCP client -----------------------------------------------------------


@contextlib.asynccontextmanager
async def mcp_http(
    url: str, *, source: str | None = None, timeout: float = CALL_TIMEOUT
) -> AsyncIterator[Client]:
    """The official client over streamable HTTP, optionally from a given source address."""
    transport = httpx2.AsyncHTTPTransport(local_address=source) if source else None
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(timeout), transport=transport, trust_env=False)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        yield client


@contextlib.asynccontextmanager
async def mcp_stdio(ctx: Context, data_dir: Path, errlog: TextIO) -> AsyncIterator[Client]:
    """The official client, starting ``session-buddy serve`` (stdio) as its subprocess."""
    env = ctx.env(data_dir)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "session_buddy", "serve", "--log-level", "DEBUG"],
        env={k: v for k, v in env.items() if k.startswith(("SESSION_BUDDY_", "PYTHON"))},
        cwd=str(ctx.cwd),
    )
    async with Client(stdio_client(params, errlog=errlog)) as client:
        yield client


def result_text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def is_success(result: CallToolResult) -> bool:
    return not result.is_error


async def call(
    client: Client, tool: str, arguments: dict[str, Any], *, timeout: float = CALL_TIMEOUT
) -> CallToolResult:
    with anyio.fail_after(timeout):
        return await client.call_tool(tool, arguments)


# -- the wire, by hand ----------------------------------------------------------------------


def _meta() -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "session-buddy-stress", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }


def raw_tool_call(
    tool: str, arguments: Any, *, request_id: int = 1, bearer: str | bytes | None = None
) -> tuple[dict[str, Any], bytes]:
    """Headers and body of a self-contained 2026-07-28 ``tools/call`` POST."""
    headers: dict[str, Any] = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": PROTOCOL_VERSION,
        "mcp-method": "tools/call",
        "mcp-name": tool,
    }
    if bearer is not None:
        value = bearer if isinstance(bearer, bytes) else bearer.encode("utf-8")
        headers["authorization"] = b"Bearer " + value
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": _meta()},
    }
    return headers, json.dumps(body).encode()


@dataclass
class RawReply:
    """An HTTP answer to a raw tool call, classified."""

    status: int
    result: dict[str, Any] | None = None
    rpc_error: dict[str, Any] | None = None
    body: str = ""
    www_authenticate: str | None = None

    @property
    def tool_ok(self) -> bool:
        """200 with a tool result that is not an error: the call went through."""
        return self.status == 200 and self.result is not None and not self.result.get("isError")

    @property
    def text(self) -> str:
        if self.result is None:
            return ""
        return "\n".join(b.get("text", "") for b in self.result.get("content", []))

    @property
    def authenticated_as(self) -> str | None:
        """For ``whoami``: the user the server authenticated, if it did."""
        if not self.tool_ok or self.result is None:
            return None
        structured = self.result.get("structuredContent") or {}
        return structured.get("user_id") if structured.get("authenticated") else None


def parse_reply(response: httpx.Response) -> RawReply:
    reply = RawReply(
        status=response.status_code,
        body=response.text[:500],
        www_authenticate=response.headers.get("www-authenticate"),
    )
    kind = response.headers.get("content-type", "")
    messages: list[Any] = []
    if "text/event-stream" in kind:
        for line in response.text.splitlines():
            if line.startswith("data:"):
                with contextlib.suppress(ValueError):
                    messages.append(json.loads(line[5:]))
    elif "json" in kind:
        with contextlib.suppress(ValueError):
            messages.append(response.json())
    for message in messages:
        if not isinstance(message, dict) or "jsonrpc" not in message:
            continue
        if isinstance(message.get("result"), dict):
            reply.result = message["result"]
        elif isinstance(message.get("error"), dict):
            reply.rpc_error = message["error"]
    return reply


async def raw_call(
    http: httpx.AsyncClient,
    url: str,
    tool: str,
    arguments: Any,
    *,
    bearer: str | bytes | None = None,
) -> RawReply:
    headers, body = raw_tool_call(tool, arguments, bearer=bearer)
    response = await http.post(url, headers=headers, content=body)
    return parse_reply(response)


def raw_client(source: str | None = None, timeout: float = CALL_TIMEOUT) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
    return httpx.AsyncClient(timeout=timeout, transport=transport, trust_env=False)
