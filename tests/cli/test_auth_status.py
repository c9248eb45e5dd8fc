"""``session-buddy auth status``: the table, the verdict, and the exit code."""

from __future__ import annotations

from testkit.cli import CliEnv, flat
from testkit.cli import table_row as row


def test_good_configuration_is_reported_enabled_with_exit_0(cli: CliEnv) -> None:
    result = cli.run("auth", "status")
    assert result.exit_code == 0
    assert row(result.stdout, "Authentication") == "enabled"
    assert row(result.stdout, "Secret source") == "SESSION_BUDDY_SECRET"
    assert row(result.stdout, "SESSION_BUDDY_SECRET") == "environment"
    assert row(result.stdout, "Secret length").startswith("43 characters (ok")
    assert row(result.stdout, "Previous secrets").startswith("0")
    assert row(result.stdout, "Issuer allow-list") == "any issuer"
    assert str(cli.data_dir) in flat(result.stdout)
    assert "✅ Authentication is enabled and correctly configured." in result.stdout


def test_status_never_shows_the_secret(cli: CliEnv) -> None:
    assert cli.secret not in cli.run("auth", "status").output


def test_status_creates_nothing_in_the_data_dir(cli: CliEnv) -> None:
    result = cli.run("auth", "status")
    assert "no database yet" in row(result.stdout, "Revoked tokens")
    assert not cli.data_dir.exists()


def test_disabled_authentication_warns_with_the_public_warning_and_exit_0(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    result = cli.run("auth", "status")
    assert result.exit_code == 0
    assert row(result.stdout, "Authentication") == "disabled"
    assert "⚠️ JWT authentication disabled (SESSION_BUDDY_SECRET not set)" in result.stderr
    assert "secret generate" in result.stderr


def test_short_secret_fails_closed_with_exit_1_and_the_fix(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_SECRET", "x" * 31)
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    assert "TOO SHORT" in row(result.stdout, "Secret length")
    assert "❌ JWT secret must be at least 32 characters long" in result.stderr
    assert "fix:" in result.stderr


def test_short_previous_secret_fails_closed(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_PREVIOUS_SECRETS", "a" * 40 + ",short")
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    assert row(result.stdout, "Previous secrets").startswith("2")
    assert "SESSION_BUDDY_PREVIOUS_SECRETS" in result.stderr


def test_secret_file_is_reported_as_the_source(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    secret_file = cli.cwd / "secret.txt"
    secret_file.write_text("s" * 40 + "\n")
    cli.set("SESSION_BUDDY_SECRET_FILE", str(secret_file))
    result = cli.run("auth", "status")
    assert result.exit_code == 0
    assert row(result.stdout, "Secret source") == f"file {secret_file} (SESSION_BUDDY_SECRET_FILE)"
    assert row(result.stdout, "Secret length").startswith("40 characters")


def test_unreadable_secret_file_fails_closed(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    cli.set("SESSION_BUDDY_SECRET_FILE", str(cli.cwd / "nope"))
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    assert "cannot be read" in result.stderr


def test_issuer_allow_list_audience_and_migration_mode_are_shown(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_ALLOWED_ISSUERS", "mahavishnu, session-buddy")
    cli.set("SESSION_BUDDY_AUDIENCE", "sb")
    cli.set("SESSION_BUDDY_AUTH_REQUIRED", "false")
    result = cli.run("auth", "status")
    assert result.exit_code == 0
    assert row(result.stdout, "Issuer allow-list") == "mahavishnu, session-buddy"
    assert row(result.stdout, "Audience") == "sb"
    assert row(result.stdout, "Token required").startswith("no (migration mode")
    assert "migration mode" in result.stdout.splitlines()[-1]


def test_invalid_variable_is_one_red_line_naming_it_without_its_value(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_TOKEN_EXPIRE_MINUTES", "forever-and-ever")
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    assert "SESSION_BUDDY_TOKEN_EXPIRE_MINUTES" in result.stderr
    assert "forever-and-ever" not in result.output
    assert result.stderr.count("\n") == 1


def test_unusable_data_dir_fails_closed(cli: CliEnv) -> None:
    blocker = cli.cwd / "a-file"
    blocker.write_text("")
    cli.set("SESSION_BUDDY_DATA_DIR", str(blocker / "data"))
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    assert "cannot be created" in result.stderr


def test_the_shared_fallback_is_shown_as_the_secret_source(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    cli.set("BODAI_SHARED_SECRET", cli.secret)
    result = cli.run("auth", "status")
    assert result.exit_code == 0
    assert flat(row(result.stdout, "Secret source")).startswith("BODAI_SHARED_SECRET")
    assert "SESSION_BUDDY_SECRET" in flat(result.stdout)
    assert cli.secret not in result.output


def test_audience_and_aud_less_tokens_are_shown_with_the_fix(cli: CliEnv) -> None:
    result = cli.run("auth", "status")
    assert row(result.stdout, "Audience") == "session-buddy"
    assert row(result.stdout, "Tokens without aud").startswith("accepted")
    assert "SESSION_BUDDY_REQUIRE_AUDIENCE=true" in flat(result.stdout)
    cli.set("SESSION_BUDDY_REQUIRE_AUDIENCE", "true")
    required = cli.run("auth", "status")
    assert row(required.stdout, "Tokens without aud").startswith("refused")


def test_scopes_and_bearer_only_are_shown(cli: CliEnv) -> None:
    result = cli.run("auth", "status")
    assert row(result.stdout, "Tokens without scopes").startswith("full access")
    assert row(result.stdout, "HTTP token argument").startswith("accepted")
    cli.set("SESSION_BUDDY_REQUIRE_SCOPES", "true")
    cli.set("SESSION_BUDDY_BEARER_ONLY", "true")
    result = cli.run("auth", "status")
    assert row(result.stdout, "Tokens without scopes").startswith("grant no scope")
    assert row(result.stdout, "HTTP token argument").startswith("refused")
