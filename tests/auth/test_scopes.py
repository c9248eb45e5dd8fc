"""Scopes: what a token grants (``scopes`` list, RFC 9068 ``scope`` string), and who may call.

A token without any scope claim keeps full access unless SESSION_BUDDY_REQUIRE_SCOPES;
``admin`` allows everything; a claim of the wrong shape grants nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from session_buddy.auth import errors
from session_buddy.auth.scopes import granted_scopes, is_scope_name, missing_scope
from session_buddy.config import load_settings
from session_buddy.mcp.auth import AuthConfig, AuthenticationError, JWTManager, require_auth
from testkit.tokens import mint


@pytest.mark.parametrize(
    ("claims", "granted"),
    [
        ({}, None),
        ({"scopes": ["read", "write"]}, {"read", "write"}),
        ({"scope": "read  write"}, {"read", "write"}),
        ({"scopes": ["read"], "scope": "admin"}, {"read", "admin"}),
        ({"scopes": []}, set()),
        ({"scopes": "read"}, set()),
        ({"scopes": ["read", 5]}, set()),
        ({"scopes": None}, set()),
        ({"scope": ["read"]}, set()),
        ({"scopes": ["read", ""]}, {"read"}),
    ],
    ids=[
        "none",
        "list",
        "rfc9068-string",
        "both",
        "empty-list",
        "string-in-scopes",
        "non-string-item",
        "null",
        "list-in-scope",
        "empty-item",
    ],
)
def test_granted_scopes_read_both_claims_and_odd_shapes_grant_nothing(
    claims: dict[str, Any], granted: set[str] | None
) -> None:
    assert granted_scopes(claims) == (None if granted is None else frozenset(granted))


@pytest.mark.parametrize("separator", ["\u00a0", "\t", "\n", "\u2003", "\u3000", "\x1f", "\u2028"])
def test_only_an_ascii_space_separates_scopes(separator: str) -> None:
    """RFC 6749 3.3: scope-tokens are separated by SP; "read<NBSP>admin" grants no admin."""
    granted = granted_scopes({"scope": f"read{separator}admin"})

    assert granted == frozenset({f"read{separator}admin"})
    assert missing_scope(granted, ["read"]) == "read"


def test_no_scope_claim_covers_everything_unless_scopes_are_required() -> None:
    assert missing_scope(None, ["write"]) is None
    assert missing_scope(None, ["read", "write"], require_claim=True) == "read"


def test_admin_covers_every_scope() -> None:
    assert missing_scope(frozenset({"admin"}), ["read", "write", "delete"]) is None


def test_each_required_scope_must_be_granted_or_implied() -> None:
    read_execute = frozenset({"read", "execute"})
    assert missing_scope(read_execute, ["write"]) == "write"
    assert missing_scope(read_execute, ["write"], implied_by={"write": ["execute"]}) is None
    assert missing_scope(frozenset({"read"}), ["read", "write"]) == "write"


@pytest.mark.parametrize("name", ["read", "sessions:write", "a.b-c_d"])
def test_scope_names_are_rfc_6749_tokens(name: str) -> None:
    assert is_scope_name(name)


@pytest.mark.parametrize("name", ["", "read write", 'say"hi', "tab\t", "é"])
def test_what_is_not_a_scope_name(name: str) -> None:
    assert not is_scope_name(name)


# -- JWTManager.authenticate -----------------------------------------------------------------


def manager(**settings: object) -> JWTManager:
    return JWTManager(AuthConfig(load_settings(**settings)))


def test_too_few_scopes_is_an_authorization_error_with_the_scope_named(auth_enabled: str) -> None:
    token = mint(auth_enabled, "alice", scopes=["read"])
    with pytest.raises(errors.MissingScopeError) as refused:
        manager().authenticate(token, scopes=["write"])
    assert refused.value.user_message == "❌ Authorization failed: missing scope 'write'"
    assert refused.value.reason == "missing_scope"
    assert "--scope write" in (refused.value.fix or "")
    assert isinstance(refused.value, errors.AuthorizationError | ValueError)


def test_a_scope_less_token_is_refused_only_when_scopes_are_required(auth_enabled: str) -> None:
    token = mint(auth_enabled, "alice")
    assert manager().authenticate(token, scopes=["write"]).user_id == "alice"
    with pytest.raises(errors.MissingScopeError):
        manager(require_scopes=True).authenticate(token, scopes=["read"])
    assert manager(require_scopes=True).authenticate(token).user_id == "alice"  # needs none


def test_anonymous_in_migration_mode_is_refused_only_when_scopes_are_required(
    auth_enabled: str,
) -> None:
    assert manager(auth_required=False).authenticate(None, scopes=["write"]).user_id == "anonymous"
    with pytest.raises(errors.MissingScopeError):
        manager(auth_required=False, require_scopes=True).authenticate(None, scopes=["write"])


def test_scopes_are_not_checked_while_authentication_is_disabled() -> None:
    assert manager().authenticate(None, scopes=["admin"]).user_id == "anonymous"


def test_a_bearer_identity_is_held_to_the_same_scopes(auth_enabled: str) -> None:
    from session_buddy.auth.principal import Principal

    bearer = Principal.from_claims({"user_id": "m", "exp": 2**40, "scopes": ["read"]})
    with pytest.raises(errors.MissingScopeError):
        manager().authenticate(None, bearer=bearer, scopes=["write"])
    assert manager().authenticate(None, bearer=bearer, scopes=["read"]) is bearer


# -- require_auth(scopes=...) for library users --------------------------------------------------


@require_auth(scopes=["write"])
def write_tool(token: str | None = None) -> str:
    return "written"


@require_auth(scopes=["write"], implied_by={"write": ["execute"]})
def orchestrated_tool(token: str | None = None) -> str:
    return "done"


def test_require_auth_scopes_refuse_a_read_only_token(auth_enabled: str) -> None:
    with pytest.raises(AuthenticationError) as refused:
        write_tool(token=mint(auth_enabled, "alice", scopes=["read"]))
    assert str(refused.value) == "❌ Authorization failed: missing scope 'write'"
    assert write_tool(token=mint(auth_enabled, "alice", scopes=["write"])) == "written"
    assert write_tool(token=mint(auth_enabled, "alice", scope="admin")) == "written"


def test_execute_satisfies_write_only_where_the_tool_says_so(auth_enabled: str) -> None:
    default_mahavishnu = mint(auth_enabled, "mahavishnu", scopes=["read", "execute"])
    assert orchestrated_tool(token=default_mahavishnu) == "done"
    with pytest.raises(AuthenticationError):
        write_tool(token=default_mahavishnu)
