"""``session-buddy secret generate``."""

from __future__ import annotations

import re
import stat
import subprocess

from testkit.cli import CliEnv
from testkit.cli import table_row as row

URLSAFE_43 = re.compile(r"[A-Za-z0-9_-]{43}\n")


def test_generate_prints_a_token_urlsafe_32_secret(cli: CliEnv) -> None:
    first = cli.run("secret", "generate")
    second = cli.run("secret", "generate")
    assert first.exit_code == 0
    assert URLSAFE_43.fullmatch(first.stdout)
    assert first.stdout != second.stdout


def test_env_file_is_created_with_mode_0600_and_the_secret_is_not_printed(cli: CliEnv) -> None:
    env_file = cli.cwd / ".env"
    result = cli.run("secret", "generate", "--env-file", str(env_file))
    assert result.exit_code == 0
    (line,) = env_file.read_text().splitlines()
    name, _, value = line.partition("=")
    assert name == "SESSION_BUDDY_SECRET"
    assert URLSAFE_43.fullmatch(value + "\n")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert value not in result.output
    assert "gitignore" in result.output


def test_env_file_update_keeps_other_lines_and_replaces_the_secret(cli: CliEnv) -> None:
    env_file = cli.cwd / "app.env"
    env_file.write_text(
        "# settings\nOTHER=1\nexport SESSION_BUDDY_SECRET=old\nSESSION_BUDDY_SECRET=older\n"
    )
    env_file.chmod(0o644)
    result = cli.run("secret", "generate", "--env-file", str(env_file))
    lines = env_file.read_text().splitlines()
    assert result.exit_code == 0
    assert "Replaced" in result.stdout
    assert lines[:2] == ["# settings", "OTHER=1"]
    assert len(lines) == 3
    assert lines[2].startswith("SESSION_BUDDY_SECRET=") and "old" not in lines[2]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_saved_secret_is_what_every_command_reads(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    saved = cli.run("secret", "generate", "--save")
    assert saved.exit_code == 0, saved.output
    env_file = cli.data_dir / ".env"
    assert str(env_file) in saved.stdout and "does not read" not in saved.stderr
    assert stat.S_IMODE(cli.data_dir.stat().st_mode) == 0o700
    status = cli.run("auth", "status")
    assert status.exit_code == 0
    assert row(status.stdout, "Secret source") == "SESSION_BUDDY_SECRET"
    assert row(status.stdout, "SESSION_BUDDY_SECRET") == f".env {env_file}"
    assert "43 characters" in status.stdout


def test_an_env_file_elsewhere_is_read_only_when_named(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    written = cli.run("secret", "generate", "--env-file", ".env")
    assert "does not read" in written.stderr and "SESSION_BUDDY_ENV_FILE=" in written.stderr
    assert "disabled" in cli.run("auth", "status").stdout
    cli.set("SESSION_BUDDY_ENV_FILE", str(cli.cwd / ".env"))
    assert row(cli.run("auth", "status").stdout, "Authentication") == "enabled"


def test_saving_while_the_environment_sets_a_secret_says_which_wins(cli: CliEnv) -> None:
    result = cli.run("secret", "generate", "--save")
    assert "SESSION_BUDDY_SECRET is set in the environment, which wins" in result.stderr


def test_env_file_in_a_git_repo_that_does_not_ignore_it_gets_a_warning(cli: CliEnv) -> None:
    subprocess.run(["git", "init", "-q", str(cli.cwd)], check=True)
    result = cli.run("secret", "generate", "--env-file", ".env")
    assert result.exit_code == 0
    assert "NOT ignored by git" in result.stderr
    (cli.cwd / ".gitignore").write_text(".env\n")
    again = cli.run("secret", "generate", "--env-file", ".env")
    assert "NOT ignored" not in again.stderr


def test_unwritable_env_file_location_is_one_red_line(cli: CliEnv) -> None:
    result = cli.run("secret", "generate", "--env-file", str(cli.cwd / "missing" / ".env"))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "Cannot write" in result.stderr
