"""``token create`` with scopes and audiences, ``token header`` for Claude Code's
headersHelper, and ``token verify`` showing scopes."""

from __future__ import annotations

import json

import jwt
import pytest

from testkit.cli import CliEnv
from testkit.released import verify_service_token


def create(cli: CliEnv, *args: str) -> str:
    result = cli.run("token", "create", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_create_carries_sub_and_our_audience_by_default(cli: CliEnv) -> None:
    claims = claims_of(create(cli, "alice"))
    assert claims["sub"] == claims["user_id"] == "alice"
    assert claims["aud"] == "session-buddy"
    assert "scopes" not in claims


def test_create_with_scopes_is_verified_by_a_released_verifier(cli: CliEnv) -> None:
    token = create(cli, "session-buddy", "--scope", "read", "--scope", "write", "--scope", "read")
    assert claims_of(token)["scopes"] == ["read", "write"]
    payload = verify_service_token(token, secret=cli.secret, expected_audience="session-buddy")
    assert payload.subject == "session-buddy"
    assert payload.permissions == frozenset({"read", "write"})


def test_create_for_mahavishnu_notes_that_this_server_refuses_it(cli: CliEnv) -> None:
    result = cli.run("token", "create", "session-buddy", "--audience", "mahavishnu")
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert claims_of(token)["aud"] == "mahavishnu"
    assert "this server (audience 'session-buddy') refuses it" in result.stderr
    assert cli.run("token", "verify", token).exit_code == 1


def test_no_audience_mints_for_verifiers_that_refuse_any(cli: CliEnv) -> None:
    token = create(cli, "alice", "--no-audience")
    claims = jwt.decode(token, cli.secret, algorithms=["HS256"])  # as Mahavishnu's JWTAuth
    assert "aud" not in claims and claims["user_id"] == "alice"
    assert cli.run("token", "verify", token).exit_code == 0


def test_audience_and_no_audience_together_are_a_usage_error(cli: CliEnv) -> None:
    result = cli.run("token", "create", "alice", "--audience", "x", "--no-audience")
    assert result.exit_code == 2
    assert result.stdout == ""


def test_a_scope_outside_mcp_commons_vocabulary_gets_a_note(cli: CliEnv) -> None:
    result = cli.run("token", "create", "mahavishnu", "--scope", "read", "--scope", "execute")
    assert result.exit_code == 0
    assert "'execute' is not in mcp-common's vocabulary" in result.stderr
    assert claims_of(result.stdout.strip())["scopes"] == ["read", "execute"]


@pytest.mark.parametrize("scope", ["read write", "", 'x"y'])
def test_a_malformed_scope_is_a_usage_error(cli: CliEnv, scope: str) -> None:
    result = cli.run("token", "create", "alice", "--scope", scope)
    assert result.exit_code == 2
    assert result.stdout == ""


def test_a_sub_claim_is_reserved(cli: CliEnv) -> None:
    result = cli.run("token", "create", "alice", "--claim", "sub=mallory")
    assert result.exit_code == 1
    assert "reserved claims: sub" in result.stderr


# -- verify ----------------------------------------------------------------------------


def test_verify_shows_the_scopes(cli: CliEnv) -> None:
    token = create(cli, "alice", "--scope", "write", "--scope", "read")
    result = cli.run("token", "verify", token)
    assert result.exit_code == 0
    assert "scopes: read, write" in result.stdout
    report = json.loads(cli.run("token", "verify", token, "--json").stdout)
    assert report["scopes"] == ["read", "write"]


def test_verify_says_when_a_token_has_no_scope_claim(cli: CliEnv) -> None:
    token = create(cli, "alice")
    assert "no scope claim" in cli.run("token", "verify", token).stdout
    assert json.loads(cli.run("token", "verify", token, "--json").stdout)["scopes"] is None


def test_verify_refuses_another_services_token_naming_the_audience(cli: CliEnv) -> None:
    result = cli.run("token", "verify", create(cli, "x", "--audience", "akosha"))
    assert result.exit_code == 1
    assert "❌ Authentication failed: Invalid token" in result.stderr
    assert "aud" in result.stderr


# -- header ----------------------------------------------------------------------------


def test_header_prints_exactly_one_authorization_header(cli: CliEnv) -> None:
    result = cli.run("token", "header", "claude", "--scope", "read", "--scope", "write")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout.startswith('{"Authorization": "Bearer ey')
    assert result.stdout.endswith('"}\n')
    headers = json.loads(result.stdout)
    assert list(headers) == ["Authorization"]
    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    claims = claims_of(token)
    assert (claims["user_id"], claims["scopes"], claims["aud"]) == (
        "claude",
        ["read", "write"],
        "session-buddy",
    )
    assert cli.run("token", "verify", token).exit_code == 0


def test_header_takes_role_minutes_and_audience(cli: CliEnv) -> None:
    args = ("claude", "--role", "admin", "--minutes", "5", "--audience", "mahavishnu")
    result = cli.run("token", "header", *args)
    claims = claims_of(json.loads(result.stdout)["Authorization"].removeprefix("Bearer "))
    assert claims["role"] == "admin" and claims["aud"] == "mahavishnu"
    assert claims["exp"] - claims["iat"] == 5 * 60
    assert result.stderr == ""


def test_header_mints_a_fresh_token_each_time(cli: CliEnv) -> None:
    first, second = (cli.run("token", "header", "claude").stdout for _ in range(2))
    assert first != second


def test_header_without_a_secret_exits_1_with_the_reason_on_stderr(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    result = cli.run("token", "header", "claude")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "SESSION_BUDDY_SECRET not set" in result.stderr


def test_header_with_a_short_secret_exits_1_without_printing_it(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_SECRET", "too-short")
    result = cli.run("token", "header", "claude")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "at least 32 characters" in result.stderr
    assert "too-short" not in result.stderr


def test_header_reads_a_secret_file(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    secret_file = cli.cwd / "secret"
    secret_file.write_text(cli.secret + "\n")
    cli.set("SESSION_BUDDY_SECRET_FILE", str(secret_file))
    result = cli.run("token", "header", "claude")
    assert result.exit_code == 0
    token = json.loads(result.stdout)["Authorization"].removeprefix("Bearer ")
    jwt.decode(token, cli.secret, algorithms=["HS256"], audience="session-buddy")
