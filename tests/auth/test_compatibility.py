"""Code written for the original API (and for Mahavishnu's ``permissions.JWTManager``) keeps
working: refusals are ``ValueError``s with the same messages, and a refreshed or revoked
token is refused at once by the process that refreshed or revoked it."""

from __future__ import annotations

import time

import pytest

from session_buddy.auth import errors
from session_buddy.mcp import auth
from session_buddy.mcp.auth import AuthConfig, JWTManager
from testkit.tokens import assemble, mint

ANOTHER_SECRET = "another-secret-0123456789abcdefghijklmn"


def refusals(secret: str) -> dict[str, tuple[str, str]]:
    """Tokens each refused for another reason, with the message the caller sees."""
    now = int(time.time())
    return {
        "expired": (mint(secret, exp=now - 60), "Token has expired"),
        "wrong secret": (mint(ANOTHER_SECRET), "Invalid token"),
        "garbage": ("not-a-token", "Invalid token"),
        "alg none": (
            assemble({"alg": "none"}, {"user_id": "x", "exp": now + 60}, None),
            "Invalid token",
        ),
        "another audience": (mint(secret, aud="akosha"), "Invalid token"),
        "no identity": (mint(secret, user_id=""), "Invalid token"),
    }


def mahavishnu_style_verify(manager: JWTManager, token: str) -> str:
    """As Mahavishnu's code and the original API's callers write it."""
    try:
        manager.verify_token(token)
    except ValueError as exc:
        return str(exc)
    return "accepted"


@pytest.mark.parametrize(
    "case", ["expired", "wrong secret", "garbage", "alg none", "another audience", "no identity"]
)
def test_every_verify_refusal_is_caught_by_except_value_error(auth_enabled: str, case: str) -> None:
    token, message = refusals(auth_enabled)[case]
    assert mahavishnu_style_verify(JWTManager(AuthConfig()), token) == message


def test_a_revoked_token_is_a_value_error_with_its_message(auth_enabled: str) -> None:
    manager = JWTManager(AuthConfig())
    token = manager.create_token("alice")
    manager.revoke_token(token)
    assert mahavishnu_style_verify(manager, token) == "Token has been revoked"


@pytest.mark.parametrize("case", ["expired", "wrong secret", "garbage"])
def test_every_refresh_refusal_is_a_value_error(auth_enabled: str, case: str) -> None:
    token, message = refusals(auth_enabled)[case]
    with pytest.raises(ValueError, match=f"^{message}$"):
        JWTManager(AuthConfig()).refresh_token(token)


def test_refreshing_a_refreshed_token_is_a_value_error(auth_enabled: str) -> None:
    manager = JWTManager(AuthConfig())
    token = manager.create_token("alice")
    manager.refresh_token(token)
    with pytest.raises(ValueError, match=r"^Token has been revoked$"):
        manager.refresh_token(token)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"token": None}, "Token required"),
        ({"token": "x.y.z"}, "Invalid token"),
        ({"token": "ROLE", "roles": ["admin"]}, "role 'None' not allowed"),
        ({"token": "SCOPE", "scopes": ["write"]}, "missing scope 'write'"),
    ],
    ids=["missing", "invalid", "role", "scope"],
)
def test_every_authenticate_refusal_is_a_value_error(
    auth_enabled: str, arguments: dict[str, object], message: str
) -> None:
    if arguments["token"] in ("ROLE", "SCOPE"):
        arguments = {**arguments, "token": mint(auth_enabled, "alice", scopes=["read"])}
    with pytest.raises(ValueError, match=f"^{message}$"):
        JWTManager(AuthConfig()).authenticate(**arguments)  # type: ignore[arg-type]


def test_a_reserved_claim_is_a_value_error(auth_enabled: str) -> None:
    with pytest.raises(ValueError, match="reserved claims: exp, sub"):
        JWTManager(AuthConfig()).create_token("alice", {"exp": 1, "sub": "mallory"})


def test_an_unusable_secret_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "too-short")
    with pytest.raises(ValueError, match="at least 32 characters"):
        JWTManager(AuthConfig()).verify_token("x.y.z")


# -- the rotation window ---------------------------------------------------------------------


def test_the_old_token_is_refused_right_after_a_refresh_in_another_manager(
    auth_enabled: str,
) -> None:
    old = auth.generate_test_token("alice")
    assert auth.validate_token(old) is not None  # verified once: now in the verdict cache
    new = JWTManager(AuthConfig()).refresh_token(old)
    assert auth.validate_token(old) is None
    assert auth.get_auth_error() == "Token has been revoked"
    assert auth.validate_token(new) is not None


def test_the_token_is_refused_right_after_a_revocation_in_another_manager(
    auth_enabled: str,
) -> None:
    token = auth.generate_test_token("alice")
    assert auth.validate_token(token) is not None
    JWTManager(AuthConfig()).revoke_token(token)
    assert auth.validate_token(token) is None
    assert auth.get_auth_error() == "Token has been revoked"


def test_every_manager_of_the_process_refuses_the_old_token_at_once(auth_enabled: str) -> None:
    managers = [JWTManager(AuthConfig()) for _ in range(3)]
    old = managers[0].create_token("alice")
    for manager in managers:
        manager.verify_token(old)
    managers[1].refresh_token(old)
    for manager in managers:
        with pytest.raises(errors.RevokedTokenError):
            manager.verify_token(old)
