"""Mint many real HS256 tokens quickly: a fixed header, a templated payload, a prepared HMAC.

PyJWT takes tens of microseconds per token; a million distinct tokens would take longer
than the benchmark itself. These tokens are byte-for-byte what PyJWT would produce for
the same claims (compact JSON, unpadded base64url), and :meth:`FastMinter.check` proves
one of them against PyJWT before any is used.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator

import jwt

from testkit.tokens import b64, b64json

HEADER = {"alg": "HS256", "typ": "JWT"}


class FastMinter:
    """Distinct access tokens for one secret: ``user_id``, ``iat``, ``exp``, ``type``, ``jti``."""

    def __init__(self, secret: str, *, user_id: str = "bench-user", lifetime: int = 3600) -> None:
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self._header = b64json(HEADER)
        now = int(time.time())
        self._payload_prefix = json.dumps(
            {
                "iss": "session-buddy",
                "user_id": user_id,
                "iat": now,
                "exp": now + lifetime,
                "type": "access",
            },
            separators=(",", ":"),
        )[:-1]
        self._run = secrets.token_hex(4)  # jti values never repeat across runs

    def token(self, number: int) -> str:
        payload = f'{self._payload_prefix},"jti":"b{self._run}-{number}"}}'
        signing_input = f"{self._header}.{b64(payload.encode())}"
        mac = self._mac.copy()
        mac.update(signing_input.encode())
        return f"{signing_input}.{b64(mac.digest())}"

    def tokens(self, count: int, start: int = 0) -> list[str]:
        return [self.token(number) for number in range(start, start + count)]

    def stream(self, start: int = 0) -> Iterator[str]:
        number = start
        while True:
            yield self.token(number)
            number += 1

    def check(self, secret: str) -> None:
        """Raise unless PyJWT accepts a minted token with ``secret`` (they are real)."""
        claims = jwt.decode(self.token(-1), secret, algorithms=["HS256"])
        if claims.get("type") != "access" or not str(claims.get("jti")).startswith("b"):
            raise RuntimeError(f"minted token decodes to unexpected claims: {sorted(claims)}")
