"""Talking MCP to a real server: the official client's transports, and JSON-RPC by hand.

:func:`mcp_http` and :func:`mcp_stdio` open the official client (``mcp.client.Client``);
their ``*_transport`` halves are for callers that pick the client's mode themselves.
:func:`post_json_rpc` sends one JSON-RPC message as a plain HTTP POST, for what the client
will not send (a bad ``Authorization`` header, a call before ``initialize``).
:class:`McpConnection` drives a client from synchronous tests through a blocking portal
(:func:`connected` brings its own).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Tool

from testkit.server import SERVE

CALL_TIMEOUT = 60.0
JSON_RPC_HEADERS = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}


# -- the official client ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def http_transport(
    url: str,
    *,
    bearer: str | None = None,
    source: str | None = None,
    timeout: float = CALL_TIMEOUT,
) -> AsyncIterator[Any]:
    """Streamable HTTP, with an optional bearer header, from an optional source address."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    async with (
        httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(timeout),
            transport=httpx2.AsyncHTTPTransport(local_address=source),
            trust_env=False,
        ) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


def stdio_transport(
    env: dict[str, str], cwd: Path, errlog: TextIO, *args: str, command: Sequence[str] = SERVE
) -> AbstractAsyncContextManager[Any]:
    """``serve ARGS`` (stdio by default) as the client's subprocess; its stderr to ``errlog``."""
    params = StdioServerParameters(
        command=command[0], args=[*command[1:], *args], env=env, cwd=str(cwd)
    )
    return stdio_client(params, errlog=errlog)


def mcp_http(
    url: str,
    *,
    bearer: str | None = None,
    source: str | None = None,
    timeout: float = CALL_TIMEOUT,
) -> Client:
    """The official client over streamable HTTP (use as ``async with``)."""
    return Client(http_transport(url, bearer=bearer, source=source, timeout=timeout))


def mcp_stdio(env: dict[str, str], cwd: Path, errlog: TextIO, *args: str) -> Client:
    """The official client, starting ``serve ARGS`` over stdio (use as ``async with``)."""
    return Client(stdio_transport(env, cwd, errlog, *args))


@dataclass
class McpConnection:
    """A connected official MCP client, driven synchronously through a blocking portal."""

    portal: BlockingPortal
    client: Client
    _exit: Any = field(repr=False)

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return self.portal.call(self.client.call_tool, tool, arguments)

    def tools(self) -> list[Tool]:
        return self.portal.call(self.client.list_tools).tools

    def close(self) -> None:
        self._exit(None, None, None)


def connect(
    portal: BlockingPortal, transport: AbstractAsyncContextManager[Any], mode: str = "auto"
) -> McpConnection:
    """Connect the official client; ``mode="legacy"`` forces the initialize handshake."""
    manager = portal.wrap_async_context_manager(Client(transport, mode=mode))
    client = manager.__enter__()
    return McpConnection(portal, client, manager.__exit__)


@contextlib.contextmanager
def connected(url: str, **http: Any) -> Iterator[McpConnection]:
    """The official client over streamable HTTP for synchronous code, with a portal of its
    own: ``with connected(server.url) as client: client.call(...)``."""
    with start_blocking_portal() as portal:
        client = connect(portal, http_transport(url, **http))
        try:
            yield client
        finally:
            client.close()


# -- results --------------------------------------------------------------------------------


def text_of(result: CallToolResult) -> str:
    """The text blocks of a tool result, one per line."""
    return "\n".join(block.text for block in result.content if block.type == "text")


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a tool call that must have succeeded."""
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


# -- JSON-RPC by hand -------------------------------------------------------------------------


def tools_call(tool: str, arguments: Any, *, request_id: int = 1) -> dict[str, Any]:
    """A ``tools/call`` request (``arguments`` as given, schema or not)."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }


def post_json_rpc(
    url: str,
    payload: dict[str, Any],
    *,
    authorization: str | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST one JSON-RPC message; ``authorization`` is the header's whole value, if any."""
    headers = dict(JSON_RPC_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    if client is None:
        return httpx.post(url, json=payload, headers=headers, timeout=10)
    return client.post(url, json=payload, headers=headers)
