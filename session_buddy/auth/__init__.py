"""session-buddy's authentication, as a library: what other Python code imports.

::

    from session_buddy.auth import AuthConfig, JWTManager

    manager = JWTManager(AuthConfig())          # SESSION_BUDDY_* from the environment
    token = manager.create_token("mahavishnu", {"role": "orchestrator"})
    try:
        claims = manager.verify_token(token)
    except ValueError as refusal:               # every AuthError is a ValueError
        print(refusal)                          # "Token has expired", …

The rules live in the modules beside this one (tokens, scopes, verifier, revocation,
manager, cross-project signatures, throttle); ``session_buddy.mcp.auth`` keeps the original design
note's module-level functions and the ``require_auth`` decorator for MCP tools.
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
from session_buddy.auth.throttle import AuthFailureThrottle
from session_buddy.auth.verifier import TokenVerifier

__all__ = [
    "ANONYMOUS",
    "AuthConfig",
    "AuthError",
    "AuthFailureThrottle",
    "AuthorizationError",
    "CrossProjectAuth",
    "ExpiredTokenError",
    "InvalidTokenError",
    "JWTManager",
    "MissingScopeError",
    "Principal",
    "ReservedClaimError",
    "RevocationStore",
    "RevocationUnavailableError",
    "RevokedTokenError",
    "SecretConfigError",
    "TokenArgumentRefusedError",
    "TokenRequestError",
    "TokenRequiredError",
    "TokenVerifier",
    "errors",
]
