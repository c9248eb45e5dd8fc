"""whoami's Identity: built from the verified principal, never failing on odd claims."""

from __future__ import annotations

import pytest

from session_buddy.auth.principal import ANONYMOUS, Principal
from session_buddy.mcp.identity import Identity


@pytest.mark.parametrize("exp", [10**12, 1e300, -(10**12)])
def test_far_future_or_past_expiry_is_reported_not_raised(exp: float) -> None:
    principal = Principal.from_claims({"user_id": "alice", "exp": exp, "role": "admin"})
    identity = Identity.of(principal, auth_enabled=True)
    assert identity.expires_at is not None
    assert identity.expires_at.startswith(("after", "before"))
    assert "alice" in identity.summary_text()


def test_ordinary_expiry_is_iso_8601() -> None:
    principal = Principal.from_claims({"user_id": "bob", "exp": 1_800_000_000})
    assert Identity.of(principal, auth_enabled=True).expires_at == "2027-01-15T08:00:00+00:00"


def test_anonymous_when_disabled() -> None:
    identity = Identity.of(ANONYMOUS, auth_enabled=False)
    assert identity.user_id == "anonymous"
    assert "disabled" in identity.summary_text()


def test_scopes_are_shown_sorted_or_as_no_claim() -> None:
    scoped = Identity.of(
        Principal.from_claims({"user_id": "m", "exp": 2**31, "scopes": ["read", "execute"]}),
        auth_enabled=True,
    )
    assert scoped.scopes == ["execute", "read"]
    assert "scopes execute read" in scoped.summary_text()
    unscoped = Identity.of(Principal.from_claims({"user_id": "m", "exp": 2**31}), auth_enabled=True)
    assert unscoped.scopes is None and "no scope claim" in unscoped.summary_text()
