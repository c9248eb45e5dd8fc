"""session-buddy's authentication, as a library: what other Python code imports.

::

    from session_buddy.config import load_settings
    from session_buddy.runtime import Runtime

    manager = Runtime.build(load_settings()).manager   # SESSION_BUDDY_* read once, here
    token = manager.create_token("mahavishnu", {"role": "orchestrator"})
    try:
        claims = manager.verify_token(token)
    except ValueError as refusal:               # every AuthError is a ValueError
        print(refusal)                          # "Token has expired", …

The rules live in the modules beside this one (tokens, scopes, verifiers, verification,
revocation, manager, cross-project signatures, throttle). Nothing here reads the
environment: an edge reads one ``Settings`` and composes the parts
(:class:`session_buddy.runtime.Runtime`). ``session_buddy.mcp.auth`` keeps the original
design note's names (``AuthConfig()`` and ``JWTManager()`` reading the environment, the
module-level functions) for library users.
"""

from __future__ import annotations

from session_buddy.auth import errors
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.auth.errors import (
    AuthError,
    AuthorizationError,
    ExpiredTokenError,
    InvalidTokenError,
    MissingScopeError,
    ReservedClaimError,
    RevocationUnavailableError,
    RevokedTokenError,
    SecretConfigError,
    TokenArgumentRefusedError,
    TokenRequestError,
    TokenRequiredError,
)
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.principal import ANONYMOUS, Principal
from session_buddy.auth.revocation import RevocationStore
from session_buddy.auth.shared_secret import SharedSecretVerifier
from session_buddy.auth.throttle import AuthFailureThrottle
from session_buddy.auth.verification import TokenVerification
from session_buddy.auth.verifiers import IssuerVerifiers, Verifier, configured_verifiers

__all__ = [
    "ANONYMOUS",
    "AuthConfig",
    "AuthError",
    "AuthFailureThrottle",
    "AuthorizationError",
    "CrossProjectAuth",
    "ExpiredTokenError",
    "InvalidTokenError",
    "IssuerVerifiers",
    "JWTManager",
    "MissingScopeError",
    "Principal",
    "ReservedClaimError",
    "RevocationStore",
    "RevocationUnavailableError",
    "RevokedTokenError",
    "SecretConfigError",
    "SharedSecretVerifier",
    "TokenArgumentRefusedError",
    "TokenRequestError",
    "TokenRequiredError",
    "TokenVerification",
    "Verifier",
    "configured_verifiers",
    "errors",
]
