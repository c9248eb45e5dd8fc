"""The reference verdict on a token: PyJWT's ``jwt.decode`` with our options, plus our rules.

Production verifies with :func:`session_buddy.auth.tokens.decode_access_token` (the HMAC
before any JSON, PyJWT's claim checks in PyJWT's order). This module is the other path it
must agree with, kept out of the product because only the differential tests and the
benchmarks call it. It shares the product's rule functions for the header and the
identity, and states on its own the token's shape (a canonical base64url segment is one that
encodes back to itself) and what a time claim may hold.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from session_buddy.auth import errors
from session_buddy.auth.tokens import (
    ALGORITHM,
    BAD_SIGNATURE,
    TokenPolicy,
    _check_identity_and_type,
    check_header,
)

_SEGMENTS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}")

_PYJWT_ERRORS: tuple[tuple[type[Exception], type[errors.AuthError]], ...] = (
    (jwt.ExpiredSignatureError, errors.ExpiredTokenError),
    (jwt.ImmatureSignatureError, errors.ImmatureTokenError),
    (jwt.InvalidSignatureError, errors.InvalidSignatureError),
    (jwt.InvalidAlgorithmError, errors.DisallowedAlgorithmError),
    (jwt.InvalidIssuerError, errors.InvalidIssuerError),
    (jwt.InvalidAudienceError, errors.InvalidAudienceError),
    (jwt.DecodeError, errors.MalformedTokenError),
    (jwt.PyJWTError, errors.InvalidClaimError),
)


def check_shape(token: str) -> None:
    """Three canonical, unpadded base64url segments with a 32-byte signature."""
    if _SEGMENTS.fullmatch(token) is None:
        raise errors.MalformedTokenError("not three unpadded base64url segments")
    for segment in token.split("."):
        try:
            decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except binascii.Error:
            raise errors.MalformedTokenError("non-canonical base64url segment") from None
        if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode() != segment:
            raise errors.MalformedTokenError("non-canonical base64url segment")


def _is_numeric_date(value: object) -> bool:
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
        if claim in payload and not _is_numeric_date(payload[claim]):
            raise errors.InvalidClaimError(f"{claim} is not a NumericDate")


def check_session_buddy_claims(payload: Mapping[str, Any]) -> None:
    """Our rules beyond PyJWT: numeric times, a real identity, the access type."""
    check_time_claims(payload)
    _check_identity_and_type(payload)  # the product's rule: nothing for PyJWT to say here


def _map_pyjwt_error(exc: Exception) -> errors.AuthError:
    for pyjwt_error, ours in _PYJWT_ERRORS:
        if isinstance(exc, pyjwt_error):
            return ours(f"PyJWT: {type(exc).__name__}")
    return errors.InvalidTokenError(f"PyJWT: {type(exc).__name__}")


def _decode(token: str, secret: str, policy: TokenPolicy, *, verify_aud: bool) -> dict[str, Any]:
    return jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["exp"], "verify_aud": verify_aud},
        audience=policy.audience,
        issuer=list(policy.allowed_issuers) or None,
        leeway=policy.leeway_seconds,
    )


def decode_with_pyjwt(token: str, secrets_: Sequence[str], policy: TokenPolicy) -> dict[str, Any]:
    """The reference verdict: PyJWT's ``jwt.decode`` with our options, plus our extra rules.

    The audience: PyJWT's ``audience=`` check, except that a token without ``aud`` (which
    PyJWT reports as a missing claim) is accepted unless ``policy.require_audience``.

    PyJWT reads its own clock, so callers must avoid tokens within a second of a boundary.
    """
    if len(token) > policy.max_token_bytes:
        raise errors.TokenTooLargeError(f"token is {len(token)} characters")
    check_shape(token)
    try:
        check_header(jwt.get_unverified_header(token))
    except jwt.PyJWTError as exc:
        raise errors.MalformedTokenError(f"header: {type(exc).__name__}") from None
    payload: dict[str, Any] | None = None
    for secret in secrets_:
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
            raise _map_pyjwt_error(exc) from None
        except jwt.PyJWTError as exc:
            raise _map_pyjwt_error(exc) from None
    if payload is None:
        raise errors.InvalidSignatureError(BAD_SIGNATURE)
    check_session_buddy_claims(payload)
    return payload
