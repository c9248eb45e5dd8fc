"""Talking to a server: the official MCP client, and the streamable HTTP wire by hand.

The official client comes from the kit (:func:`testkit.mcp.mcp_http`, ``mcp_stdio``);
:func:`call` bounds one of its calls in time. The ``raw_*`` helpers speak the 2026-07-28
streamable HTTP wire directly (one self-contained POST per call, no session) for what the
official client cannot send: a bearer header on one request, arguments that break the
schema, thousands of forged calls.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from mcp import Client
from mcp_types import CallToolResult

from stress.harness import CALL_TIMEOUT
from testkit.mcp import MODERN_PROTOCOL, modern_meta, tools_call

PROTOCOL_VERSION = MODERN_PROTOCOL
HTTP_HEADER_LIMIT = 16 * 1024  # uvicorn/h11 refuses longer header blocks outright


# -- the official MCP client -----------------------------------------------------------


async def call(
    client: Client, tool: str, arguments: dict[str, Any], *, timeout: float = CALL_TIMEOUT
) -> CallToolResult:
    with anyio.fail_after(timeout):
        return await client.call_tool(tool, arguments)


# -- the wire, by hand ----------------------------------------------------------------------


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
    body = tools_call(tool, arguments, request_id=request_id)
    body["params"]["_meta"] = modern_meta("session-buddy-stress")
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


async def raw_message(
    http: httpx.AsyncClient, url: str, message: Any, *, bearer: str | None = None
) -> RawReply:
    """POST any JSON value (``bytes``: sent as they are) as a 2026-07-28 request without the
    ``mcp-method``/``mcp-name`` headers, which could not carry what a hostile body names.
    ``json.dumps`` escapes a lone surrogate or a NUL (``\\ud800``); parsers read it back."""
    headers: dict[str, Any] = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": PROTOCOL_VERSION,
    }
    if bearer is not None:  # as UTF-8 bytes: HTTP carries them, httpx would refuse the str
        headers["authorization"] = b"Bearer " + bearer.encode("utf-8")
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return parse_reply(await http.post(url, headers=headers, content=body))


def raw_client(source: str | None = None, timeout: float = CALL_TIMEOUT) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
    return httpx.AsyncClient(timeout=timeout, transport=transport, trust_env=False)
