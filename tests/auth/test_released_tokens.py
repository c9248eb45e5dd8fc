"""The released ecosystem's service tokens (mcp-common 0.19.1), both ways.

mcp-common's ``create_service_token`` / ``verify_token`` as ``testkit.released`` states
them: session-buddy accepts the service tokens mcp-common mints for it, and a released
verifier accepts the tokens session-buddy mints with the right subject and permissions.
``make interop`` runs the same checks against the real module (``tests/interop``).
"""

from __future__ import annotations

import time

import jwt
import pytest

from session_buddy.auth import errors
from session_buddy.auth.principal import Principal
from session_buddy.client.credentials import MintedTokens
from session_buddy.config import load_settings
from session_buddy.mcp import auth
from session_buddy.mcp.auth import AuthConfig, JWTManager
from testkit.released import (
    ReleasedVerifierRefusal,
    create_service_token,
    verify_service_token,
)


def manager(**settings: object) -> JWTManager:
    return JWTManager(AuthConfig(load_settings(**settings)))


# -- their tokens, our verifier ---------------------------------------------------------


def test_a_released_mahavishnu_service_token_is_accepted_as_mahavishnu(auth_enabled: str) -> None:
    token = create_service_token(
        secret=auth_enabled, issuer="mahavishnu", audience="session-buddy", permissions=["read"]
    )
    principal = Principal.from_claims(manager().verify_token(token))
    assert principal.user_id == "mahavishnu"
    assert principal.issuer == "mahavishnu"
    assert principal.scopes == frozenset({"read"})


@pytest.mark.parametrize("audience", ["akosha", "mahavishnu", "Session-Buddy"])
def test_a_released_token_for_another_service_is_an_invalid_token(
    auth_enabled: str, audience: str
) -> None:
    token = create_service_token(
        secret=auth_enabled, issuer="akosha", audience=audience, permissions=["admin"]
    )
    assert auth.validate_token(token) is None
    assert auth.get_auth_error() == "Invalid token"
    with pytest.raises(errors.InvalidAudienceError) as refused:
        manager().verify_token(token)
    assert refused.value.reason == "bad_audience"


def test_a_configured_audience_replaces_the_default(auth_enabled: str) -> None:
    token = create_service_token(
        secret=auth_enabled, issuer="mahavishnu", audience="sessions", permissions=["read"]
    )
    assert manager(audience="sessions").verify_token(token)["sub"] == "mahavishnu"
    with pytest.raises(errors.InvalidAudienceError):
        manager().verify_token(token)


# -- our tokens, their verifier ---------------------------------------------------------


def test_our_tokens_pass_the_released_verifier_with_subject_and_permissions(
    auth_enabled: str,
) -> None:
    token = manager().create_token("session-buddy", {"scopes": ["read", "write"]})
    payload = verify_service_token(token, secret=auth_enabled, expected_audience="session-buddy")
    assert payload.subject == "session-buddy"
    assert payload.issuer == "session-buddy"
    assert payload.permissions == frozenset({"read", "write"})


def test_a_token_minted_for_mahavishnu_passes_its_released_verifier(auth_enabled: str) -> None:
    token = manager().create_token("session-buddy", {"scopes": ["read"]}, audience="mahavishnu")
    payload = verify_service_token(token, secret=auth_enabled, expected_audience="mahavishnu")
    assert (payload.subject, payload.audience) == ("session-buddy", "mahavishnu")
    with pytest.raises(errors.InvalidAudienceError):
        manager().verify_token(token)  # and this server, rightly, refuses it


def test_the_clients_minted_tokens_pass_the_released_verifier(secret: str) -> None:
    tokens = MintedTokens(secret, user_id="mahavishnu", audience="session-buddy", scopes=["read"])
    payload = verify_service_token(
        tokens.current(), secret=secret, expected_audience="session-buddy"
    )
    assert payload.subject == "mahavishnu"
    assert payload.permissions == frozenset({"read"})


def test_a_user_that_is_no_service_is_refused_by_the_released_verifier_as_issuer(
    auth_enabled: str,
) -> None:
    """What the released verifier checks that we do not: ``iss`` among its services."""
    token = manager().create_token("alice", {"iss": "alice"})
    with pytest.raises(ReleasedVerifierRefusal) as refused:
        verify_service_token(token, secret=auth_enabled, expected_audience="session-buddy")
    assert refused.value.kind == "UnknownIssuerError"


def test_older_verifiers_refuse_an_aud_so_no_audience_mints_without_one(
    auth_enabled: str,
) -> None:
    """Mahavishnu's repository ``JWTAuth`` and ``permissions.JWTManager`` decode with PyJWT
    and no audience: any ``aud`` is refused there, so ``audience=None`` leaves it out."""
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(manager().create_token("alice"), auth_enabled, algorithms=["HS256"])
    claims = jwt.decode(
        manager().create_token("alice", audience=None), auth_enabled, algorithms=["HS256"]
    )
    assert "aud" not in claims
    assert claims["sub"] == claims["user_id"] == "alice"
    assert claims["exp"] > time.time()
