"""Protocol answers the SDK (``mcp`` 2.x) gets wrong, set right through its extension points.

A client that sends something we do not serve gets a precise JSON-RPC error, the server
log gets no traceback, and nothing about the protocol is claimed that is not true:

* ``prompts/get`` of a prompt that does not exist: ``-32602`` (the SDK answers code ``0``
  and logs an ERROR traceback). The server has no prompts and no resources; it keeps
  advertising both capabilities because it serves them consistently — empty lists, and
  ``-32602`` for any name or URI — which is what the official conformance suite checks
  (a server that answers ``prompts/list`` must declare ``prompts``). Its lists never
  change, so it serves no ``subscriptions/listen`` (2026-07-28) and claims no
  ``listChanged`` or ``subscribe`` on either wire (the SDK's default serves the method and
  claims both there).
* a ``cursor`` on ``tools/list``, ``prompts/list``, ``resources/list`` or
  ``resources/templates/list``: ``-32602``. This server returns every item on the first
  page and never hands out a cursor, so any cursor is invalid (the SDK ignores it).
  Both are :class:`ProtocolAnswers`, an SDK server middleware.
* a line on stdio that is not JSON: ``-32700`` (the SDK drops it silently); a JSON-RPC
  batch or any other JSON that is not a JSON-RPC message: ``-32600`` with a plain message.
  :class:`ProtocolServer` reads stdio through :class:`AnsweringUnreadable`.
* over HTTP, a batch or other non-message JSON: ``-32600`` with a plain message instead of
  pydantic's validation report (:class:`PlainInvalidMessages`); an error response to a
  request that named no session carries no ``mcp-session-id`` — the SDK opens a session
  for it, discards it at once and still names it (:class:`NoUnknownSessionIds`).
* a stateless HTTP server answers ``GET`` with ``405`` (``Allow: POST``), as the SDK does
  on the 2026-07-28 wire: on the handshake wire the SDK opens an event stream that
  nothing can ever be sent on (there is no session to send to) and keeps it, and a task
  and a connection, open until the client leaves (:class:`NoStreamWithoutSession`).

No SDK code is patched. The one SDK internal used is ``MCPServer._lowlevel_server``, in
:meth:`ProtocolServer.run_stdio_async` (the SDK offers no public way to serve an
``MCPServer`` over streams of one's own); ``tests/mcp/test_protocol.py`` fails loudly if
it moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import anyio
import pydantic_core
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from session_buddy.text import shorten

PAGINATED_METHODS = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list"}
)
SESSION_ID_HEADER = "mcp-session-id"
MAX_SHOWN_NAME = 100

INVALID_CURSOR = "Invalid cursor: this server returns every item on the first page"
BATCH_NOT_SUPPORTED = "Batch requests are not supported: send one JSON-RPC message at a time"
NOT_A_MESSAGE = "Invalid Request: not a JSON-RPC 2.0 request, notification or response"
NOT_JSON = "Parse error: the message is not valid JSON"


# -- which error a message that cannot be read gets ----------------------------------------


def not_a_message(parsed: object) -> ErrorData:
    """The error for JSON that is not one JSON-RPC message (a batch is an array)."""
    message = BATCH_NOT_SUPPORTED if isinstance(parsed, list) else NOT_A_MESSAGE
    return ErrorData(code=INVALID_REQUEST, message=message)


def unreadable_line(error: Exception) -> ErrorData | None:
    """The answer to a stdio line the SDK could not read (``None``: a blank line, ignored).

    The SDK hands the reader's exception on instead of the line: a pydantic
    ``ValidationError`` whose first error says whether the JSON itself was bad
    (``json_invalid``, ``input`` the raw text) or the parsed value is no message.
    """
    if not isinstance(error, ValidationError) or not error.errors():
        return ErrorData(code=PARSE_ERROR, message=NOT_JSON)
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        raw = first.get("input")
        if isinstance(raw, str | bytes) and not raw.strip():
            return None
        return ErrorData(code=PARSE_ERROR, message=NOT_JSON)
    return not_a_message(first.get("input"))


def unreadable_body(body: bytes) -> ErrorData | None:
    """The answer to an HTTP body that is JSON but not a JSON-RPC message; ``None`` for a
    message, or for a body that is not JSON at all (the SDK's parse error is plain)."""
    try:
        parsed = pydantic_core.from_json(body)
    except ValueError:
        return None
    try:
        jsonrpc_message_adapter.validate_python(parsed, by_name=False)
    except ValidationError:
        return not_a_message(parsed)
    return None


# -- the server: middleware and stdio --------------------------------------------------------


class ProtocolAnswers:
    """SDK server middleware: ``-32602`` for an unknown prompt and for any list cursor."""

    def __init__(self, server: MCPServer) -> None:
        self._server = server

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        params = ctx.params if isinstance(ctx.params, Mapping) else None
        if ctx.request_id is not None and params is not None:
            if ctx.method in PAGINATED_METHODS and params.get("cursor") is not None:
                raise MCPError(code=INVALID_PARAMS, message=INVALID_CURSOR)
            if ctx.method == "prompts/get":
                await self._check_prompt(params.get("name"))
        return await call_next(ctx)

    async def _check_prompt(self, name: object) -> None:
        if not isinstance(name, str):
            return  # the SDK's own validation answers -32602
        if name not in {prompt.name for prompt in await self._server.list_prompts()}:
            shown = shorten(name, MAX_SHOWN_NAME)
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {shown}")


class ProtocolServer(MCPServer):
    """``MCPServer`` with :class:`ProtocolAnswers` installed, no ``subscriptions/listen``,
    answering unreadable stdio lines (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, subscriptions=False, **kwargs)
        self.middleware.append(ProtocolAnswers(self))

    async def run_stdio_async(self) -> None:
        """Serve stdio as the SDK does, answering lines it cannot read instead of dropping
        them."""
        lowlevel = self._lowlevel_server
        async with stdio_server() as (read_stream, write_stream):
            await lowlevel.run(
                AnsweringUnreadable(read_stream, write_stream),
                write_stream,
                lowlevel.create_initialization_options(),
            )


class AnsweringUnreadable:
    """A transport's read stream that answers each unreadable item (the reader's exception)
    with a JSON-RPC error on the write stream and passes only messages on."""

    def __init__(
        self,
        inner: ReadStream[SessionMessage | Exception],
        write_stream: WriteStream[SessionMessage],
    ) -> None:
        self._inner = inner
        self._write_stream = write_stream

    @property
    def last_context(self) -> Any:
        """The sender context of the last message (the SDK's dispatcher reads it)."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            await self._answer(item)

    async def _answer(self, unreadable: Exception) -> None:
        error = unreadable_line(unreadable)
        if error is not None:
            reply = JSONRPCError(jsonrpc="2.0", id=None, error=error)
            await self._write_stream.send(SessionMessage(reply))

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return None


# -- HTTP ----------------------------------------------------------------------------------


class PlainInvalidMessages:
    """ASGI middleware: a ``400`` the SDK gives a body that is JSON but no JSON-RPC message
    (a batch, say) is replaced by ``-32600`` with a plain message.

    The body is copied as the SDK reads it (at most ``max_body_bytes``) and judged only
    when the SDK answered ``400``, so the SDK's own checks (Host, Accept, Content-Type,
    size) keep their answers and a request that succeeds costs one copy of its body.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        replaced = False

        async def copying_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request" and size <= self.max_body_bytes:
                chunk = message.get("body", b"")
                size += len(chunk)
                chunks.append(chunk)
            return message

        async def judging_send(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 400:
                error = None if size > self.max_body_bytes else unreadable_body(b"".join(chunks))
                if error is not None:
                    replaced = True
                    await _json_rpc_error(error, message)(scope, receive, send)
                    return
            if not replaced:
                await send(message)

        await self.app(scope, copying_receive, judging_send)


def _json_rpc_error(error: ErrorData, start: Message) -> JSONResponse:
    """A ``400`` JSON-RPC error response keeping the SDK's session header, if any."""
    body = JSONRPCError(jsonrpc="2.0", id=None, error=error)
    headers = MutableHeaders(raw=list(start.get("headers", [])))
    session = (
        {SESSION_ID_HEADER: headers[SESSION_ID_HEADER]} if SESSION_ID_HEADER in headers else {}
    )
    return JSONResponse(body.model_dump(mode="json", exclude_unset=True), 400, headers=session)


class NoUnknownSessionIds:
    """ASGI middleware: an error response to a request that named no session carries no
    ``mcp-session-id`` (the session the SDK opened for the request is already gone)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _has_header(scope, SESSION_ID_HEADER.encode()):
            await self.app(scope, receive, send)
            return

        async def without_unknown_session(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                headers = MutableHeaders(scope=message)
                if SESSION_ID_HEADER in headers:
                    del headers[SESSION_ID_HEADER]
            await send(message)

        await self.app(scope, receive, without_unknown_session)


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key.lower() == name for key, _ in scope.get("headers", []))


class NoStreamWithoutSession:
    """ASGI middleware for a stateless server: ``GET`` of the MCP endpoint ``path`` gets
    ``405`` with ``Allow: POST``."""

    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self.path:
            await Response(status_code=405, headers={"Allow": "POST"})(scope, receive, send)
            return
        await self.app(scope, receive, send)


def protocol_http_app(
    app: ASGIApp, *, max_body_bytes: int, stateless_path: str | None = None
) -> ASGIApp:
    """The SDK's streamable HTTP app with :class:`PlainInvalidMessages` and
    :class:`NoUnknownSessionIds` around it, and :class:`NoStreamWithoutSession` when the
    server is stateless (``stateless_path``: its MCP endpoint)."""
    app = NoUnknownSessionIds(PlainInvalidMessages(app, max_body_bytes=max_body_bytes))
    if stateless_path is not None:
        app = NoStreamWithoutSession(app, path=stateless_path)
    return app
