"""Where settings come from: the environment beats ``.env``, and a ``.env`` is read only
from the data dir (or the file ``SESSION_BUDDY_ENV_FILE`` names), never from the working
directory — the directory an MCP client starts the server in may be a cloned repository.

Each bypass a ``.env`` in the working directory used to allow is tested through the
command a user runs (``token verify`` answers exactly as the server would).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from session_buddy.config import load_settings
from session_buddy.mcp.auth import AuthConfig
from session_buddy.store import SqliteDatabase, database_for
from testkit.cli import CliEnv
from testkit.cli import table_row as row
from testkit.environment import new_secret
from testkit.tokens import mint

FORGED = "f" * 43  # a secret an attacker chose


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- a .env in the working directory is never read ----------------------------------------


def test_a_dotenv_in_the_working_directory_cannot_replace_the_secret_file(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    cli.set("SESSION_BUDDY_SECRET_FILE", str(write(cli.data_dir.parent / "s", cli.secret)))
    write(cli.cwd / ".env", f"SESSION_BUDDY_SECRET={FORGED}\n")
    forged = cli.run("token", "verify", mint(FORGED, "attacker", role="admin"))
    assert forged.exit_code == 1, forged.output
    assert cli.run("token", "verify", mint(cli.secret, "claude")).exit_code == 0


def test_a_dotenv_in_the_working_directory_cannot_add_previous_secrets(cli: CliEnv) -> None:
    write(cli.cwd / ".env", f"SESSION_BUDDY_PREVIOUS_SECRETS={FORGED}\n")
    forged = cli.run("token", "verify", mint(FORGED, "attacker", role="admin"))
    assert forged.exit_code == 1, forged.output


def test_a_dotenv_in_the_working_directory_cannot_make_tokens_optional(cli: CliEnv) -> None:
    write(cli.cwd / ".env", "SESSION_BUDDY_AUTH_REQUIRED=false\n")
    assert AuthConfig().auth_required is True
    assert row(cli.run("auth", "status").stdout, "Token required") == "yes"


def test_a_dotenv_in_the_working_directory_cannot_redirect_the_database(cli: CliEnv) -> None:
    write(cli.cwd / ".env", "SESSION_BUDDY_DATABASE_URL=postgresql://evil.example/steal\n")
    assert isinstance(database_for(load_settings()), SqliteDatabase)


def test_auth_status_says_a_working_directory_dotenv_is_not_read(cli: CliEnv) -> None:
    write(cli.cwd / ".env", f"SESSION_BUDDY_SECRET={FORGED}\n")
    result = cli.run("auth", "status")
    assert "not read" in result.stderr and "SESSION_BUDDY_ENV_FILE" in result.stderr
    assert FORGED not in result.output


# -- the data dir's .env, and SESSION_BUDDY_ENV_FILE ---------------------------------------


def test_the_data_dirs_dotenv_is_read(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    env_file = write(cli.data_dir / ".env", f"SESSION_BUDDY_SECRET={cli.secret}\n")
    config = AuthConfig()
    assert (config.secret, config.secret_source) == (cli.secret, ".env")
    assert config.settings.env_file_read == env_file


def test_the_file_named_by_session_buddy_env_file_is_read(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    env_file = write(cli.cwd / "team.env", f"SESSION_BUDDY_SECRET={cli.secret}\n")
    write(cli.data_dir / ".env", f"SESSION_BUDDY_SECRET={FORGED}\n")  # not read: one file
    cli.set("SESSION_BUDDY_ENV_FILE", str(env_file))
    assert AuthConfig().secret == cli.secret


def test_a_missing_session_buddy_env_file_stops_every_command(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_ENV_FILE", str(cli.cwd / "missing.env"))
    result = cli.run("token", "create", "claude")
    assert result.exit_code == 1
    assert "SESSION_BUDDY_ENV_FILE" in result.stderr and "missing.env" in result.stderr


@pytest.mark.parametrize("variable", ["SESSION_BUDDY_DATA_DIR", "SESSION_BUDDY_ENV_FILE"])
def test_a_dotenv_cannot_move_the_data_dir_or_name_another_dotenv(
    cli: CliEnv, variable: str
) -> None:
    write(cli.data_dir / ".env", f"{variable}={cli.cwd / 'elsewhere'}\n")
    settings = load_settings()
    assert settings.data_dir == cli.data_dir and settings.env_file is None
    (ignored,) = settings.ignored
    assert ignored.variable == variable and "environment" in ignored.reason


# -- the environment beats .env, a setting and its _FILE twin counting as one -----------------


def test_the_environments_secret_file_beats_a_dotenv_secret(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    cli.set("SESSION_BUDDY_SECRET_FILE", str(write(cli.cwd / "secret", cli.secret)))
    write(cli.data_dir / ".env", f"SESSION_BUDDY_SECRET={FORGED}\n")
    config = AuthConfig()
    assert (config.secret, config.secret_source) == (cli.secret, "file")
    (ignored,) = config.settings.ignored
    assert ignored.variable == "SESSION_BUDDY_SECRET"
    assert "SESSION_BUDDY_SECRET_FILE" in ignored.reason
    assert cli.run("token", "verify", mint(FORGED, "attacker")).exit_code == 1


def test_the_environments_secret_beats_a_dotenv_secret_file(cli: CliEnv) -> None:
    elsewhere = write(cli.cwd / "other", FORGED)
    write(cli.data_dir / ".env", f"SESSION_BUDDY_SECRET_FILE={elsewhere}\n")
    config = AuthConfig()
    assert (config.secret, config.secret_source) == (cli.secret, "env")


def test_the_environments_database_url_file_beats_a_dotenv_url(cli: CliEnv) -> None:
    url = "postgresql://sb@db.internal:5432/sb"
    cli.set("SESSION_BUDDY_DATABASE_URL_FILE", str(write(cli.cwd / "url", url)))
    write(cli.data_dir / ".env", "SESSION_BUDDY_DATABASE_URL=postgresql://evil.example/x\n")
    assert load_settings().resolved_database_url() == url


@pytest.mark.parametrize(
    ("name", "in_environment", "in_dotenv", "expected"),
    [
        ("SESSION_BUDDY_AUTH_REQUIRED", "true", "false", True),
        ("SESSION_BUDDY_PREVIOUS_SECRETS", "", FORGED, []),
        ("SESSION_BUDDY_ALLOWED_ISSUERS", "", "evil", []),
        ("SESSION_BUDDY_BEARER_ONLY", "true", "false", True),
    ],
)
def test_every_setting_the_environment_sets_beats_the_dotenv(
    cli: CliEnv, name: str, in_environment: str, in_dotenv: str, expected: object
) -> None:
    cli.set(name, in_environment)
    write(cli.data_dir / ".env", f"{name}={in_dotenv}\n")
    settings = load_settings()
    field = name.removeprefix("SESSION_BUDDY_").lower()
    assert getattr(settings, field) == expected
    assert settings.origin(field).source == "environment"


# -- two secret sources that disagree --------------------------------------------------------


def test_a_secret_and_a_secret_file_that_disagree_fail_closed_naming_both(cli: CliEnv) -> None:
    other = new_secret()
    cli.set("SESSION_BUDDY_SECRET_FILE", str(write(cli.cwd / "secret", other)))
    problem = AuthConfig().problem()
    assert problem is not None
    text = f"{problem} {problem.fix}"
    assert "SESSION_BUDDY_SECRET " in text and "SESSION_BUDDY_SECRET_FILE" in text
    assert cli.secret not in text and other not in text


def test_a_secret_and_a_secret_file_that_agree_are_fine(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_SECRET_FILE", str(write(cli.cwd / "secret", cli.secret + "\n")))
    assert AuthConfig().problem() is None


def test_token_header_refuses_two_secrets_that_disagree(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_SECRET_FILE", str(write(cli.cwd / "secret", new_secret())))
    result = cli.run("token", "header", "claude")
    assert result.exit_code == 1 and result.stdout == ""
    assert "SESSION_BUDDY_SECRET_FILE" in result.stderr
    assert "give different secrets" in result.stderr


def test_a_database_url_and_its_file_that_disagree_are_refused(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", "postgresql://a@one.example/sb")
    cli.set("SESSION_BUDDY_DATABASE_URL_FILE", str(write(cli.cwd / "url", "postgresql://b@two/x")))
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    assert "SESSION_BUDDY_DATABASE_URL_FILE" in result.stderr
    assert "different" in result.stderr


# -- auth status names where each security setting came from ---------------------------------


def test_auth_status_names_where_each_security_setting_came_from(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    secret_file = write(cli.cwd / "secret", cli.secret)
    cli.set("SESSION_BUDDY_SECRET_FILE", str(secret_file))
    env_file = write(cli.data_dir / ".env", "SESSION_BUDDY_REQUIRE_AUDIENCE=true\n")
    result = cli.run("auth", "status")
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "environment" in lines["Secret source"] and str(secret_file) in lines["Secret source"]
    assert str(env_file) in lines["Tokens without aud"]
    assert "default" in lines["Token required"]
    assert str(env_file) in lines[".env file"]
