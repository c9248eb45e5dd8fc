"""HTTP bearer authentication in front of the streamable HTTP app: optional per request.

* No ``Authorization`` header: the request passes through and the tool-level rules apply
  (the ``token`` argument, see :func:`session_buddy.mcp.auth.require_auth`).
* ``Authorization: Bearer <jwt>`` that verifies: the :class:`Principal` is stored in the
  ASGI scope at ``scope["state"][BEARER_STATE_KEY]``, where ``require_auth`` finds it
  through the tool's ``Context``; no token argument is needed. A token argument given as
  well must name the same user (``JWTManager.authenticate`` enforces that).
* A header that is present but not a valid bearer token (malformed, expired, revoked,
  wrong secret, another scheme): ``401`` with ``WWW-Authenticate: Bearer
  realm="session-buddy", error="invalid_token"`` before any tool runs.
* A header the server cannot check through its own fault (its database is unreachable, so
  revocations cannot be confirmed; its secret is unusable): ``503`` with ``Retry-After``
  — not a 401, which a client would take for a dead token (Claude Code then starts OAuth).
  The status is the error's own (:attr:`AuthError.status`).
* A client blocked by the :class:`~session_buddy.auth.throttle.AuthFailureThrottle` gets
  ``429`` with ``Retry-After`` for requests that present a bad credential: a bad header,
  or — read from the JSON-RPC body of ``tools/call`` (at most ``max_body_bytes``, only
  while the client is blocked) — a ``token`` argument that does not verify.

Counting failures: bad headers are counted here; bad ``token`` arguments are counted by
the tool layer through the callable left at ``scope["state"][AUTH_FAILURE_REPORTER_KEY]``
(``reporter(error)``), because only the tool call knows its verdict. Every request gets
that callable, so the count is right whatever the client sends.

Auditing refusals: each refusal made here is an audit decision whose action is what the
request asked for, as one of few names — a tool of ``tools`` (the server's, injected where
the server is built), an MCP method, or :data:`~session_buddy.auth.trail.UNKNOWN_ACTION`
for any other name — so requests with ever new names grow a count, not the audit table.

When authentication is disabled (no secret), the middleware does nothing at all.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Collection
from typing import Any

import anyio.to_thread
from mcp_types.methods import SPEC_CLIENT_METHODS, SPEC_CLIENT_NOTIFICATION_METHODS
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from session_buddy.auth.errors import AuthError, MalformedTokenError, ThrottledError
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.principal import Principal
from session_buddy.auth.throttle import AuthFailureThrottle, is_bad_credential
from session_buddy.auth.tokens import presented
from session_buddy.auth.trail import UNKNOWN_ACTION, AuthDecision
from session_buddy.mcp.request import AUTH_FAILURE_REPORTER_KEY, BEARER_STATE_KEY

MAX_INSPECTED_BODY_BYTES = 4 * 1024 * 1024  # the SDK's own request body limit
HEADER_SOURCE = "Authorization header"
REALM = "session-buddy"
MCP_METHODS = SPEC_CLIENT_METHODS | SPEC_CLIENT_NOTIFICATION_METHODS


class BearerAuthMiddleware:
    """ASGI middleware: verifies an optional bearer token and throttles bad credentials.

    ``tools``: the names of the server's tools (what a refusal's audit action may be).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        manager: JWTManager,
        throttle: AuthFailureThrottle,
        tools: Collection[str],
        max_body_bytes: int = MAX_INSPECTED_BODY_BYTES,
    ) -> None:
        self.app = app
        self.manager = manager
        self.throttle = throttle
        self.tools = frozenset(tools)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.manager.config.enabled:
            await self.app(scope, receive, send)
            return

        client = _peer_host(scope)
        state = scope.setdefault("state", {})
        state[AUTH_FAILURE_REPORTER_KEY] = functools.partial(self._count_failure, client)
        header = _authorization_header(scope)

        if header is not None:
            try:
                state[BEARER_STATE_KEY] = await self._verify_header(header, client)
            except AuthError as error:
                too_many = self._too_many(client)
                if too_many is None:
                    self._count_failure(client, error)
                if self.manager.decisions:  # the body only names the tool for the audit
                    body = await _read_body(receive, self.max_body_bytes)
                    token = header.strip().partition(" ")[2].strip()
                    refusal = ThrottledError() if too_many else error
                    self._audit(refusal, client, token, _json_of(body))
                await (too_many or _refused(error))(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return

        too_many = self._too_many(client)
        if too_many is not None:
            body = await _read_body(receive, self.max_body_bytes)
            parsed = _json_of(body)
            bad = None if body is None else await self._bad_token_argument(parsed, client)
            if body is None or bad is not None:
                self._audit(ThrottledError(), client, bad, parsed)
                await too_many(scope, receive, send)
                return
            receive = _replay(body, receive)

        await self.app(scope, receive, send)

    def _audit(self, error: AuthError, client: str, token: object, parsed: Any) -> None:
        """A refusal before any tool ran, as an audit decision (action: the tool the parsed
        JSON-RPC body asked for)."""
        decisions = self.manager.decisions
        if decisions:
            action = _action_of(parsed, self.tools)
            decisions.record(
                AuthDecision.denied(
                    error, action=action, permission=None, source_ip=client, token=token
                )
            )

    async def _verify_header(self, header: str, client: str) -> Principal:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            error = MalformedTokenError("Authorization header does not use the Bearer scheme")
            self.manager.failure_log.record(error, tool=HEADER_SOURCE, client=client)
            raise error
        token = token.strip()
        verifier = self.manager.built_verifier
        if verifier is not None and verifier.answers_from_memory(token):
            # A client's token, verified before: a dict and a set lookup, far cheaper
            # than a trip to a worker thread. Anything else may compute an HMAC or read
            # the database, off the event loop.
            return self._verify_token(token, client)
        return await anyio.to_thread.run_sync(self._verify_token, token, client)

    def _verify_token(self, token: str, client: str) -> Principal:
        try:
            return Principal.from_claims(self.manager.verifier.verify(token))
        except AuthError as error:
            self.manager.failure_log.record(error, token=token, tool=HEADER_SOURCE, client=client)
            raise

    async def _bad_token_argument(self, parsed: Any, client: str) -> object | None:
        """The first ``token`` argument in a parsed JSON-RPC body that does not verify."""
        for token in _token_arguments(parsed):
            try:
                await anyio.to_thread.run_sync(self.manager.verifier.verify, token)
            except AuthError as error:
                self.manager.failure_log.record(
                    error, token=token, tool="tools/call", client=client
                )
                return token
        return None

    def _count_failure(self, client: str, error: AuthError) -> None:
        if is_bad_credential(error):
            self.throttle.record_failure(client)

    def _too_many(self, client: str) -> JSONResponse | None:
        retry_after = self.throttle.retry_after(client)
        if retry_after is None:
            return None
        seconds = max(1, math.ceil(retry_after))
        return JSONResponse(
            {
                "error": "too_many_requests",
                "error_description": (
                    f"Too many authentication failures from {client}; retry after {seconds} s"
                ),
            },
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )


def _peer_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _authorization_header(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name.lower() == b"authorization":
            return value.decode("latin-1")
    return None


# The OAuth error code of each status a refused header can have.
_ERROR_CODES = {503: "temporarily_unavailable", 403: "insufficient_scope", 400: "invalid_request"}


def _refused(error: AuthError) -> JSONResponse:
    """The answer to a refused header, with the error's status: a 401 carries the bearer
    challenge; a server-side fault (503) says when to retry and which storage failed."""
    headers = {}
    if error.status == 401:
        description = error.public_message.replace("\\", "\\\\").replace('"', '\\"')
        headers["WWW-Authenticate"] = (
            f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
        )
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    message = error.storage.user_message if error.storage is not None else error.user_message
    return JSONResponse(
        {
            "error": _ERROR_CODES.get(error.status, "invalid_token"),
            "error_description": error.public_message,
            "message": message,
        },
        status_code=error.status,
        headers=headers,
    )


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it exceeds ``limit`` or the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read body once, then defers to ``receive``."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _json_of(body: bytes | None) -> Any:
    """A request body parsed as JSON; None when there is none or it is not JSON."""
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None


def _token_arguments(parsed: Any) -> list[object]:
    """The non-empty ``token`` arguments of the ``tools/call`` requests in a parsed JSON-RPC
    body."""
    messages = parsed if isinstance(parsed, list) else [parsed]
    tokens = []
    for message in messages:
        if not isinstance(message, dict) or message.get("method") != "tools/call":
            continue
        params = message.get("params")
        arguments = params.get("arguments") if isinstance(params, dict) else None
        token = arguments.get("token") if isinstance(arguments, dict) else None
        if presented(token):
            tokens.append(token)
    return tokens


def _action_of(parsed: Any, tools: frozenset[str]) -> str:
    """What a refused request asked for: the tool its parsed JSON-RPC body calls (one of
    ``tools``), else its MCP method; any other name is :data:`UNKNOWN_ACTION`, and a body
    that is no JSON-RPC message at all is ``"http"``."""
    message = parsed[0] if isinstance(parsed, list) and parsed else parsed
    if not isinstance(message, dict):
        return "http"
    method = message.get("method")
    if method == "tools/call":
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        return name if isinstance(name, str) and name in tools else UNKNOWN_ACTION
    return method if isinstance(method, str) and method in MCP_METHODS else UNKNOWN_ACTION
