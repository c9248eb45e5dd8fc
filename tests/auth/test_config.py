"""AuthConfig and the process configuration: enabled/disabled, secrets, fail-closed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from session_buddy.config import load_settings
from session_buddy.mcp import auth
from session_buddy.mcp.auth import AuthConfig
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


def test_dotenv_in_the_data_dir_is_read_and_in_the_working_directory_is_not(
    secret: str, isolated_environment: Path
) -> None:
    (Path.cwd() / ".env").write_text(f"SESSION_BUDDY_SECRET={'w' * 40}\n")
    assert not AuthConfig().enabled
    (isolated_environment / ".env").write_text(f"SESSION_BUDDY_SECRET={secret}\n")
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
    monkeypatch.setattr(auth, "_default", None)  # the next call re-reads the environment
    assert auth.validate_token(mint(auth_enabled)) is None
    assert auth.get_auth_error() == "Invalid configuration: SESSION_BUDDY_LEEWAY_SECONDS"


# -- the ecosystem's shared secret ----------------------------------------------------------


def test_bodai_shared_secret_is_the_last_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secret: str
) -> None:
    shared = "b" * 40
    monkeypatch.setenv("BODAI_SHARED_SECRET", shared)
    assert (AuthConfig().secret, AuthConfig().secret_source) == (shared, "shared")
    path = tmp_path / "secret"
    path.write_text(secret)
    monkeypatch.setenv("SESSION_BUDDY_SECRET_FILE", str(path))
    assert (AuthConfig().secret, AuthConfig().secret_source) == (secret, "file")
    monkeypatch.delenv("SESSION_BUDDY_SECRET_FILE")
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "e" * 40)
    assert (AuthConfig().secret, AuthConfig().secret_source) == ("e" * 40, "env")


def test_a_short_bodai_shared_secret_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BODAI_SHARED_SECRET", SHORT)
    config = AuthConfig()
    assert config.enabled and config.problem() is not None


def test_the_shared_secret_warning_is_logged_once_naming_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shared = "b" * 40
    monkeypatch.setenv("BODAI_SHARED_SECRET", shared)
    auth._disabled_warning_logged = False
    with caplog.at_level(logging.WARNING, logger="session_buddy.auth"):
        auth.reload_auth_config()
        auth.reload_auth_config()
    lines = [r.getMessage() for r in caplog.records if "BODAI_SHARED_SECRET" in r.getMessage()]
    assert len(lines) == 1
    assert "SESSION_BUDDY_SECRET" in lines[0] and shared not in lines[0]


# -- Mahavishnu's variables ----------------------------------------------------------------


def test_mahavishnus_secret_is_read_settings_name_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from session_buddy.config import mahavishnu_secret, secret_from_variable

    assert mahavishnu_secret() is None
    monkeypatch.setenv("MAHAVISHNU_AUTH_SECRET", "docs-name")
    assert mahavishnu_secret() == "docs-name"
    monkeypatch.setenv("MAHAVISHNU_AUTH__SECRET", "settings-name")
    assert mahavishnu_secret() == "settings-name"
    assert secret_from_variable("MAHAVISHNU_AUTH_SECRET") == "settings-name"
    monkeypatch.setenv("MAHAVISHNU_AUTH__SECRET", "")  # empty counts as unset
    assert secret_from_variable("MAHAVISHNU_AUTH__SECRET") == "docs-name"


def test_the_cross_project_secret_is_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from session_buddy.config import MAHAVISHNU_CROSS_PROJECT_VARIABLE, secret_from_variable

    monkeypatch.setenv("MAHAVISHNU_AUTH__SECRET", "jwt")
    monkeypatch.setenv("CROSS_PROJECT_AUTH_SECRET", "never-read")
    assert secret_from_variable(MAHAVISHNU_CROSS_PROJECT_VARIABLE) is None
    monkeypatch.setenv(MAHAVISHNU_CROSS_PROJECT_VARIABLE, "messages")
    assert secret_from_variable(MAHAVISHNU_CROSS_PROJECT_VARIABLE) == "messages"


# -- audience, scopes, HTTP ------------------------------------------------------------------


def test_the_audience_defaults_to_session_buddy_and_empty_means_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert AuthConfig().audience == "session-buddy"
    monkeypatch.setenv("SESSION_BUDDY_AUDIENCE", " ")
    assert AuthConfig().audience == "session-buddy"
    monkeypatch.setenv("SESSION_BUDDY_AUDIENCE", "sessions")
    assert AuthConfig().token_policy().audience == "sessions"


def test_the_new_switches_default_to_todays_behaviour() -> None:
    settings = load_settings()
    assert not settings.require_audience and not settings.require_scopes
    assert not settings.bearer_only and not settings.allow_unauthenticated
    assert settings.allowed_hosts == [] and settings.allowed_origins == []


def test_the_new_switches_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUIRE_AUDIENCE", "REQUIRE_SCOPES", "BEARER_ONLY", "ALLOW_UNAUTHENTICATED"):
        monkeypatch.setenv(f"SESSION_BUDDY_{name}", "true")
    monkeypatch.setenv("SESSION_BUDDY_ALLOWED_HOSTS", "sb.example.com:*, 10.0.0.5:8678")
    monkeypatch.setenv("SESSION_BUDDY_ALLOWED_ORIGINS", "https://sb.example.com")
    settings = load_settings()
    assert settings.require_audience and settings.require_scopes
    assert settings.bearer_only and settings.allow_unauthenticated
    assert settings.allowed_hosts == ["sb.example.com:*", "10.0.0.5:8678"]
    assert settings.allowed_origins == ["https://sb.example.com"]
    assert AuthConfig(settings).token_policy().require_audience
