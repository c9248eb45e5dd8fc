"""Why a token or a caller was refused: one class per reason, rooted in :class:`AuthError`.

Each error carries what an edge (CLI, MCP tool result, HTTP response, log) needs as data,
so nobody parses a message:

* ``public_message`` — the short, fixed phrase a caller may see (``"Token has expired"``);
  it never echoes input;
* ``detail`` — the precise reason (which claim, which check), for the server log only;
* ``reason`` — a stable code for metrics, throttling and ``WWW-Authenticate``;
* ``fix`` — what the person holding the token (or running the server) should do;
* ``status`` — the HTTP status an edge answers with: 401 for a bad or missing credential,
  403 for a caller that may not do this, 429 for a throttled client, 503 when the fault is
  the server's own (its secret, its database), 400 for a token sent where this server
  takes none; ``retry_after`` — the seconds a client should wait, where waiting helps;
* ``bad_credential`` — whether the caller presented a credential we refuse (what the
  failure throttle counts).

Every :class:`AuthError` is also a ``ValueError``: code written for the original API
(and Mahavishnu's ``permissions.JWTManager``) catches refusals with ``except ValueError``.

The fixed user-facing lines of the original design note are constants here, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable

from session_buddy.store.errors import StorageError

MIN_SECRET_LENGTH = 32
AUTH_FAILED_PREFIX = "❌ Authentication failed"
AUTHZ_FAILED_PREFIX = "❌ Authorization failed"
SECRET_TOO_SHORT = "❌ JWT secret must be at least 32 characters long"
SECRET_HINT = (
    "Generate a longer secret with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
)
AUTH_DISABLED_WARNING = "⚠️ JWT authentication disabled (SESSION_BUDDY_SECRET not set)"
SHARED_SECRET_WARNING = (
    "⚠️ Using BODAI_SHARED_SECRET, the secret shared by every service of the ecosystem: "
    "only the audience (aud) tells their tokens apart. Set SESSION_BUDDY_SECRET to give "
    "session-buddy a secret of its own"
)
GENERATE_FIX = "run: session-buddy secret generate --save"
NEW_TOKEN_FIX = "create a new token: session-buddy token create USER_ID"


class AuthError(ValueError):
    """A request could not be authenticated."""

    public_message = "Authentication failed"
    reason = "auth_failed"
    prefix = AUTH_FAILED_PREFIX
    fix: str | None = None
    status = 401
    bad_credential = False
    retry_after: int | None = None
    # The database failure behind a server-side refusal (the edge then reports storage).
    storage: StorageError | None = None

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.public_message
        Exception.__init__(self, self.public_message)  # not super(): cheaper on a hot path

    @property
    def user_message(self) -> str:
        """The user-facing line, e.g. ``❌ Authentication failed: Token has expired``."""
        return f"{self.prefix}: {self.public_message}"

    def __str__(self) -> str:
        return self.public_message


class SecretConfigError(AuthError):
    """The configured secret is unusable; authentication fails closed.

    ``kind`` says which way: ``"too_short"``, ``"previous_too_short"``,
    ``"file_unreadable"``, ``"file_empty"``, ``"sources_disagree"`` or ``"unset"``.
    ``str()`` is the whole explanation (with the hint to generate a secret);
    ``user_message`` is the short line.
    """

    public_message = SECRET_TOO_SHORT
    reason = "secret_too_short"
    kind = "too_short"
    status = 503
    retry_after = 60  # an operator must fix the configuration
    fix = f"use a secret of {MIN_SECRET_LENGTH}+ characters; {GENERATE_FIX}"

    def __init__(
        self, detail: str | None = None, *, kind: str | None = None, fix: str | None = None
    ) -> None:
        super().__init__(detail)
        if kind is not None:
            self.kind = kind
        if fix is not None:
            self.fix = fix

    @property
    def user_message(self) -> str:
        return self.public_message

    @property
    def headline(self) -> str:
        """The explanation without the generate-a-secret hint, for one-line displays."""
        return self.detail.removesuffix(SECRET_HINT).strip().removesuffix(".")

    def __str__(self) -> str:
        return self.detail


class SecretFileUnusableError(SecretConfigError):
    """``SESSION_BUDDY_SECRET_FILE`` cannot be read or is empty."""

    public_message = "❌ JWT secret file cannot be read"
    reason = "secret_file_unusable"
    kind = "file_unreadable"
    fix = "make the secret file readable, or set SESSION_BUDDY_SECRET instead"


class SecretSourcesDisagreeError(SecretConfigError):
    """``SESSION_BUDDY_SECRET`` and ``SESSION_BUDDY_SECRET_FILE`` give different secrets."""

    public_message = "❌ JWT secret is configured twice, with different values"
    reason = "secret_sources_disagree"
    kind = "sources_disagree"
    fix = "keep one of SESSION_BUDDY_SECRET and SESSION_BUDDY_SECRET_FILE"


class SecretNotConfiguredError(SecretConfigError):
    """A secret was needed (to sign a token) but authentication is disabled."""

    public_message = AUTH_DISABLED_WARNING
    reason = "secret_unset"
    kind = "unset"
    fix = f"set SESSION_BUDDY_SECRET, or {GENERATE_FIX}"


class TokenRequiredError(AuthError):
    """Authentication is enabled and no token was presented."""

    public_message = "Token required"
    reason = "token_required"
    fix = "pass the token as the `token` argument (or, over HTTP, Authorization: Bearer)"


class ExpiredTokenError(AuthError):
    """The token's ``exp`` is in the past (beyond the leeway)."""

    public_message = "Token has expired"
    reason = "expired"
    bad_credential = True
    fix = NEW_TOKEN_FIX


class RevokedTokenError(AuthError):
    """The token was revoked (logout, refresh rotation, or ``token revoke``)."""

    public_message = "Token has been revoked"
    reason = "revoked"
    bad_credential = True
    fix = NEW_TOKEN_FIX


class TokenLifetimeExceededError(AuthError):
    """Refresh refused: the token family is older than the absolute lifetime."""

    public_message = "Token has reached its maximum lifetime; create a new token"
    reason = "max_lifetime"
    fix = NEW_TOKEN_FIX


class InvalidTokenError(AuthError):
    """The token is not one we accept; subclasses say why (in the log only)."""

    public_message = "Invalid token"
    reason = "invalid"
    bad_credential = True


class MalformedTokenError(InvalidTokenError):
    """Not three strict base64url segments of JSON objects, or not a string."""

    reason = "malformed"
    fix = "pass the whole token exactly as created (three dot-separated parts)"


class TokenTooLargeError(InvalidTokenError):
    """Longer than the size limit; rejected before any decoding."""

    reason = "too_large"
    fix = "pass the whole token exactly as created; tokens are limited to 8 KiB"


class InvalidSignatureError(InvalidTokenError):
    """The signature does not match the current or any previous secret."""

    reason = "bad_signature"
    fix = (
        "sign with the same secret the server uses "
        "(SESSION_BUDDY_SECRET here, MAHAVISHNU_AUTH_SECRET in Mahavishnu); "
        "check with: session-buddy auth status"
    )


class DisallowedAlgorithmError(InvalidTokenError):
    """The header's ``alg`` is not exactly ``HS256``."""

    reason = "bad_algorithm"
    fix = "sign the token with HS256"


class CriticalHeaderError(InvalidTokenError):
    """The header carries ``crit``; we understand no extensions."""

    reason = "crit_header"
    fix = "sign the token without a 'crit' header"


class InvalidClaimError(InvalidTokenError):
    """A registered claim has the wrong type or value (``exp``, ``iat``, ``nbf``, ``jti``)."""

    reason = "bad_claim"
    fix = "exp, iat and nbf must be numbers; sub and jti strings"


class ImmatureTokenError(InvalidTokenError):
    """``nbf`` or ``iat`` lies in the future beyond the leeway."""

    reason = "not_yet_valid"
    fix = "check both machines' clocks (iat or nbf lies in the future)"


class MissingIdentityError(InvalidTokenError):
    """Neither ``user_id`` nor ``sub`` is a non-empty string."""

    reason = "no_identity"
    fix = "put a non-empty user_id (or sub) claim in the token"


class WrongTokenTypeError(InvalidTokenError):
    """``type`` is present and is not ``"access"``."""

    reason = "wrong_type"
    fix = 'use an access token (claim type = "access")'


class InvalidIssuerError(InvalidTokenError):
    """``iss`` is missing or not in the configured allow-list."""

    reason = "bad_issuer"
    fix = (
        "create the token with an allowed --issuer, or add its issuer to "
        "SESSION_BUDDY_ALLOWED_ISSUERS"
    )


class InvalidAudienceError(InvalidTokenError):
    """``aud`` names another service, or is missing while SESSION_BUDDY_REQUIRE_AUDIENCE."""

    reason = "bad_audience"
    fix = (
        "mint the token for this server: aud = SESSION_BUDDY_AUDIENCE (default session-buddy), "
        "e.g. session-buddy token create USER_ID"
    )


class IdentityMismatchError(AuthError):
    """The Authorization header and the ``token`` argument name different users."""

    public_message = "Token argument and Authorization header name different users"
    reason = "identity_mismatch"
    bad_credential = True
    fix = "send one token: either the Authorization header or the token argument"


class AuthorizationError(AuthError):
    """Authenticated, but not allowed to do this."""

    prefix = AUTHZ_FAILED_PREFIX
    public_message = "not allowed"
    reason = "forbidden"
    status = 403

    def __init__(self, public_message: str | None = None, detail: str | None = None) -> None:
        if public_message:
            self.public_message = public_message
        super().__init__(detail)


class RoleNotAllowedError(AuthorizationError):
    """The token's ``role`` is not among the roles a tool accepts."""

    reason = "role_not_allowed"
    fix = "use a token whose role claim is one the tool accepts"

    def __init__(self, role: str | None) -> None:
        super().__init__(f"role '{role}' not allowed")


class MissingScopeError(AuthorizationError):
    """The token's scopes do not cover what the tool needs (``read``, ``write`` …)."""

    reason = "missing_scope"

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.fix = (
            f"use a token that grants {scope!r} (claim scopes or scope), e.g. "
            f"session-buddy token create USER_ID --scope {scope}"
        )
        super().__init__(f"missing scope '{scope}'")


class TokenArgumentRefusedError(AuthError):
    """A ``token`` argument reached a bearer-only HTTP server (SESSION_BUDDY_BEARER_ONLY).

    A tool argument travels through the model's context window; the header does not.
    """

    public_message = (
        "This server takes tokens only in the 'Authorization: Bearer <token>' header, "
        "not as the token argument"
    )
    reason = "bearer_only"
    status = 400  # RFC 6750: a way of presenting the token this server does not take
    fix = "drop the token argument and send the header 'Authorization: Bearer <token>'"


class ThrottledError(AuthError):
    """The client presented too many bad credentials; it is answered 429 for a while."""

    public_message = "Too many authentication failures; retry later"
    reason = "throttled"
    status = 429  # Retry-After: the throttle's own count of seconds
    fix = "stop sending bad tokens; wait for the Retry-After seconds, then use a valid token"


class RevocationUnavailableError(AuthError):
    """The revocation store cannot be read; fail closed rather than accept revoked tokens.

    ``storage`` is the database's failure (which database, and why), when known.
    """

    public_message = "Authentication unavailable: revocation store cannot be read"
    reason = "revocation_unavailable"
    fix = (
        "the database named above must be a readable, writable session-buddy database: "
        "move a corrupted file aside or fix SESSION_BUDDY_DATA_DIR "
        "(see: session-buddy auth status)"
    )
    status = 503
    retry_after = 5  # the store re-reads the log within a second of the database's return

    def __init__(self, detail: str | None = None, *, storage: StorageError | None = None) -> None:
        super().__init__(detail)
        if storage is not None:
            self.storage = storage
            self.fix = storage.fix


class TokenRequestError(ValueError):
    """A token cannot be created as asked (not a refusal of a caller); ``fix`` says why."""

    fix = "give a non-empty USER_ID of at most 256 characters"


class InvalidUserIdError(TokenRequestError):
    """``user_id`` is empty, not a string, or too long."""


class ReservedClaimError(TokenRequestError):
    """``additional_claims`` tried to set a claim session-buddy sets itself."""

    fix = "session-buddy sets user_id, sub, exp, iat, nbf, jti and type itself"

    def __init__(self, claims: Iterable[str]) -> None:
        self.claims = tuple(sorted(claims))
        super().__init__(f"additional_claims may not set reserved claims: {', '.join(self.claims)}")
