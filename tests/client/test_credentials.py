"""Where the client's tokens come from, and when minted tokens are renewed."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from session_buddy.client import MintedTokens, SessionBuddyAuthError, SessionBuddyClient
from session_buddy.client.credentials import secret_from_environment
from testkit.clock import FixedClock

NOW = 1_800_000_000.0


def test_minted_token_is_what_mahavishnu_sends(secret: str) -> None:
    tokens = MintedTokens(secret, role="orchestrator", audience="sb", clock=FixedClock(NOW))
    claims = jwt.decode(
        tokens.current(), secret, algorithms=["HS256"], audience="sb",
        options={"verify_exp": False, "verify_iat": False},
    )  # fmt: skip
    assert claims["user_id"] == "mahavishnu"
    assert claims["iss"] == "mahavishnu"
    assert claims["role"] == "orchestrator"
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 3600


def test_minted_token_is_reused_until_a_fifth_of_its_lifetime_is_left(secret: str) -> None:
    clock = FixedClock(NOW)
    tokens = MintedTokens(secret, lifetime_minutes=10, clock=clock)
    first = tokens.current()
    clock.now += 7 * 60
    assert tokens.current() == first
    clock.now += 61
    renewed = tokens.current()
    assert renewed != first
    assert tokens.minted == 2


def test_short_secret_is_refused_before_any_call() -> None:
    with pytest.raises(SessionBuddyAuthError, match="at least 32 characters"):
        SessionBuddyClient.stdio(secret="short")


def test_secrets_never_appear_in_reprs(secret: str) -> None:
    assert secret not in repr(MintedTokens(secret))


def test_mahavishnu_secret_wins_over_session_buddy_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "s" * 40)
    monkeypatch.setenv("MAHAVISHNU_AUTH_SECRET", "m" * 40)
    assert secret_from_environment()[0] == "m" * 40


def test_session_buddy_secret_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("f" * 40 + "\n")
    monkeypatch.setenv("SESSION_BUDDY_SECRET_FILE", str(secret_file))
    assert secret_from_environment()[0] == "f" * 40


def test_no_secret_anywhere_means_no_token() -> None:
    assert secret_from_environment()[0] is None


def test_minted_tokens_carry_sub_and_the_requested_scopes(secret: str) -> None:
    tokens = MintedTokens(secret, user_id="mahavishnu", scopes=["read", "write"])
    claims = jwt.decode(tokens.current(), options={"verify_signature": False})
    assert claims["sub"] == claims["user_id"] == "mahavishnu"
    assert claims["scopes"] == ["read", "write"]


def test_mahavishnus_settings_name_wins_over_its_docs_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "s" * 40)
    monkeypatch.setenv("MAHAVISHNU_AUTH_SECRET", "d" * 40)
    monkeypatch.setenv("MAHAVISHNU_AUTH__SECRET", "n" * 40)
    assert secret_from_environment()[0] == "n" * 40


def test_bodai_shared_secret_is_the_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BODAI_SHARED_SECRET", "b" * 40)
    assert secret_from_environment()[0] == "b" * 40
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "s" * 40)
    assert secret_from_environment()[0] == "s" * 40


def test_minted_tokens_are_for_the_configured_audience(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_AUDIENCE", "sessions")
    monkeypatch.setenv("SESSION_BUDDY_SECRET", secret)
    client = SessionBuddyClient.http("http://127.0.0.1:1/mcp", scopes=["read"])
    token = client._tokens.current()
    assert token is not None
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["aud"], claims["scopes"]) == ("sessions", ["read"])
