"""Refusals made at the HTTP edge, before any tool runs: the answer, with the error's own
status, and the report of each to the recorders (the audit trail, the metrics).

The answers: a bad or missing credential ``401`` with the server's bearer challenge
(:class:`~session_buddy.mcp.challenge.BearerChallenge`: ``WWW-Authenticate: Bearer
realm="session-buddy", resource_metadata=…, scope=…``, plus ``error="invalid_token"`` when
a token was presented); a fault of the server's own (revocations
unreadable, secret unusable) ``503`` with ``Retry-After`` — never a 401, which a client
would take for a dead token; a throttled client ``429`` with ``Retry-After``.

The report: each refusal is an audit decision whose action is what the request asked for,
as one of few names — a tool of ``tools`` (the server's), an MCP method, or
:data:`~session_buddy.auth.trail.UNKNOWN_ACTION` for any other name; ``"http"`` for a body
that is no JSON-RPC message — so requests with ever new names grow a count, not the table.
Naming the action means reading the body (up to 4 MiB): :attr:`RefusalReport.reads_bodies`
decides it, true only while some recorder listens.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from mcp_types.methods import SPEC_CLIENT_METHODS, SPEC_CLIENT_NOTIFICATION_METHODS
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from session_buddy.auth.errors import AuthError, ThrottledError
from session_buddy.auth.principal import Principal
from session_buddy.auth.trail import UNKNOWN_ACTION, AuthDecision, Recorders
from session_buddy.mcp.body import MAX_INSPECTED_BODY_BYTES, RequestBody
from session_buddy.mcp.challenge import BearerChallenge

MCP_METHODS = SPEC_CLIENT_METHODS | SPEC_CLIENT_NOTIFICATION_METHODS
# The OAuth error code of each status a refused header can have.
_ERROR_CODES = {503: "temporarily_unavailable", 403: "insufficient_scope", 400: "invalid_request"}


def refusal_response(
    error: AuthError, challenge: BearerChallenge, *, presented: bool = True
) -> JSONResponse:
    """The answer to a refused credential, with the error's status: a 401 carries the
    bearer challenge (``error="invalid_token"`` only when a token was ``presented``); a
    server-side fault (503) says when to retry and which storage failed."""
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = (
            challenge.header(error="invalid_token", description=error.public_message)
            if presented
            else challenge.header()
        )
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    message = error.storage.user_message if error.storage is not None else error.user_message
    # RFC 6750 §3.1: a request that presented no token gets no error code.
    code = _ERROR_CODES.get(error.status, "invalid_token" if presented else None)
    body = {"error": code} if code is not None else {}
    return JSONResponse(
        {**body, "error_description": error.public_message, "message": message},
        status_code=error.status,
        headers=headers,
    )


def too_many_response(client: str, retry_after: float) -> JSONResponse:
    """The answer to a blocked client's bad credential: 429, and when to come back."""
    seconds = max(1, math.ceil(retry_after))
    return JSONResponse(
        {
            "error": "too_many_requests",
            "error_description": (
                f"Too many authentication failures from {client}; retry after {seconds} s"
            ),
        },
        status_code=ThrottledError.status,
        headers={"Retry-After": str(seconds)},
    )


class RefusalReport:
    """Tells ``recorders`` of every refusal made at the HTTP edge.

    ``tools``: the names of the server's tools (what a refusal's action may be).
    """

    def __init__(self, recorders: Recorders, tools: Collection[str]) -> None:
        self._recorders = recorders
        self._tools = frozenset(tools)

    @property
    def reads_bodies(self) -> bool:
        """Whether a refused request's body is read to name its action: only while a
        recorder listens (audit or metrics on) — nobody else needs the name."""
        return self._recorders.listening

    async def report(
        self,
        error: AuthError,
        *,
        client: str,
        token: object,
        body: RequestBody,
        permission: str | None = None,
        principal: Principal | None = None,
    ) -> None:
        """One refusal, as a denied decision whose action the request's body names;
        ``principal`` and ``permission`` when a verified caller lacked a scope."""
        if not self.reads_bodies:
            return
        action = action_of(await body.json(), self._tools)
        self._recorders.record(
            AuthDecision.denied(
                error,
                action=action,
                permission=permission,
                source_ip=client,
                token=token,
                principal=principal,
            )
        )


class ReportedRefusal(Response):
    """An answer sent only once its refusal is reported to ``report``.

    Starlette's authentication middleware sends what its ``on_error`` returns with the
    request's ``receive``: the one moment the refused request's body can still be read to
    name its action.
    """

    def __init__(
        self,
        answer: Response,
        report: RefusalReport,
        error: AuthError,
        *,
        client: str,
        token: object,
        max_body_bytes: int = MAX_INSPECTED_BODY_BYTES,
    ) -> None:
        super().__init__(status_code=answer.status_code)
        self._answer = answer
        self._report = report
        self._error = error
        self._client = client
        self._token = token
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = RequestBody(receive, self._max_body_bytes)
        await self._report.report(self._error, client=self._client, token=self._token, body=body)
        await self._answer(scope, receive, send)


def action_of(parsed: Any, tools: frozenset[str]) -> str:
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
