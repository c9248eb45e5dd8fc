"""AuthConfig and the process configuration: enabled/disabled, secrets, fail-closed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from session_buddy.auth.config import AuthConfig
from session_buddy.config import load_settings
from session_buddy.mcp import auth
from testkit.tokens import mint

SHORT = "too-short-secret"


def test_enabled_when_a_secret_is_set(auth_enabled: str) -> None:
    config = AuthConfig()
    assert config.enabled
    assert config.algorithm == "HS256"
    assert config.expire_minutes == 60
    assert config.secret == auth_enabled


def test_empty_secret_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "")
    assert not AuthConfig().enabled


def test_secret_raises_with_guidance_when_unset() -> None:
    with pytest.raises(ValueError, match="SESSION_BUDDY_SECRET") as info:
        _ = AuthConfig().secret
    assert "token_urlsafe(32)" in str(info.value)


def test_short_secret_raises_the_length_message_with_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", SHORT)
    config = AuthConfig()
    assert config.enabled
    with pytest.raises(ValueError) as info:
        _ = config.secret
    assert "❌ JWT secret must be at least 32 characters long" in str(info.value)
    assert "secrets.token_urlsafe(32)" in str(info.value)
    assert SHORT not in str(info.value)


def test_short_secret_fails_closed_in_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", SHORT)
    auth.reload_auth_config()
    token = mint(SHORT)
    assert auth.is_authentication_enabled()
    assert auth.validate_token(token) is None
    assert auth.get_auth_error() == "❌ JWT secret must be at least 32 characters long"


def test_short_previous_secret_fails_closed(
    monkeypatch: pytest.MonkeyPatch, auth_enabled: str
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_PREVIOUS_SECRETS", SHORT)
    auth.reload_auth_config()
    assert auth.validate_token(mint(auth_enabled)) is None
    assert "at least 32 characters" in (auth.get_auth_error() or "")


def test_disabled_validation_returns_the_anonymous_payload() -> None:
    assert auth.validate_token("anything") == {"user_id": "anonymous", "auth": "disabled"}
    assert auth.validate_token(None) == {"user_id": "anonymous", "auth": "disabled"}
    assert auth.get_auth_error() is None
    assert not auth.is_authentication_enabled()


def test_disabled_warning_is_logged_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    auth._disabled_warning_logged = False
    with caplog.at_level(logging.WARNING, logger="session_buddy.auth"):
        auth.reload_auth_config()
        auth.reload_auth_config()
        auth.validate_token("x")
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count("⚠️ JWT authentication disabled (SESSION_BUDDY_SECRET not set)") == 1


def test_secret_file_is_read_when_no_secret_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secret: str
) -> None:
    path = tmp_path / "secret"
    path.write_text(secret + "\n")
    monkeypatch.setenv("SESSION_BUDDY_SECRET_FILE", str(path))
    config = AuthConfig()
    assert config.secret == secret
    assert config.secret_source == "file"


def test_unreadable_secret_file_fails_closed_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nope" / "secret"
    monkeypatch.setenv("SESSION_BUDDY_SECRET_FILE", str(missing))
    config = AuthConfig()
    assert config.enabled
    with pytest.raises(ValueError, match=str(missing)):
        _ = config.secret


def test_dotenv_in_working_directory_is_read(secret: str, tmp_path: Path) -> None:
    (Path.cwd() / ".env").write_text(f"SESSION_BUDDY_SECRET={secret}\n")
    config = AuthConfig()
    assert config.secret == secret
    assert config.secret_source == ".env"


def test_environment_variables_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BUDDY_ALLOWED_ISSUERS", "mahavishnu, session-buddy")
    monkeypatch.setenv("SESSION_BUDDY_PREVIOUS_SECRETS", "a" * 32 + "," + "b" * 40)
    monkeypatch.setenv("SESSION_BUDDY_TOKEN_EXPIRE_MINUTES", "15")
    monkeypatch.setenv("SESSION_BUDDY_LEEWAY_SECONDS", "5")
    monkeypatch.setenv("SESSION_BUDDY_AUDIENCE", "session-buddy")
    monkeypatch.setenv("SESSION_BUDDY_AUTH_REQUIRED", "false")
    config = AuthConfig()
    assert config.allowed_issuers == ("mahavishnu", "session-buddy")
    assert config.previous_secrets == ("a" * 32, "b" * 40)
    assert config.expire_minutes == 15
    assert config.leeway_seconds == 5
    assert config.audience == "session-buddy"
    assert config.auth_required is False


def test_config_repr_never_shows_the_secret(auth_enabled: str) -> None:
    assert auth_enabled not in repr(AuthConfig())
    assert auth_enabled not in repr(load_settings())


def test_cached_config_changes_only_on_reload(
    monkeypatch: pytest.MonkeyPatch, auth_enabled: str, secret: str
) -> None:
    first = auth.get_auth_config()
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "n" * 40)
    assert auth.get_auth_config() is first
    assert auth.reload_auth_config().secret == "n" * 40


def test_malformed_setting_makes_validation_fail_closed_without_raising(
    monkeypatch: pytest.MonkeyPatch, auth_enabled: str
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_LEEWAY_SECONDS", "abc")
    monkeypatch.setattr(auth, "_runtime", None)  # the next call re-reads the environment
    assert auth.validate_token(mint(auth_enabled)) is None
    assert auth.get_auth_error() == "Invalid configuration: SESSION_BUDDY_LEEWAY_SECONDS"
