"""Token minting helpers for the auth tests (PyJWT, as Mahavishnu mints them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt

from session_buddy.auth.tokens import TokenPolicy


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(
    secret: str,
    *,
    now: float | None = None,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """An HS256 token with ``user_id``/``exp``/``iat``/``type`` defaults, overridable."""
    now = time.time() if now is None else now
    payload: dict[str, Any] = {
        "user_id": "mahavishnu",
        "exp": int(now) + 3600,
        "iat": int(now),
        "type": "access",
    }
    for key, value in claims.items():
        if value is DROP:
            payload.pop(key, None)
        else:
            payload[key] = value
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


def sign_raw(secret: str, header: dict[str, Any] | str, payload: dict[str, Any] | str) -> str:
    """Hand-assemble a token, for headers and payloads PyJWT would refuse to produce."""
    h = header if isinstance(header, str) else json.dumps(header)
    p = payload if isinstance(payload, str) else json.dumps(payload)
    signing_input = f"{b64(h.encode())}.{b64(p.encode())}"
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()
POLICY = TokenPolicy()
