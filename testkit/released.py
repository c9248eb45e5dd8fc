"""The released ecosystem's service tokens, written from mcp-common 0.19.1's behaviour.

The released packages (Mahavishnu 0.14, the upstream session-buddy 0.23) authenticate
service-to-service calls with ``mcp_common.auth.core``. These two functions do what its
``create_service_token`` and ``verify_token`` do, so tests need not install it:

* :func:`create_service_token` — PyJWT, HS256, ``{"sub": issuer, "iss": issuer, "aud":
  audience, "iat": now, "exp": now + ttl, "jti": uuid4, "scopes": [...]}``, times as
  datetimes (PyJWT turns them into integers);
* :func:`verify_service_token` — PyJWT's decode with ``audience=`` the verifier's own
  service name, then the issuer among :data:`KNOWN_SERVICES`; the subject is ``sub`` (""
  when absent) and the permissions are the scopes when every one is in mcp-common's
  vocabulary, else none at all.

``make interop`` holds them to the real module (``tests/interop``), and
:func:`extract_auth_module` is how it gets that module out of the released wheel.
"""

from __future__ import annotations

import sys
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

KNOWN_SERVICES = frozenset({"mahavishnu", "session-buddy", "akosha", "dhara", "crackerjack"})
PERMISSIONS = frozenset({"read", "write", "delete", "admin"})
DEFAULT_TTL_SECONDS = 3600
AUTH_PACKAGE = "mcp_common/auth/"


class ReleasedVerifierRefusal(Exception):
    """The released verifier refused the token; ``kind`` says as which of its errors."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ServiceTokenPayload:
    """What the released ``verify_token`` returns (its ``TokenPayload``'s fields)."""

    issuer: str
    audience: Any
    subject: str
    jti: str
    permissions: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    raw: dict[str, Any] = field(default_factory=dict)


def create_service_token(
    *,
    secret: str,
    issuer: str,
    audience: str,
    permissions: Iterable[str],
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> str:
    """A service token exactly as the released ``create_service_token`` mints it."""
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "sub": issuer,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": str(uuid.uuid4()),
        "scopes": list(permissions),
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def verify_service_token(token: str, *, secret: str, expected_audience: str) -> ServiceTokenPayload:
    """The released ``verify_token``'s verdict, raising :class:`ReleasedVerifierRefusal`
    (``kind`` named after its exception class) where it raises."""
    try:
        raw = jwt.decode(token, secret, algorithms=["HS256"], audience=expected_audience)
    except jwt.ExpiredSignatureError:
        raise ReleasedVerifierRefusal("TokenExpiredError", "Token has expired") from None
    except jwt.InvalidAudienceError as exc:
        raise ReleasedVerifierRefusal("AudienceMismatchError", str(exc)) from None
    except jwt.InvalidTokenError as exc:
        raise ReleasedVerifierRefusal("TokenInvalidError", str(exc)) from None
    issuer = raw.get("iss", "")
    if issuer not in KNOWN_SERVICES:
        raise ReleasedVerifierRefusal("UnknownIssuerError", f"Unknown issuer: {issuer!r}")
    scopes = raw.get("scopes", [])
    permissions: frozenset[str] = frozenset()
    if all(isinstance(scope, str) and scope in PERMISSIONS for scope in scopes):
        permissions = frozenset(scopes)
    return ServiceTokenPayload(
        issuer=issuer,
        audience=raw.get("aud", ""),
        subject=raw.get("sub", ""),
        jti=raw.get("jti", ""),
        permissions=permissions,
        issued_at=datetime.fromtimestamp(raw["iat"], tz=UTC),
        expires_at=datetime.fromtimestamp(raw["exp"], tz=UTC),
        raw=raw,
    )


def extract_auth_module(wheel: Path, destination: Path) -> Path:
    """Unpack ``mcp_common/auth`` from the released wheel under ``destination``, beside an
    empty ``mcp_common/__init__.py`` (the real one imports far more, and needs 3.13).

    Returns ``destination``: put it on ``sys.path`` (or ``PYTHONPATH``).
    """
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.startswith(AUTH_PACKAGE)]
        if not members:
            raise ValueError(f"{wheel} has no {AUTH_PACKAGE}")
        archive.extractall(destination, members)
    (destination / "mcp_common" / "__init__.py").write_text("", encoding="utf-8")
    return destination


if __name__ == "__main__":  # make interop: python -m testkit.released WHEEL DESTINATION
    wheel_path, target = (Path(argument) for argument in sys.argv[1:3])
    print(extract_auth_module(wheel_path, target))
