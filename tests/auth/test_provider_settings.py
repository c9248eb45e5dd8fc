"""The identity-provider settings: SESSION_BUDDY_OAUTH_ISSUER, SESSION_BUDDY_RESOURCE_URL (and
the one answer for this server's resource URI), SESSION_BUDDY_OAUTH_AUDIENCE and the
introspection client with its _FILE twin."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from session_buddy.auth.config import AuthConfig
from session_buddy.config import (
    IntrospectionSecretFileError,
    ResourceUrlError,
    Settings,
    load_settings,
)

ISSUER = "https://idp.example/realms/main"


def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"SESSION_BUDDY_{name}", value)
    return load_settings(data_dir=tmp_path)


def test_issuers_are_one_url_or_a_comma_separated_list_kept_exactly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    one = settings(monkeypatch, tmp_path, OAUTH_ISSUER=ISSUER)
    assert one.oauth_issuers == (ISSUER,)
    two = settings(monkeypatch, tmp_path, OAUTH_ISSUER=f"{ISSUER}, https://login.example/")
    assert two.oauth_issuers == (ISSUER, "https://login.example/")
    assert settings(monkeypatch, tmp_path, OAUTH_ISSUER="").oauth_issuers == ()
    assert two.origin("oauth_issuers").variable == "SESSION_BUDDY_OAUTH_ISSUER"


@pytest.mark.parametrize(
    "value", ["idp.example", "ftp://idp.example", "https://idp.example/?x=1", "https://a,https://a"]
)
def test_an_issuer_that_is_no_http_url_stops_the_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    with pytest.raises(ValidationError, match="OAUTH_ISSUER"):
        settings(monkeypatch, tmp_path, OAUTH_ISSUER=value)


def test_the_resource_url_defaults_on_loopback_to_the_bound_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured = settings(monkeypatch, tmp_path, OAUTH_ISSUER=ISSUER)
    assert configured.effective_resource_url() == "http://127.0.0.1:8678/mcp"
    assert configured.effective_resource_url("127.0.0.1", 9100) == "http://127.0.0.1:9100/mcp"
    assert configured.effective_resource_url("localhost", 9100) == "http://127.0.0.1:9100/mcp"
    assert configured.effective_resource_url("::1", 9100) == "http://[::1]:9100/mcp"


def test_beyond_loopback_an_issuer_needs_the_resource_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured = settings(monkeypatch, tmp_path, OAUTH_ISSUER=ISSUER)
    with pytest.raises(ResourceUrlError) as caught:
        configured.effective_resource_url("0.0.0.0", 8678)
    assert caught.value.kind == "required"
    assert "SESSION_BUDDY_RESOURCE_URL" in caught.value.fix
    resource = "https://sessions.example.com/mcp"
    named = settings(monkeypatch, tmp_path, RESOURCE_URL=resource)
    assert named.effective_resource_url("0.0.0.0", 8678) == resource
    # Without an issuer nothing needs it: the shared secret's tokens name an audience.
    monkeypatch.delenv("SESSION_BUDDY_OAUTH_ISSUER")
    monkeypatch.delenv("SESSION_BUDDY_RESOURCE_URL")
    assert load_settings(data_dir=tmp_path).effective_resource_url("0.0.0.0", 1)


def test_a_resource_url_that_is_no_url_stops_the_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="resource"):
        settings(monkeypatch, tmp_path, RESOURCE_URL="sessions.example.com/mcp")


def test_the_audiences_are_the_resource_and_the_configured_audience(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured = settings(monkeypatch, tmp_path, OAUTH_ISSUER=ISSUER, OAUTH_AUDIENCE="api://sb")
    assert AuthConfig(configured, resource_url="http://127.0.0.1:9/mcp").oauth_audiences == (
        "http://127.0.0.1:9/mcp",
        "api://sb",
    )
    assert AuthConfig(configured).oauth_audiences[0] == "http://127.0.0.1:8678/mcp"


def test_the_introspection_secret_comes_from_the_variable_or_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "introspection-secret"
    secret_file.write_text("from-the-file\n")
    from_file = settings(
        monkeypatch,
        tmp_path,
        OAUTH_INTROSPECTION_CLIENT_ID="resource-server",
        OAUTH_INTROSPECTION_CLIENT_SECRET_FILE=str(secret_file),
    )
    assert AuthConfig(from_file).introspection_client == ("resource-server", "from-the-file")
    monkeypatch.setenv("SESSION_BUDDY_OAUTH_INTROSPECTION_CLIENT_SECRET", "another")
    conflicting = load_settings(data_dir=tmp_path)
    with pytest.raises(IntrospectionSecretFileError) as caught:
        _ = AuthConfig(conflicting).introspection_client
    assert caught.value.kind == "conflict"
    assert "another" not in str(caught.value) and "from-the-file" not in str(caught.value)
    secret_file.unlink()
    monkeypatch.delenv("SESSION_BUDDY_OAUTH_INTROSPECTION_CLIENT_SECRET")
    with pytest.raises(IntrospectionSecretFileError) as caught:
        _ = AuthConfig(load_settings(data_dir=tmp_path)).introspection_client
    assert caught.value.kind == "unreadable"


def test_without_an_introspection_client_there_is_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert AuthConfig(settings(monkeypatch, tmp_path)).introspection_client is None
