"""Why a token or a caller was refused: one class per reason, rooted in :class:`AuthError`.

Each error carries two texts. ``public_message`` is the short, fixed phrase a caller may
see (``"Token has expired"``); it never echoes input. ``detail`` is the precise reason
(which claim, which check) for the server log only. ``reason`` is a stable code for
metrics, rate limiting and ``WWW-Authenticate`` descriptions.
"""

from __future__ import annotations

MIN_SECRET_LENGTH = 32
AUTH_FAILED_PREFIX = "❌ Authentication failed"
AUTHZ_FAILED_PREFIX = "❌ Authorization failed"
SECRET_TOO_SHORT = "❌ JWT secret must be at least 32 characters long"
SECRET_HINT = (
    "Generate a longer secret with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
)
AUTH_DISABLED_WARNING = "⚠️ JWT authentication disabled (SESSION_BUDDY_SECRET not set)"


class AuthError(Exception):
    """A request could not be authenticated."""

    public_message = "Authentication failed"
    reason = "auth_failed"
    prefix = AUTH_FAILED_PREFIX

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.public_message
        Exception.__init__(self, self.public_message)  # not super(): cheaper on a hot path

    @property
    def user_message(self) -> str:
        """The full public line, e.g. ``❌ Authentication failed: Token has expired``."""
        return f"{self.prefix}: {self.public_message}"

    def __str__(self) -> str:
        return self.public_message


class SecretConfigError(AuthError):
    """The configured secret is unusable (too short); authentication fails closed."""

    public_message = SECRET_TOO_SHORT
    reason = "secret_too_short"

    @property
    def user_message(self) -> str:
        return SECRET_TOO_SHORT


class TokenRequiredError(AuthError):
    """Authentication is enabled and no token was presented."""

    public_message = "Token required"
    reason = "token_required"


class ExpiredTokenError(AuthError):
    """The token's ``exp`` is in the past (beyond the leeway)."""

    public_message = "Token has expired"
    reason = "expired"


class RevokedTokenError(AuthError):
    """The token was revoked (logout, refresh rotation, or ``token revoke``)."""

    public_message = "Token has been revoked"
    reason = "revoked"


class TokenLifetimeExceededError(AuthError):
    """Refresh refused: the token family is older than the absolute lifetime."""

    public_message = "Token has reached its maximum lifetime; create a new token"
    reason = "max_lifetime"


class InvalidTokenError(AuthError):
    """The token is not one we accept; subclasses say why (in the log only)."""

    public_message = "Invalid token"
    reason = "invalid"


class MalformedTokenError(InvalidTokenError):
    """Not three strict base64url segments of JSON objects, or not a string."""

    reason = "malformed"


class TokenTooLargeError(InvalidTokenError):
    """Longer than the size limit; rejected before any decoding."""

    reason = "too_large"


class InvalidSignatureError(InvalidTokenError):
    """The signature does not match the current or any previous secret."""

    reason = "bad_signature"


class DisallowedAlgorithmError(InvalidTokenError):
    """The header's ``alg`` is not exactly ``HS256``."""

    reason = "bad_algorithm"


class CriticalHeaderError(InvalidTokenError):
    """The header carries ``crit``; we understand no extensions."""

    reason = "crit_header"


class InvalidClaimError(InvalidTokenError):
    """A registered claim has the wrong type or value (``exp``, ``iat``, ``nbf``, ``jti``)."""

    reason = "bad_claim"


class ImmatureTokenError(InvalidTokenError):
    """``nbf`` or ``iat`` lies in the future beyond the leeway."""

    reason = "not_yet_valid"


class MissingIdentityError(InvalidTokenError):
    """Neither ``user_id`` nor ``sub`` is a non-empty string."""

    reason = "no_identity"


class WrongTokenTypeError(InvalidTokenError):
    """``type`` is present and is not ``"access"``."""

    reason = "wrong_type"


class InvalidIssuerError(InvalidTokenError):
    """``iss`` is missing or not in the configured allow-list."""

    reason = "bad_issuer"


class InvalidAudienceError(InvalidTokenError):
    """``aud`` does not match the configured audience, or is present when none is."""

    reason = "bad_audience"


class IdentityMismatchError(AuthError):
    """The Authorization header and the ``token`` argument name different users."""

    public_message = "Token argument and Authorization header name different users"
    reason = "identity_mismatch"


class AuthorizationError(AuthError):
    """Authenticated, but not allowed to do this."""

    prefix = AUTHZ_FAILED_PREFIX
    public_message = "not allowed"
    reason = "forbidden"

    def __init__(self, public_message: str | None = None, detail: str | None = None) -> None:
        if public_message:
            self.public_message = public_message
        super().__init__(detail)


class RoleNotAllowedError(AuthorizationError):
    """The token's ``role`` is not among the roles a tool accepts."""

    reason = "role_not_allowed"

    def __init__(self, role: str | None) -> None:
        super().__init__(f"role '{role}' not allowed")


class RevocationUnavailableError(AuthError):
    """The revocation store cannot be read; fail closed rather than accept revoked tokens."""

    public_message = "Authentication unavailable: revocation store cannot be read"
    reason = "revocation_unavailable"
