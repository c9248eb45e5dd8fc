"""Talking MCP to a real server: the official client's transports, and JSON-RPC by hand.

:func:`mcp_http` and :func:`mcp_stdio` open the official client (``mcp.client.Client``);
their ``*_transport`` halves are for callers that pick the client's mode themselves.
:func:`post_json_rpc` sends one JSON-RPC message as a plain HTTP POST, for what the client
will not send (a bad ``Authorization`` header, a call before ``initialize``);
:func:`post_raw` writes the request's bytes itself, header lines exactly as given (what
an HTTP library would tidy up first, such as whitespace around a value), and
:func:`exchange_raw` any bytes at all; :func:`modern_meta` is the ``_meta`` a 2026-07-28
request carries;
:class:`RawStdio` writes any line to a server's stdin and reads its answers.
:class:`McpConnection` drives a client from synchronous tests through a blocking portal
(:func:`connected` brings its own).
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx
import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Tool

from session_buddy.mcp.error_meta import error_data
from testkit.server import SERVE

CALL_TIMEOUT = 60.0
MODERN_PROTOCOL = "2026-07-28"  # the stateless protocol generation: _meta on every request
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


def refused(result: CallToolResult) -> dict[str, Any]:
    """The error data (``kind``, ``reason``, ``message``) of a tool call that must have
    failed, after checking it carries no structured content (which no output schema admits)."""
    assert result.is_error, text_of(result)
    assert result.structured_content is None, result.structured_content
    data = error_data(result)
    assert data is not None, result
    return data


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
    payload: Any,
    *,
    authorization: str | None = None,
    session_id: str | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST ``payload`` as JSON (bytes as they are, with a JSON content type): one JSON-RPC
    message, or anything else. ``authorization`` is the header's whole value, if any;
    ``session_id`` the ``mcp-session-id`` to send."""
    headers = dict(JSON_RPC_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    if session_id is not None:
        headers["mcp-session-id"] = session_id
    if isinstance(payload, bytes):
        headers["Content-Type"] = "application/json"
        body = {"content": payload}
    else:
        body = {"json": payload}
    if client is None:
        return httpx.post(url, headers=headers, timeout=10, **body)
    return client.post(url, headers=headers, **body)


def modern_meta(client: str = "session-buddy-tests", version: str = "1") -> dict[str, Any]:
    """The ``_meta`` of a 2026-07-28 request: the protocol version, the client, its
    capabilities (none), as each such request carries them."""
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN_PROTOCOL,
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": version},
        "io.modelcontextprotocol/clientCapabilities": {},
    }


def exchange_raw(url: str, request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``request`` as it is on a connection of its own to ``url``'s host and port, and
    return what came back until the server closed it (a reset included: the bytes that
    arrived before it, possibly none)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    received = b""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        try:
            conn.sendall(request)
            while chunk := conn.recv(65536):
                received += chunk
        except ConnectionError:  # refused mid-request: what arrived is the answer
            pass
    return received


def post_raw(
    url: str, payload: Any, header_lines: Sequence[str], *, timeout: float = 10.0
) -> tuple[int, bytes]:
    """POST ``payload`` as JSON over a socket of its own, each of ``header_lines`` (``"Name:
    value"``) sent byte for byte; ``Host``, the content headers and ``Connection: close``
    are added. Returns the status and the body (read to the end of the connection)."""
    parts = urlsplit(url)
    body = json.dumps(payload).encode()
    head = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *header_lines,
    ]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    received = exchange_raw(url, request, timeout=timeout)
    if not received:
        raise ConnectionError(f"{url}: the connection closed without an answer")
    status_line, _, rest = received.partition(b"\r\n")
    headers, _, content = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers.lower():
        content = _dechunked(content)
    return int(status_line.split()[1]), content


def _dechunked(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def json_rpc_answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of an HTTP answer: the JSON body, or the first SSE ``data:``."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:"):
                message: dict[str, Any] = json.loads(line[5:])
                return message
        raise AssertionError(f"no data in the event stream: {response.text[:200]!r}")
    answer: dict[str, Any] = response.json()
    return answer


class RawStdio:
    """``serve`` (stdio) as a subprocess spoken to line by line: any text, JSON or not.

    ``send`` writes one line; ``receive`` returns the next JSON line the server wrote
    (``AssertionError`` if none comes within ``timeout``). Use as a context manager: the
    server's stdin is closed and the process waited for (killed if it lingers) at exit.
    """

    def __init__(self, env: dict[str, str], cwd: Path, errlog: TextIO, *args: str) -> None:
        self.process = subprocess.Popen(
            [*SERVE, *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def __enter__(self) -> RawStdio:
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def send(self, message: Any) -> None:
        """Write ``message`` (text as is, anything else as JSON) and a newline."""
        line = message if isinstance(message, str) else json.dumps(message)
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def receive(self, timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer on stdout within {timeout:.0f} s") from None
        answer: dict[str, Any] = json.loads(line)
        return answer

    def request(
        self, method: str, params: dict[str, Any] | None = None, *, id: int
    ) -> dict[str, Any]:
        """Send a request and return the answer carrying its id (in order: nothing else is
        in flight)."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        answer = self.receive()
        assert answer.get("id") == id, answer
        return answer

    def initialize(self) -> dict[str, Any]:
        """The handshake: ``initialize`` (its answer returned), then ``initialized``."""
        self.send(INITIALIZE)
        answer = self.receive()
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer
