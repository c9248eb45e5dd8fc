"""Authentication in front of the streamable HTTP app, composed from one piece per job.

Outermost first:

1. Starlette's ``AuthenticationMiddleware`` with :class:`~session_buddy.mcp.bearer.
   BearerBackend` — who is calling: the ``Authorization`` header, verified by the runtime's
   :class:`~session_buddy.auth.verification.TokenVerification` (whatever verifier its
   issuer chooses). A refused header goes to its ``on_error``:
2. :class:`~session_buddy.mcp.throttling.ThrottleMiddleware` — the failure throttle:
   counts refused headers (and, through a callable in the request's state, bad ``token``
   arguments); a blocked client presenting a bad credential gets 429; its
   ``on_refused_header`` answers a refused header (429, or the error's own status).
3. :class:`~session_buddy.mcp.refusals.RefusalReport` — every refusal made here, told to
   the recorders (audit, metrics) with the action the request's body names.

The body is read at most once per request, only when the throttle or the report needs it
(:class:`~session_buddy.mcp.body.RequestBody`), and replayed to the app. With no verifier
configured there is nothing to authenticate and the app is served as it is.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp

from session_buddy.auth.failure_log import AuthFailureLog
from session_buddy.auth.throttle import AuthFailureThrottle
from session_buddy.auth.trail import Recorders
from session_buddy.auth.verification import TokenVerification
from session_buddy.mcp.bearer import BearerBackend
from session_buddy.mcp.body import MAX_INSPECTED_BODY_BYTES
from session_buddy.mcp.refusals import RefusalReport
from session_buddy.mcp.throttling import ThrottleMiddleware


def bearer_authentication(
    app: ASGIApp,
    *,
    verification: TokenVerification,
    failure_log: AuthFailureLog,
    throttle: AuthFailureThrottle,
    recorders: Recorders,
    tools: Collection[str],
    max_body_bytes: int = MAX_INSPECTED_BODY_BYTES,
) -> ASGIApp:
    """``app`` behind bearer authentication, the failure throttle and the refusal report.

    ``tools``: the names of the server's tools (what a refusal's audit action may be).
    """
    if not verification.enabled:
        return app
    throttled = ThrottleMiddleware(
        app,
        throttle=throttle,
        verification=verification,
        failure_log=failure_log,
        refusals=RefusalReport(recorders, tools),
        max_body_bytes=max_body_bytes,
    )
    return AuthenticationMiddleware(
        throttled,
        backend=BearerBackend(verification, failure_log),
        on_error=throttled.on_refused_header,
    )
