"""Tokens as Mahavishnu mints them (PyJWT, HS256), and hand-made ones PyJWT will not make.

:func:`mint` is the one way tests, stress scenarios and benchmarks get a valid token.
:func:`assemble` builds ``header.payload.signature`` from any JSON and any HMAC key, for the
hostile headers and payloads an attacker sends: test code, not a JWT implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()
"""A claim value that leaves the claim out of the payload (``user_id=DROP`` included)."""


def claims(
    user_id: object = "mahavishnu",
    *,
    now: float | None = None,
    lifetime: int = 3600,
    unique: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Mahavishnu's access-token payload: ``user_id``, ``exp``, ``iat`` and ``type``.

    ``extra`` adds or overrides claims; :data:`DROP` removes one. ``unique`` adds a random
    ``jti``, so two tokens minted in the same second for the same user differ.
    """
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {
        "user_id": user_id,
        "exp": issued + lifetime,
        "iat": issued,
        "type": "access",
    }
    if unique:
        payload["jti"] = secrets.token_urlsafe(12)
    payload.update(extra)
    return {name: value for name, value in payload.items() if value is not DROP}


def mint(
    secret: str,
    user_id: object = "mahavishnu",
    *,
    now: float | None = None,
    lifetime: int = 3600,
    unique: bool = False,
    headers: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    """A token exactly as Mahavishnu mints it with plain PyJWT: :func:`claims`, signed HS256."""
    payload = claims(user_id, now=now, lifetime=lifetime, unique=unique, **extra)
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


@dataclass
class Minter:
    """:func:`mint` with one secret, keeping every token it made (for log and file scans)."""

    secret: str
    issued: list[str] = field(default_factory=list)

    def __call__(self, user_id: object = "mahavishnu", **options: Any) -> str:
        token = mint(self.secret, user_id, **options)
        self.issued.append(token)
        return token


def b64(data: bytes) -> str:
    """Unpadded base64url, as in a JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class RawJson(str):
    """JSON text used as is (odd spacing, ``NaN``, documents too deep for ``json.dumps``)."""


def b64json(value: Any) -> str:
    """A JWT segment: ``value`` as compact JSON (a :class:`RawJson` as written), base64url."""
    text = value if isinstance(value, RawJson) else json.dumps(value, separators=(",", ":"))
    return b64(text.encode())


def assemble(header: Any, payload: Any, key: str | bytes | None, alg: str = "HS256") -> str:
    """``header.payload.signature`` with an HMAC under ``key`` (empty signature if None)."""
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    if key is None:
        return f"{signing_input}."
    secret = key.encode() if isinstance(key, str) else key
    digest = hmac.new(secret, signing_input.encode(), HMAC_HASHES[alg]).digest()
    return f"{signing_input}.{b64(digest)}"
