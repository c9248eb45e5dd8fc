"""The failure throttle at the HTTP edge (the rule: :mod:`session_buddy.auth.throttle`).

A client blocked for presenting too many bad credentials gets ``429`` with
``Retry-After`` for a request that presents another: a bad ``Authorization`` header, or —
read from the JSON-RPC body of ``tools/call`` (at most 4 MiB, only while the client is
blocked) — a ``token`` argument that does not verify. A valid credential, or none, is
served as usual: a valid token is never throttled.

Counting: a refused header is counted here (:meth:`ThrottleMiddleware.on_refused_header`);
a bad ``token`` argument by the tool layer, through the callable left at
``scope["state"][AUTH_FAILURE_REPORTER_KEY]`` — only the tool call knows its verdict.
Every request gets that callable, so the count is right whatever the client sends.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio.to_thread
from starlette.authentication import AuthenticationError
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from session_buddy.auth.errors import AuthError, ThrottledError
from session_buddy.auth.failure_log import AuthFailureLog
from session_buddy.auth.throttle import AuthFailureThrottle
from session_buddy.auth.tokens import presented
from session_buddy.auth.verification import TokenVerification
from session_buddy.mcp.bearer import HeaderRefused
from session_buddy.mcp.body import MAX_INSPECTED_BODY_BYTES, RequestBody
from session_buddy.mcp.challenge import BearerChallenge
from session_buddy.mcp.refusals import (
    RefusalReport,
    ReportedRefusal,
    refusal_response,
    too_many_response,
)
from session_buddy.mcp.request import AUTH_FAILURE_REPORTER_KEY, BearerUser, peer_host


class ThrottleMiddleware:
    """ASGI middleware behind the authentication middleware (the header, if any, verified),
    and that middleware's ``on_error`` for a refused header."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        throttle: AuthFailureThrottle,
        verification: TokenVerification,
        failure_log: AuthFailureLog,
        refusals: RefusalReport,
        challenge: BearerChallenge | None = None,
        max_body_bytes: int = MAX_INSPECTED_BODY_BYTES,
    ) -> None:
        self.app = app
        self._challenge = challenge or BearerChallenge()
        self._throttle = throttle
        self._verification = verification
        self._failure_log = failure_log
        self._refusals = refusals
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = peer_host(scope)
        state = scope.setdefault("state", {})
        state[AUTH_FAILURE_REPORTER_KEY] = functools.partial(self._throttle.record_refusal, client)
        retry_after = self._throttle.retry_after(client)
        if retry_after is None or isinstance(scope.get("user"), BearerUser):
            await self.app(scope, receive, send)
            return

        body = RequestBody(receive, self._max_body_bytes)
        content = await body.read()
        bad = None if content is None else await self._bad_token_argument(await body.json(), client)
        if content is None or bad is not None:
            await self._refusals.report(ThrottledError(), client=client, token=bad, body=body)
            await too_many_response(client, retry_after)(scope, receive, send)
            return
        await self.app(scope, body.replay(), send)

    def on_refused_header(self, conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """The answer to a refused ``Authorization`` header: ``429`` while the client is
        blocked (not counted again), else counted and answered with the error's status;
        reported to the recorders either way."""
        if not isinstance(exc, HeaderRefused):  # the bearer backend raises no other
            raise exc
        client = peer_host(conn.scope)
        retry_after = self._throttle.retry_after(client)
        error: AuthError
        if retry_after is None:
            self._throttle.record_refusal(client, exc.error)
            error, answer = exc.error, refusal_response(exc.error, self._challenge)
        else:
            error, answer = ThrottledError(), too_many_response(client, retry_after)
        return ReportedRefusal(
            answer,
            self._refusals,
            error,
            client=client,
            token=exc.token,
            max_body_bytes=self._max_body_bytes,
        )

    async def _bad_token_argument(self, parsed: Any, client: str) -> object | None:
        """The first ``token`` argument in a parsed JSON-RPC body that does not verify."""
        for token in token_arguments(parsed):
            try:
                await anyio.to_thread.run_sync(self._verification.verify, token)
            except AuthError as error:
                self._failure_log.record(error, token=token, tool="tools/call", client=client)
                return token
        return None


def token_arguments(parsed: Any) -> list[object]:
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
