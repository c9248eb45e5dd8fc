"""Tokens minted elsewhere validate: Mahavishnu's shapes (PyJWT) and joserfc's."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from session_buddy.mcp import auth
from testkit.tokens import DROP, mint


def test_documented_client_example_token_validates(auth_enabled: str) -> None:
    payload = {
        "user_id": "mahavishnu",
        "exp": datetime.now(tz=UTC) + timedelta(minutes=60),
        "iat": datetime.now(tz=UTC),
        "type": "access",
        "iss": "mahavishnu",
    }
    token = jwt.encode(payload, auth_enabled, algorithm="HS256")
    claims = auth.validate_token(token)
    assert claims is not None
    assert claims["user_id"] == "mahavishnu"


def test_mahavishnu_token_without_issuer_validates(auth_enabled: str) -> None:
    now = datetime.now(tz=UTC)
    token = jwt.encode(
        {"user_id": "mahavishnu", "exp": now + timedelta(minutes=5), "iat": now, "type": "access"},
        auth_enabled,
        algorithm="HS256",
    )
    claims = auth.validate_token(token)
    assert claims is not None and "iss" not in claims


def test_mahavishnu_scoped_token_shape_validates(auth_enabled: str) -> None:
    token = jwt.encode(
        {
            "sub": "mahavishnu",
            "user_id": "mahavishnu",
            "scopes": ["sessions:read", "sessions:write"],
            "exp": int(time.time()) + 600,
        },
        auth_enabled,
        algorithm="HS256",
    )
    claims = auth.validate_token(token)
    assert claims is not None and claims["scopes"] == ["sessions:read", "sessions:write"]


def test_mahavishnu_token_is_accepted_by_an_issuer_allow_list(
    monkeypatch, auth_enabled: str
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_ALLOWED_ISSUERS", "mahavishnu,session-buddy")
    auth.reload_auth_config()
    token = jwt.encode(
        {"user_id": "m", "exp": int(time.time()) + 60, "iss": "mahavishnu"},
        auth_enabled,
        algorithm="HS256",
    )
    assert auth.validate_token(token) is not None
    assert auth.validate_token(auth.generate_test_token("own")) is not None


@pytest.mark.parametrize(
    "issuer",
    ["mallory", "Mahavishnu", "mahavishnu,session-buddy", DROP],
    ids=["another", "other-case", "the-list-as-one", "missing"],
)
def test_a_token_from_an_issuer_not_on_the_allow_list_is_an_invalid_token(
    monkeypatch: pytest.MonkeyPatch, auth_enabled: str, issuer: object
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_ALLOWED_ISSUERS", "mahavishnu,session-buddy")
    auth.reload_auth_config()
    assert auth.validate_token(mint(auth_enabled, "m", iss=issuer)) is None
    assert auth.get_auth_error() == "Invalid token"


def test_joserfc_minted_token_validates(auth_enabled: str) -> None:
    key = OctKey.import_key(auth_enabled)
    token = jose_jwt.encode(
        {"alg": "HS256"},
        {"user_id": "jose", "exp": int(time.time()) + 600, "type": "access"},
        key,
    )
    claims = auth.validate_token(token)
    assert claims is not None and claims["user_id"] == "jose"


def test_our_tokens_verify_with_joserfc(auth_enabled: str) -> None:
    token = auth.generate_test_token("ours")
    decoded = jose_jwt.decode(token, OctKey.import_key(auth_enabled), algorithms=["HS256"])
    assert decoded.claims["user_id"] == "ours"
    assert decoded.header["alg"] == "HS256"
