"""Issue and verify HS256 access tokens: the token rules, as pure functions.

:func:`decode_access_token` verifies with PyJWT (which also issues every token,
:func:`issue_token`) and adds session-buddy's rules: first the size, the strict shape and
canonical base64url (PyJWT tolerates ``=`` padding and any signature length, and its
releases differ on non-canonical encodings); then PyJWT's signature check against the
current secret and each previous one (HS256 only, JSON objects, a string ``kid``); then
the header rules, the claims in PyJWT's order — checked here, with the clock passed in,
since PyJWT reads its own — and the caller. The verdict is held to an independent
reference (``testkit/reference.py``) by ``tests/auth/test_differential.py``.

The rules take ``now`` so they are testable without sleeping.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from session_buddy.auth import errors

ALGORITHM = "HS256"
MAX_TOKEN_BYTES = 8 * 1024
MAX_IDENTITY_LENGTH = 256
ACCESS_TYPE = "access"
RESERVED_CLAIMS = frozenset({"user_id", "sub", "exp", "iat", "nbf", "jti", "type"})

# Three unpadded base64url segments; an HS256 signature is exactly 32 bytes = 43 characters.
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Canonical encodings only: the unused low bits of a segment's last character must be zero,
# so a token has one spelling (its digest is the revocation key of a token without jti).
# Ours, not left to PyJWT: the releases this project allows differ on it.
_CANONICAL_LAST = {
    2: frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x0F == 0),
    3: frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x03 == 0),
}
_BEARER = "bearer "
BAD_SIGNATURE = "signature does not match any configured secret"
# PyJWT checks the signature and the encoding; every claim is checked by check_registered_claims.
_PYJWT_OPTIONS: Any = {
    "require": [],
    **{f"verify_{claim}": False for claim in ("exp", "iat", "nbf", "iss", "aud", "sub", "jti")},
}


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What an acceptable token looks like, apart from the keys.

    ``audience``: a token whose ``aud`` is (or, as a list, contains) it is accepted, any
    other ``aud`` refused; a token without ``aud`` is accepted unless ``require_audience``.
    ``None`` (no audience of our own) refuses every token that carries an ``aud``.
    """

    leeway_seconds: float = 0
    allowed_issuers: tuple[str, ...] = ()
    audience: str | None = None
    require_audience: bool = False
    max_token_bytes: int = MAX_TOKEN_BYTES


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """The current secret (signs and verifies) and previous ones (verify only)."""

    current: bytes
    previous: tuple[bytes, ...] = ()
    all: tuple[bytes, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "all", (self.current, *self.previous))

    def __repr__(self) -> str:
        return f"SigningKeys(<{len(self.all)} secrets hidden>)"

    @classmethod
    def from_secrets(cls, current: str, previous: Sequence[str] = ()) -> SigningKeys:
        return cls(current.encode(), tuple(p.encode() for p in previous if p))


def presented(token: object) -> bool:
    """Whether a caller presented a token at all (an empty string is none)."""
    return token is not None and token != ""


def normalize_token(raw: object, max_bytes: int = MAX_TOKEN_BYTES) -> str:
    """Strip surrounding whitespace and one leading case-insensitive ``Bearer ``.

    Anything that is not a string, or is longer than the limit, is refused here, before
    any decoding.
    """
    if not isinstance(raw, str):
        raise errors.MalformedTokenError(f"token is a {type(raw).__name__}, not a string")
    if len(raw) > 2 * max_bytes:
        raise errors.TokenTooLargeError(f"token is {len(raw)} characters (limit {max_bytes})")
    token = raw.strip()
    if token[:7].lower() == _BEARER:
        token = token[7:].lstrip()
    if len(token) > max_bytes:
        raise errors.TokenTooLargeError(f"token is {len(token)} characters (limit {max_bytes})")
    if not token:
        raise errors.MalformedTokenError("token is empty")
    return token


def check_header(header: Mapping[str, Any]) -> None:
    """``alg`` exactly HS256; no ``crit``; ``kid`` a string; no unencoded payloads."""
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise errors.DisallowedAlgorithmError(f"header alg {str(alg)[:20]!r} is not HS256")
    if "crit" in header:
        raise errors.CriticalHeaderError("header carries crit")
    if "kid" in header and not isinstance(header["kid"], str):
        raise errors.MalformedTokenError("header kid is not a string")
    if header.get("b64", True) is False:
        raise errors.MalformedTokenError("header b64=false (unencoded payload)")


def _as_int(payload: Mapping[str, Any], claim: str) -> int:
    # PyJWT's own conversion, so both paths judge odd values ("12", 1.5, true) alike.
    try:
        return int(payload[claim])
    except (ValueError, TypeError, OverflowError):
        raise errors.InvalidClaimError(f"{claim} is not an integer") from None


def check_registered_claims(payload: Mapping[str, Any], policy: TokenPolicy, now: float) -> None:
    """The checks PyJWT makes with our options, in PyJWT's order.

    Times must first be real numbers (PyJWT's ``int()`` would take ``"12"`` or ``true``),
    so an odd ``exp`` is "Invalid token", never "Token has expired".
    """
    leeway = policy.leeway_seconds
    if payload.get("exp") is None:
        raise errors.InvalidClaimError("exp is missing")
    check_time_claim_types(payload)
    if "iat" in payload and _as_int(payload, "iat") > now + leeway:
        raise errors.ImmatureTokenError("iat is in the future")
    if "nbf" in payload and _as_int(payload, "nbf") > now + leeway:
        raise errors.ImmatureTokenError("nbf is in the future")
    if _as_int(payload, "exp") <= now - leeway:
        raise errors.ExpiredTokenError("exp is in the past")
    if policy.allowed_issuers:
        iss = payload.get("iss")
        if "iss" not in payload:
            raise errors.InvalidIssuerError("iss is missing")
        if not isinstance(iss, str) or iss not in policy.allowed_issuers:
            raise errors.InvalidIssuerError("iss is not in the allow-list")
    _check_audience(payload, policy)
    if "sub" in payload and not isinstance(payload["sub"], str):
        raise errors.InvalidClaimError("sub is not a string")
    if "jti" in payload and not isinstance(payload["jti"], str):
        raise errors.InvalidClaimError("jti is not a string")


def _check_audience(payload: Mapping[str, Any], policy: TokenPolicy) -> None:
    # PyJWT's notion of "no aud": absent, or any falsy value ("", [], null).
    aud = payload.get("aud")
    audience = policy.audience
    if audience is None:
        if aud:
            raise errors.InvalidAudienceError("token has aud but no audience is configured")
        return
    if not aud:
        if policy.require_audience:
            raise errors.InvalidAudienceError("aud is missing (SESSION_BUDDY_REQUIRE_AUDIENCE)")
        return
    claims = [aud] if isinstance(aud, str) else aud
    if not isinstance(claims, list) or any(not isinstance(c, str) for c in claims):
        raise errors.InvalidAudienceError("aud is not a string or list of strings")
    if audience not in claims:
        raise errors.InvalidAudienceError("aud does not match")


def finite_number(value: object) -> float | None:
    """``value`` as a float when it is a JSON number a double can hold, else None.

    Not a bool, not text, not NaN or ±infinity (Python's JSON reads ``NaN``, ``1e400``),
    and not an integer beyond a double's range (``10**400``): I-JSON's numbers (RFC 7493),
    so every later use of a time (``float()``, date arithmetic) is safe.
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):  # a tuple: no union
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _is_number(value: object) -> bool:
    return finite_number(value) is not None


def check_time_claim_types(payload: Mapping[str, Any]) -> None:
    """``exp``, ``iat`` and ``nbf``, when present, are finite numbers a double can hold
    (not bools, not text, not ``10**400``)."""
    for claim in ("exp", "iat", "nbf"):
        if claim in payload and not _is_number(payload[claim]):
            raise errors.InvalidClaimError(f"{claim} is not a number")


def check_identity(identity: object, claim: str) -> str:
    """``identity`` (the value of ``claim``) when it names a caller: a non-empty string of at
    most :data:`MAX_IDENTITY_LENGTH` printable characters; else ``MissingIdentityError``."""
    if not isinstance(identity, str) or not identity.strip():
        raise errors.MissingIdentityError(f"{claim} is not a non-empty string")
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise errors.MissingIdentityError(f"{claim} is too long")
    if not identity.isprintable():
        raise errors.MissingIdentityError(
            f"{claim} is not printable (a control, format or surrogate character)"
        )
    return identity


def _check_identity_and_type(payload: Mapping[str, Any]) -> None:
    check_identity(
        payload["user_id"] if "user_id" in payload else payload.get("sub"), "user_id/sub"
    )
    if "type" in payload and payload["type"] != ACCESS_TYPE:
        raise errors.WrongTokenTypeError("type is not 'access'")


def decode_access_token(
    token: str, keys: SigningKeys, policy: TokenPolicy, now: float
) -> dict[str, Any]:
    """Verify a normalised token and return its claims, or raise an ``AuthError``."""
    if len(token) > policy.max_token_bytes:
        raise errors.TokenTooLargeError(f"token is {len(token)} characters")
    if _SHAPE.fullmatch(token) is None:
        raise errors.MalformedTokenError("not three unpadded base64url segments")
    if not all(map(_canonical, token.split("."))):
        raise errors.MalformedTokenError("non-canonical base64url segment")
    decoded = _signed_by_any_key(token, keys)
    check_header(decoded["header"])
    payload: dict[str, Any] = decoded["payload"]
    check_registered_claims(payload, policy, now)
    _check_identity_and_type(payload)  # check_registered_claims checked the time types
    return payload


def _canonical(segment: str) -> bool:
    rem = len(segment) % 4
    return rem == 0 or (rem != 1 and segment[-1] in _CANONICAL_LAST[rem])


def _signed_by_any_key(token: str, keys: SigningKeys) -> dict[str, Any]:
    """PyJWT's ``decode_complete`` with the first key that made the signature."""
    for key in keys.all:
        try:
            decoded: dict[str, Any] = jwt.api_jwt.decode_complete(
                token, key, algorithms=[ALGORITHM], options=_PYJWT_OPTIONS
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidAlgorithmError:
            raise errors.DisallowedAlgorithmError("header alg is not HS256") from None
        except jwt.PyJWTError as exc:
            raise errors.MalformedTokenError(f"PyJWT: {type(exc).__name__}") from None
        return decoded
    raise errors.InvalidSignatureError(BAD_SIGNATURE)


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


def access_claims(base: Mapping[str, Any], *, issued_at: int, expires_at: int) -> dict[str, Any]:
    """``base`` plus what every access token we sign carries: ``iat``, ``exp``, ``type``
    and a fresh ``jti``. New tokens (:func:`issue_token`) and refreshed ones
    (``JWTManager.refresh_token``) are both built here."""
    return {
        **base,
        "iat": issued_at,
        "exp": expires_at,
        "type": ACCESS_TYPE,
        "jti": new_token_id(),
    }


def sign_claims(claims: Mapping[str, Any], secret: str) -> str:
    """The HS256 token for ``claims``, signed by PyJWT."""
    return jwt.encode(dict(claims), secret, algorithm=ALGORITHM)


def issue_token(
    user_id: str,
    secret: str,
    *,
    now: float,
    expire_seconds: float,
    issuer: str | None = "session-buddy",
    additional_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign a new HS256 access token with PyJWT.

    The token names its holder twice: ``user_id`` (what Mahavishnu's tokens and ours have
    always carried) and ``sub`` (what mcp-common's released verifiers read), both
    ``user_id``. ``additional_claims`` may not set a reserved claim (``user_id``, ``sub``,
    ``exp``, ``iat``, ``nbf``, ``jti``, ``type``): that raises :class:`~session_buddy.
    auth.errors.ReservedClaimError` (a ``ValueError``) rather than silently minting a
    token for someone else or one that never expires.
    """
    if not isinstance(user_id, str) or not user_id.strip():
        raise errors.InvalidUserIdError("user_id must be a non-empty string")
    if len(user_id) > MAX_IDENTITY_LENGTH:
        raise errors.InvalidUserIdError(f"user_id must be at most {MAX_IDENTITY_LENGTH} characters")
    if not user_id.isprintable():
        raise errors.InvalidUserIdError(
            "user_id must be printable (no control, format or lone surrogate character)"
        )
    extra = dict(additional_claims or {})
    clash = RESERVED_CLAIMS.intersection(extra)
    if clash:
        raise errors.ReservedClaimError(clash)
    base: dict[str, Any] = {"iss": issuer} if issuer else {}
    base.update(extra)
    base["user_id"] = user_id
    base["sub"] = user_id
    issued_at = int(now)
    claims = access_claims(base, issued_at=issued_at, expires_at=issued_at + int(expire_seconds))
    return sign_claims(claims, secret)


def token_fingerprint(token: object) -> str:
    """First 12 hex characters of the token's SHA-256: safe to log, useless to replay."""
    data = token.encode("utf-8", "replace") if isinstance(token, str) else repr(token).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def token_digest(token: str) -> str:
    """Full SHA-256 of a token: the revocation key for tokens without a ``jti``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
