"""``session-buddy token create|verify|refresh|revoke`` through typer's runner."""

from __future__ import annotations

import json
import re
import time

import jwt
import pytest

from testkit.cli import CliEnv
from testkit.pytest_postgres import PostgresDatabase
from testkit.tokens import RawJson, assemble

JWT_LINE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n")


def create(cli: CliEnv, *args: str) -> str:
    result = cli.run("token", "create", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def decode(cli: CliEnv, token: str) -> dict:
    return jwt.decode(token, cli.secret, algorithms=["HS256"], options={"verify_aud": False})


def expired_token(cli: CliEnv) -> str:
    now = int(time.time())
    payload = {"user_id": "mahavishnu", "iat": now - 7200, "exp": now - 3600, "type": "access"}
    return jwt.encode(payload, cli.secret, algorithm="HS256")


def test_create_prints_only_the_token(cli: CliEnv) -> None:
    result = cli.run("token", "create", "mahavishnu")
    assert result.exit_code == 0
    assert JWT_LINE.fullmatch(result.stdout)
    assert result.stderr == ""


def test_create_sets_identity_role_issuer_and_extra_claims(cli: CliEnv) -> None:
    token = create(
        cli, "mahavishnu", "--role", "orchestrator", "--issuer", "mahavishnu",
        "--claim", "team=core", "--claim", "level=3", "--claim", "tags=[\"a\"]",
    )  # fmt: skip
    claims = decode(cli, token)
    assert claims["user_id"] == "mahavishnu"
    assert claims["role"] == "orchestrator"
    assert claims["iss"] == "mahavishnu"
    assert (claims["team"], claims["level"], claims["tags"]) == ("core", 3, ["a"])
    assert claims["type"] == "access"


def test_create_defaults_to_session_buddy_issuer_and_configured_lifetime(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_TOKEN_EXPIRE_MINUTES", "15")
    claims = decode(cli, create(cli, "alice"))
    assert claims["iss"] == "session-buddy"
    assert claims["exp"] - claims["iat"] == 15 * 60


def test_create_minutes_option_overrides_lifetime(cli: CliEnv) -> None:
    claims = decode(cli, create(cli, "alice", "--minutes", "42"))
    assert claims["exp"] - claims["iat"] == 42 * 60


def test_create_adds_the_configured_audience(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_AUDIENCE", "session-buddy-prod")
    token = create(cli, "alice")
    assert decode(cli, token)["aud"] == "session-buddy-prod"
    assert cli.run("token", "verify", token).exit_code == 0


def test_create_warns_when_the_issuer_is_not_allowed(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_ALLOWED_ISSUERS", "mahavishnu")
    result = cli.run("token", "create", "alice", "--issuer", "elsewhere")
    assert result.exit_code == 0
    assert JWT_LINE.fullmatch(result.stdout)
    assert "not in SESSION_BUDDY_ALLOWED_ISSUERS" in result.stderr


def test_create_refuses_reserved_claims(cli: CliEnv) -> None:
    result = cli.run("token", "create", "alice", "--claim", "exp=99999999999")
    assert result.exit_code == 1
    assert "reserved claims: exp" in result.stderr
    assert result.stdout == ""


def test_create_with_malformed_claim_is_a_usage_error(cli: CliEnv) -> None:
    result = cli.run("token", "create", "alice", "--claim", "no-equals-sign")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


def test_create_with_out_of_range_minutes_is_a_usage_error(cli: CliEnv) -> None:
    assert cli.run("token", "create", "alice", "--minutes", "0").exit_code == 2


def test_create_without_secret_fails_with_the_disabled_warning_and_fix(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    result = cli.run("token", "create", "alice")
    assert result.exit_code == 1
    assert "JWT authentication disabled (SESSION_BUDDY_SECRET not set)" in result.stderr
    assert "session-buddy secret generate" in result.stderr
    assert result.stdout == ""


def test_create_with_short_secret_fails_closed(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_SECRET", "too-short")
    result = cli.run("token", "create", "alice")
    assert result.exit_code == 1
    assert "❌ JWT secret must be at least 32 characters long" in result.stderr
    assert "too-short" not in result.output


def test_verify_shows_claims_and_a_human_expiry(cli: CliEnv) -> None:
    token = create(cli, "mahavishnu", "--minutes", "42", "--role", "orchestrator")
    result = cli.run("token", "verify", token)
    assert result.exit_code == 0
    assert "expires in 42 min" in result.stdout
    assert "mahavishnu" in result.stdout and "orchestrator" in result.stdout
    assert token not in result.output


@pytest.mark.parametrize("exp", [10**400, -(10**400), "NaN", "1e400"])
def test_verify_refuses_an_exp_beyond_a_double_as_invalid(cli: CliEnv, exp: object) -> None:
    payload = RawJson(f'{{"user_id": "alice", "exp": {exp}}}')
    result = cli.run("token", "verify", assemble({"alg": "HS256"}, payload, cli.secret))
    assert result.exit_code == 1
    assert "❌ Authentication failed: Invalid token" in result.stderr


@pytest.mark.parametrize("odd", [10**400, -(10**400), "NaN"])
def test_verify_shows_an_odd_unchecked_time_claim(cli: CliEnv, odd: object) -> None:
    payload = RawJson(
        f'{{"user_id": "alice", "exp": {int(time.time()) + 600}, "auth_time": {odd}}}'
    )
    result = cli.run("token", "verify", assemble({"alg": "HS256"}, payload, cli.secret))
    assert result.exit_code == 0, result.output
    assert "auth_time" in result.stdout


def test_verify_json_is_machine_readable(cli: CliEnv) -> None:
    token = create(cli, "mahavishnu", "--minutes", "30")
    result = cli.run("token", "verify", token, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0
    assert report["valid"] is True
    assert report["user_id"] == "mahavishnu"
    assert 29 * 60 <= report["expires_in_seconds"] <= 30 * 60
    assert report["claims"]["type"] == "access"


def test_verify_reads_stdin_when_dash(cli: CliEnv) -> None:
    token = create(cli, "alice")
    assert cli.run("token", "verify", "-", input=token + "\n").exit_code == 0


def test_verify_accepts_a_bearer_prefix(cli: CliEnv) -> None:
    token = create(cli, "alice")
    assert cli.run("token", "verify", f"Bearer {token}").exit_code == 0


def test_verify_expired_token_fails_with_public_message(cli: CliEnv) -> None:
    result = cli.run("token", "verify", expired_token(cli))
    assert result.exit_code == 1
    assert "❌ Authentication failed: Token has expired" in result.stderr
    assert "token create" in result.stderr


def test_verify_tampered_token_is_invalid(cli: CliEnv) -> None:
    header, _, signature = create(cli, "alice").split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps({"user_id": "admin", "exp": int(time.time()) + 60}).encode()
    ).decode()
    result = cli.run("token", "verify", f"{header}.{forged}.{signature}")
    assert result.exit_code == 1
    assert "❌ Authentication failed: Invalid token" in result.stderr
    assert "signature" in result.stderr


def test_verify_token_from_another_secret_is_invalid(cli: CliEnv) -> None:
    other = jwt.encode(
        {"user_id": "x", "exp": int(time.time()) + 60}, "another-secret-" * 3, algorithm="HS256"
    )
    result = cli.run("token", "verify", other)
    assert result.exit_code == 1
    assert "Invalid token" in result.stderr


def test_verify_failure_as_json(cli: CliEnv) -> None:
    result = cli.run("token", "verify", expired_token(cli), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "valid": False,
        "error": "Token has expired",
        "reason": "expired",
        "detail": "exp is in the past",
    }


def test_verify_never_echoes_the_rejected_token(cli: CliEnv) -> None:
    token = expired_token(cli)
    result = cli.run("token", "verify", token)
    assert token not in result.output
    assert token.split(".")[1] not in result.output


def test_verify_empty_stdin_is_an_error(cli: CliEnv) -> None:
    result = cli.run("token", "verify", "-", input="\n")
    assert result.exit_code == 1
    assert "No token given" in result.stderr


def test_refresh_prints_a_new_token_and_revokes_the_old(cli: CliEnv) -> None:
    old = create(cli, "alice", "--role", "admin")
    result = cli.run("token", "refresh", old)
    assert result.exit_code == 0
    assert JWT_LINE.fullmatch(result.stdout)
    new = result.stdout.strip()
    assert new != old
    assert decode(cli, new)["role"] == "admin"
    assert cli.run("token", "verify", new).exit_code == 0
    rejected = cli.run("token", "verify", old)
    assert rejected.exit_code == 1
    assert "Token has been revoked" in rejected.stderr


def test_refresh_of_expired_token_fails(cli: CliEnv) -> None:
    result = cli.run("token", "refresh", expired_token(cli))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Token has expired" in result.stderr


def test_revoke_makes_verify_fail(cli: CliEnv) -> None:
    token = create(cli, "alice")
    result = cli.run("token", "revoke", token)
    assert result.exit_code == 0
    assert "revoked" in result.stdout
    assert token not in result.output
    assert "Token has been revoked" in cli.run("token", "verify", token).stderr


def test_revoke_is_recorded_in_the_data_dir(cli: CliEnv) -> None:
    cli.run("token", "revoke", create(cli, "alice"))
    status = cli.run("auth", "status")
    assert re.search(r"Revoked tokens\s*│\s*1\b", status.stdout)


def test_revoke_names_the_sqlite_file_it_wrote_to(cli: CliEnv) -> None:
    result = cli.run("token", "revoke", create(cli, "alice"))
    assert result.exit_code == 0
    assert str(cli.data_dir / "session-buddy.db") in result.stdout


def test_revoke_into_a_local_file_warns_that_postgresql_servers_do_not_see_it(
    cli: CliEnv,
) -> None:
    """Forgetting SESSION_BUDDY_DATABASE_URL in the shell that revokes writes the
    revocation to a local SQLite file while the servers on PostgreSQL keep accepting the
    token: the command says so, loudly."""
    result = cli.run("token", "revoke", create(cli, "alice"))
    assert "Servers on PostgreSQL do not" in result.stderr
    assert "SESSION_BUDDY_DATABASE_URL" in result.stderr


def test_revoke_names_the_shared_postgresql_database_not_the_data_dir(
    cli: CliEnv, postgres_database: PostgresDatabase
) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", postgres_database.url)
    result = cli.run("token", "revoke", create(cli, "alice"))
    assert result.exit_code == 0, result.output
    server = postgres_database.server
    where = f"PostgreSQL at {server.host}:{server.port}/{postgres_database.dbname}"
    assert where in result.stdout
    assert str(cli.data_dir) not in result.output
    assert "Servers on PostgreSQL do not" not in result.stderr
    assert postgres_database.password not in result.output


def test_revoke_of_expired_token_needs_nothing(cli: CliEnv) -> None:
    result = cli.run("token", "revoke", expired_token(cli))
    assert result.exit_code == 0
    assert "already expired" in result.stdout


def test_revoke_of_invalid_token_fails(cli: CliEnv) -> None:
    result = cli.run("token", "revoke", "not-a-token")
    assert result.exit_code == 1
    assert "Invalid token" in result.stderr


def test_unusable_data_dir_is_one_red_line_not_a_traceback(cli: CliEnv) -> None:
    token = create(cli, "alice")
    blocker = cli.cwd / "a-file"
    blocker.write_text("")
    cli.set("SESSION_BUDDY_DATA_DIR", str(blocker / "data"))
    for command in ("verify", "refresh", "revoke"):
        result = cli.run("token", command, token)
        assert result.exit_code == 1
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "revocation store cannot be read" in result.stderr
        assert "SESSION_BUDDY_DATA_DIR" in result.stderr
        assert str(blocker) in result.stderr


def test_corrupted_database_error_names_the_file_and_leaves_it_intact(cli: CliEnv) -> None:
    token = create(cli, "alice")
    database = cli.data_dir / "session-buddy.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    database.write_bytes(b"garbage, not sqlite" * 100)
    result = cli.run("token", "revoke", token)
    assert result.exit_code == 1
    assert str(database) in result.stderr
    assert "corrupted" in result.stderr
    assert database.read_bytes() == b"garbage, not sqlite" * 100


def test_verify_shows_a_far_future_expiry_without_crashing(cli: CliEnv) -> None:
    token = jwt.encode({"user_id": "x", "exp": 10**15}, cli.secret, algorithm="HS256")
    result = cli.run("token", "verify", token)
    assert result.exit_code == 0
    assert "beyond the calendar" in result.stdout
    assert json.loads(cli.run("token", "verify", token, "--json").stdout)["valid"] is True
