"""The reference verdict on a token: PyJWT's ``jwt.decode`` with session-buddy's options,
plus session-buddy's own rules, written out again here.

The differential tests (``tests/auth/test_differential.py``, ``make fuzz``) hold the
product's verifier to this verdict: the same acceptance, the same public message, the same
claims. So that the two can disagree wherever either is wrong, this module shares nothing
with ``session_buddy`` — no function, no constant, no error class: each rule below is
restated from the documentation (``docs/JWT_AUTHENTICATION.md``), and its verdict is plain
data (:class:`Refused` with the message a caller would see).

The rules beyond PyJWT's:

* a token is a string; surrounding whitespace and one leading ``Bearer `` (any case) are
  ignored; it is at most 8 KiB, checked before anything is decoded;
* three unpadded, canonical base64url segments (each encodes back to itself), the last a
  32-byte signature;
* the header's ``alg`` is exactly ``HS256``, it carries no ``crit``, its ``kid`` (if any)
  is a string, and it does not ask for an unencoded payload (``b64`` false);
* ``exp`` is required; ``exp``, ``iat`` and ``nbf`` are RFC 7519 NumericDates a double can
  hold (not ``true``, not ``"12"``, not ``10**400``, not ``NaN``), or the token is invalid
  rather than expired;
* the caller is ``user_id``, else ``sub``: a non-empty string of at most 256 characters,
  every one printable (no control, format, separator other than the space, or surrogate);
  ``type``, when present, is ``"access"``;
* ``aud``: PyJWT's check against the server's audience, except that a token without one
  is accepted unless the audience is required.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

INVALID = "Invalid token"
EXPIRED = "Token has expired"
MAX_TOKEN_CHARS = 8 * 1024
MAX_IDENTITY_CHARS = 256

_SEGMENTS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}")


class Refused(Exception):
    """The reference refuses the token: ``message`` is what the caller would be told,
    ``why`` which rule refused it."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(f"{message} ({why})")
        self.message = message
        self.why = why


def invalid(why: str) -> Refused:
    return Refused(INVALID, why)


@dataclass(frozen=True)
class Policy:
    """What the server accepts apart from its secrets (its settings, restated)."""

    leeway_seconds: float = 0
    allowed_issuers: tuple[str, ...] = ()
    audience: str | None = None
    require_audience: bool = False
    max_token_chars: int = MAX_TOKEN_CHARS


def normalized(raw: object, max_chars: int = MAX_TOKEN_CHARS) -> str:
    """The token as presented, without surrounding whitespace or a ``Bearer `` prefix."""
    if not isinstance(raw, str):
        raise invalid("not a string")
    if len(raw) > 2 * max_chars:
        raise invalid("too large")
    token = raw.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].lstrip()
    if len(token) > max_chars:
        raise invalid("too large")
    if not token:
        raise invalid("empty")
    return token


def check_shape(token: str) -> None:
    """Three canonical, unpadded base64url segments with a 32-byte signature."""
    if _SEGMENTS.fullmatch(token) is None:
        raise invalid("not three unpadded base64url segments")
    for segment in token.split("."):
        try:
            decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except binascii.Error:
            raise invalid("non-canonical base64url segment") from None
        if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode() != segment:
            raise invalid("non-canonical base64url segment")


def check_header(header: Mapping[str, Any]) -> None:
    """``alg`` exactly HS256; no ``crit``; a string ``kid``; no unencoded payload."""
    if header.get("alg") != "HS256":
        raise invalid("alg is not HS256")
    if "crit" in header:
        raise invalid("crit header")
    if "kid" in header and not isinstance(header["kid"], str):
        raise invalid("kid is not a string")
    if header.get("b64") is False:
        raise invalid("unencoded payload")


def is_numeric_date(value: object) -> bool:
    """RFC 7519's NumericDate held to I-JSON (RFC 7493): a number an IEEE double represents
    (PyJWT's ``int()`` takes ``"12"``, ``true`` and ``10**400``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)  # an int is converted to a double first
    except OverflowError:
        return False


def check_time_claims(payload: Mapping[str, Any]) -> None:
    """``exp``, ``iat`` and ``nbf``, where present, are NumericDates."""
    for claim in ("exp", "iat", "nbf"):
        if claim in payload and not is_numeric_date(payload[claim]):
            raise invalid(f"{claim} is not a NumericDate")


def check_caller(payload: Mapping[str, Any]) -> None:
    """The caller (``user_id``, else ``sub``) is a real name; the token is an access token."""
    caller = payload["user_id"] if "user_id" in payload else payload.get("sub")
    if not isinstance(caller, str) or not caller.strip():
        raise invalid("no caller")
    if len(caller) > MAX_IDENTITY_CHARS:
        raise invalid("caller name too long")
    if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in caller):
        raise invalid("caller name holds an unprintable character")
    if "type" in payload and payload["type"] != "access":
        raise invalid("not an access token")


def _refused_by_pyjwt(exc: jwt.PyJWTError) -> Refused:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return Refused(EXPIRED, "PyJWT: ExpiredSignatureError")
    return invalid(f"PyJWT: {type(exc).__name__}")


def _decode(token: str, secret: str, policy: Policy, *, verify_aud: bool) -> dict[str, Any]:
    return jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        options={"require": ["exp"], "verify_aud": verify_aud},
        audience=policy.audience,
        issuer=list(policy.allowed_issuers) or None,
        leeway=policy.leeway_seconds,
    )


def decode_with_pyjwt(raw: object, secrets: Sequence[str], policy: Policy) -> dict[str, Any]:
    """The reference verdict: the token's claims, or :class:`Refused`.

    PyJWT reads its own clock, so callers must avoid tokens within a second of a boundary.
    """
    token = normalized(raw, policy.max_token_chars)
    check_shape(token)
    try:
        check_header(jwt.get_unverified_header(token))
    except jwt.PyJWTError as exc:
        raise invalid(f"header: {type(exc).__name__}") from None
    payload: dict[str, Any] | None = None
    for secret in secrets:
        try:
            try:
                payload = _decode(token, secret, policy, verify_aud=True)
            except jwt.MissingRequiredClaimError as exc:
                if exc.claim != "aud" or policy.require_audience:
                    raise
                # PyJWT wants an aud once we name an audience; our policy accepts none.
                # The checks before the audience's passed; the ones after it run again.
                payload = _decode(token, secret, policy, verify_aud=False)
            break
        except jwt.InvalidSignatureError:
            continue
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
            # The signature was good; an odd time claim outranks the time verdict.
            check_time_claims(jwt.decode(token, options={"verify_signature": False}))
            raise _refused_by_pyjwt(exc) from None
        except jwt.PyJWTError as exc:
            raise _refused_by_pyjwt(exc) from None
    if payload is None:
        raise invalid("no secret made this signature")
    check_time_claims(payload)
    check_caller(payload)
    return payload
