"""Who is calling over HTTP: the ``Authorization: Bearer`` header, verified — a Starlette
authentication backend (``AuthenticationMiddleware(app, backend=BearerBackend(…))``).

* No ``Authorization`` header: nobody yet (``UnauthenticatedUser``); the tool-level rules
  apply (the ``token`` argument, see :func:`session_buddy.mcp.guard.require_auth`).
* A header that verifies: ``scope["user"]`` is a :class:`~session_buddy.mcp.request.
  BearerUser` carrying the :class:`Principal`, where the guard finds it through the tool's
  ``Context``; no token argument is needed (one given as well must name the same caller).
* Any other header — another scheme, malformed, expired, revoked, signed with another
  secret — or one the server cannot check through its own fault (revocations unreadable,
  secret unusable): :class:`HeaderRefused`, carrying the typed error, which the
  middleware hands to its ``on_error`` (:meth:`~session_buddy.mcp.throttling.
  ThrottleMiddleware.on_refused_header`): answered with the error's own status before any
  tool runs.

Every refused header is written to the rate-limited failure log here, with the token's
fingerprint only.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection

from session_buddy.auth.errors import AuthError, MalformedTokenError
from session_buddy.auth.failure_log import AuthFailureLog
from session_buddy.auth.principal import Principal
from session_buddy.auth.verification import TokenVerification
from session_buddy.mcp.request import BearerUser, peer_host

HEADER_SOURCE = "Authorization header"


class HeaderRefused(AuthenticationError):
    """An ``Authorization`` header that was refused: why (``error``), and the token it
    carried (for the audit's fingerprint; never shown or logged)."""

    def __init__(self, error: AuthError, token: str) -> None:
        super().__init__(error.public_message)
        self.error = error
        self.token = token


class BearerBackend(AuthenticationBackend):
    """Verifies the ``Authorization`` header with the runtime's :class:`TokenVerification`."""

    def __init__(self, verification: TokenVerification, failure_log: AuthFailureLog) -> None:
        self._verification = verification
        self._failure_log = failure_log

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        client = peer_host(conn.scope)
        if scheme.lower() != "bearer":
            error = MalformedTokenError("Authorization header does not use the Bearer scheme")
            self._failure_log.record(error, tool=HEADER_SOURCE, client=client)
            raise HeaderRefused(error, token)
        try:
            principal = await self._verify(token)
        except AuthError as error:
            self._failure_log.record(error, token=token, tool=HEADER_SOURCE, client=client)
            raise HeaderRefused(error, token) from None
        return AuthCredentials(sorted(principal.scopes or ())), BearerUser(principal)

    async def _verify(self, token: str) -> Principal:
        if self._verification.answers_from_memory(token):
            # A client's token, verified before: a dict and a set lookup, far cheaper
            # than a trip to a worker thread. Anything else may compute a signature or
            # read the database, off the event loop.
            return self._verification.verify(token)
        return await anyio.to_thread.run_sync(self._verification.verify, token)
