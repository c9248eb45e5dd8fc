"""The released ecosystem's service tokens and signed messages, written from the released
code (mcp-common 0.19.1, Mahavishnu 0.14.0).

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

And :func:`sign_authenticated_message` signs a cross-project message as Mahavishnu's
``MessageAuthenticator.create_authenticated_message`` does.

``make interop`` holds them to the real modules (``tests/interop``), and
:func:`extract_released` is how it gets those modules out of the released wheels.
"""

from __future__ import annotations

import hashlib
import hmac
import json
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
MESSAGE_ALGORITHM = "HMAC-SHA256"

RELEASED_PARTS: dict[str, tuple[str, dict[str, str]]] = {
    # distribution: (what to unpack, the stand-in files beside it)
    "mcp_common": ("mcp_common/auth/", {"mcp_common/__init__.py": ""}),
    "mahavishnu": (
        "mahavishnu/session_buddy/auth.py",
        {
            "mahavishnu/__init__.py": "",
            "mahavishnu/session_buddy/__init__.py": "",
            "mahavishnu/core/__init__.py": "",
            # auth.py imports the settings class for its annotations only.
            "mahavishnu/core/config.py": "MahavishnuSettings = object\n",
        },
    ),
}
"""Per released wheel: the part the tests use, and the package files it needs around it
(the real ones import far more than a test can install, and need Python 3.13)."""


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


def sign_authenticated_message(
    secret: str, from_project: str, to_project: str, content: Any
) -> dict[str, Any]:
    """A cross-project message exactly as Mahavishnu's ``create_authenticated_message``
    makes it: ``{"message": {from_project, to_project, content, timestamp}, "signature",
    "algorithm"}``, the signature hex HMAC-SHA256 over ``json.dumps(message,
    sort_keys=True)``, the timestamp ``datetime.now(UTC).isoformat()``, and no nonce."""
    message = {
        "from_project": from_project,
        "to_project": to_project,
        "content": content,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    data = json.dumps(message, sort_keys=True).encode()
    signature = hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    return {"message": message, "signature": signature, "algorithm": MESSAGE_ALGORITHM}


def extract_released(wheel: Path, destination: Path) -> Path:
    """Unpack the part of a released wheel the tests use (:data:`RELEASED_PARTS`, chosen by
    the wheel's distribution name) under ``destination``, with its stand-in files.

    Returns ``destination``: put it on ``sys.path`` (or ``PYTHONPATH``).
    """
    distribution = wheel.name.partition("-")[0]
    if distribution not in RELEASED_PARTS:
        raise ValueError(f"{wheel.name}: not one of {sorted(RELEASED_PARTS)}")
    part, stand_ins = RELEASED_PARTS[distribution]
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.startswith(part)]
        if not members:
            raise ValueError(f"{wheel} has no {part}")
        archive.extractall(destination, members)
    for name, text in stand_ins.items():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        (destination / name).write_text(text, encoding="utf-8")
    return destination


if __name__ == "__main__":  # make interop: python -m testkit.released DESTINATION WHEEL...
    target, *wheels = (Path(argument) for argument in sys.argv[1:])
    for wheel_path in wheels:
        print(extract_released(wheel_path, target))
