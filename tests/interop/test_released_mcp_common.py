"""The REAL released mcp-common auth module against session-buddy, both ways.

Run by ``make interop``, which downloads mcp-common 0.19.1 from PyPI, unpacks its
``mcp_common/auth`` (``testkit.released.extract_released``) and puts it on
``PYTHONPATH``. In ``make test`` the module is absent and these tests are skipped.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import jwt
import pytest

from session_buddy.auth import errors
from session_buddy.auth.principal import Principal
from session_buddy.client.credentials import MintedTokens
from session_buddy.config import load_settings
from session_buddy.mcp.auth import AuthConfig, JWTManager
from testkit import released as kit
from testkit.clock import frozen_datetime

core = pytest.importorskip(
    "mcp_common.auth.core", reason="the released mcp-common is not on the path: make interop"
)
exceptions = pytest.importorskip("mcp_common.auth.exceptions")
permissions = pytest.importorskip("mcp_common.auth.permissions")

FrozenDatetime = frozen_datetime(datetime(2030, 1, 1, tzinfo=UTC))
FROZEN_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def manager() -> JWTManager:
    return JWTManager(AuthConfig(load_settings()))


def released_token(secret: str, issuer: str, audience: str, *scopes: str) -> str:
    perms = [permissions.Permission(scope) for scope in scopes]
    return str(
        core.create_service_token(
            secret=secret, issuer=issuer, audience=audience, permissions=perms
        )
    )


def released_verdict(token: str, secret: str, audience: str = "session-buddy") -> Any:
    return core.verify_token(token, secret=secret, expected_audience=audience)


# -- the real module mints, session-buddy verifies --------------------------------------


def test_a_real_mahavishnu_service_token_is_accepted_with_its_scopes(auth_enabled: str) -> None:
    token = released_token(auth_enabled, "mahavishnu", "session-buddy", "read", "write")
    principal = Principal.from_claims(manager().verify_token(token))
    assert principal.user_id == "mahavishnu"
    assert principal.scopes == frozenset({"read", "write"})


def test_a_real_token_for_akosha_is_refused_here(auth_enabled: str) -> None:
    token = released_token(auth_enabled, "mahavishnu", "akosha", "admin")
    with pytest.raises(errors.InvalidAudienceError):
        manager().verify_token(token)


# -- session-buddy mints, the real module verifies --------------------------------------


def test_our_token_passes_the_real_verifier_with_subject_and_permissions(
    auth_enabled: str,
) -> None:
    token = manager().create_token("session-buddy", {"scopes": ["read", "write"]})
    payload = released_verdict(token, auth_enabled)
    assert payload.subject == "session-buddy"
    assert {p.value for p in payload.permissions} == {"read", "write"}


def test_our_token_for_mahavishnu_passes_its_real_verifier(auth_enabled: str) -> None:
    token = manager().create_token("session-buddy", {"scopes": ["read"]}, audience="mahavishnu")
    payload = released_verdict(token, auth_enabled, "mahavishnu")
    assert payload.subject == "session-buddy" and payload.audience == "mahavishnu"


def test_the_clients_tokens_pass_the_real_verifier(secret: str) -> None:
    tokens = MintedTokens(secret, user_id="mahavishnu", audience="session-buddy", scopes=["write"])
    payload = released_verdict(tokens.current(), secret)
    assert payload.subject == "mahavishnu"
    assert {p.value for p in payload.permissions} == {"write"}


def test_our_token_for_another_service_is_refused_by_the_real_verifier(auth_enabled: str) -> None:
    token = manager().create_token("session-buddy", audience="akosha")
    with pytest.raises(exceptions.AudienceMismatchError):
        released_verdict(token, auth_enabled)


# -- the test kit says what the real module does ------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "audience", "scopes"),
    [("mahavishnu", "session-buddy", ("read", "write")), ("akosha", "dhara", ())],
)
def test_the_kit_mints_the_same_bytes_as_the_real_module(
    secret: str, issuer: str, audience: str, scopes: tuple[str, ...]
) -> None:
    with (
        mock.patch.object(core, "datetime", FrozenDatetime),
        mock.patch.object(core.uuid, "uuid4", return_value=FROZEN_UUID),
    ):
        real = released_token(secret, issuer, audience, *scopes)
    with (
        mock.patch.object(kit, "datetime", FrozenDatetime),
        mock.patch.object(kit.uuid, "uuid4", return_value=FROZEN_UUID),
    ):
        ours = kit.create_service_token(
            secret=secret, issuer=issuer, audience=audience, permissions=scopes
        )
    assert ours == real


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "mahavishnu",
        "iss": "mahavishnu",
        "aud": "session-buddy",
        "iat": now,
        "exp": now + 600,
        "jti": "j",
        "scopes": ["read"],
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


SHAPES = {
    "valid": _claims(),
    "unknown scope": _claims(scopes=["read", "execute"]),
    "another audience": _claims(aud="akosha"),
    "no aud": _claims(aud=None),
    "unknown issuer": _claims(iss="mallory"),
    "no sub": _claims(sub=None),
    "expired": _claims(exp=int(time.time()) - 5),
    "sub not a string": _claims(sub=5),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_kit_verifies_as_the_real_module_does(secret: str, shape: str) -> None:
    token = jwt.encode(SHAPES[shape], secret, algorithm="HS256")
    try:
        real = released_verdict(token, secret)
    except exceptions.AuthError as refusal:
        with pytest.raises(kit.ReleasedVerifierRefusal) as ours:
            kit.verify_service_token(token, secret=secret, expected_audience="session-buddy")
        assert (ours.value.kind, str(ours.value)) == (type(refusal).__name__, str(refusal))
        return
    payload = kit.verify_service_token(token, secret=secret, expected_audience="session-buddy")
    assert (payload.issuer, payload.subject, payload.jti, payload.raw) == (
        real.issuer,
        real.subject,
        real.jti,
        real.raw,
    )
    assert payload.permissions == {p.value for p in real.permissions}
