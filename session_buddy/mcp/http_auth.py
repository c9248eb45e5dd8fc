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
3. :class:`~session_buddy.mcp.credentials_required.CredentialsRequired` (bearer-only
   servers) — a request without credentials gets 401 with the bearer challenge.
4. :class:`~session_buddy.mcp.step_up.ScopeStepUp` — a ``tools/call`` whose bearer token
   lacks the tool's scope gets 403 ``insufficient_scope`` (the spec's step-up).

Every refusal made here is told to the recorders (audit, metrics) by a
:class:`~session_buddy.mcp.refusals.RefusalReport`, with the action the request's body
names; every 401 and 403 carries the server's
:class:`~session_buddy.mcp.challenge.BearerChallenge`.

The body is read at most once per request, only when one of them needs it
(:class:`~session_buddy.mcp.body.RequestBody`), and replayed to the app. With no verifier
configured there is nothing to authenticate and the app is served as it is.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp

from session_buddy.auth.failure_log import AuthFailureLog
from session_buddy.auth.scopes import ImpliedBy
from session_buddy.auth.throttle import AuthFailureThrottle
from session_buddy.auth.trail import Recorders
from session_buddy.auth.verification import TokenVerification
from session_buddy.mcp.bearer import BearerBackend
from session_buddy.mcp.body import MAX_INSPECTED_BODY_BYTES
from session_buddy.mcp.challenge import BearerChallenge
from session_buddy.mcp.credentials_required import CredentialsRequired
from session_buddy.mcp.refusals import RefusalReport
from session_buddy.mcp.step_up import ScopeStepUp
from session_buddy.mcp.throttling import ThrottleMiddleware


def bearer_authentication(
    app: ASGIApp,
    *,
    verification: TokenVerification,
    failure_log: AuthFailureLog,
    throttle: AuthFailureThrottle,
    recorders: Recorders,
    tools: Collection[str],
    challenge: BearerChallenge | None = None,
    tool_scopes: Mapping[str, str | None] | None = None,
    implied_by: ImpliedBy | None = None,
    require_scopes: bool = False,
    credentials_required: bool = False,
    public_paths: Collection[str] = (),
    max_body_bytes: int = MAX_INSPECTED_BODY_BYTES,
) -> ASGIApp:
    """``app`` behind bearer authentication, the failure throttle and the refusal report.

    ``tools``: the names of the server's tools (what a refusal's audit action may be).
    ``challenge``: what every 401 and 403 says (default: the realm alone).
    ``tool_scopes``: each tool's scope, for the step-up 403 (None: no step-up; the tools
    judge scopes), with the scope rule's ``implied_by`` and ``require_scopes``.
    ``credentials_required`` (bearer-only): a request without credentials on any path but
    ``public_paths`` gets 401.
    """
    if not verification.enabled:
        return app
    challenge = challenge or BearerChallenge()
    refusals = RefusalReport(recorders, tools)
    if tool_scopes is not None:
        app = ScopeStepUp(
            app,
            tool_scopes=tool_scopes,
            implied_by=implied_by or {},
            require_claim=require_scopes,
            challenge=challenge,
            refusals=refusals,
            failure_log=failure_log,
            max_body_bytes=max_body_bytes,
        )
    if credentials_required:
        app = CredentialsRequired(
            app,
            exempt=public_paths,
            challenge=challenge,
            refusals=refusals,
            max_body_bytes=max_body_bytes,
        )
    throttled = ThrottleMiddleware(
        app,
        throttle=throttle,
        verification=verification,
        failure_log=failure_log,
        refusals=refusals,
        challenge=challenge,
        max_body_bytes=max_body_bytes,
    )
    return AuthenticationMiddleware(
        throttled,
        backend=BearerBackend(verification, failure_log),
        on_error=throttled.on_refused_header,
    )
