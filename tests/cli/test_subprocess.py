"""The installed ``session-buddy`` script as a real process: exit codes and clean output."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import typer

from session_buddy.cli import app
from testkit.cli import CliEnv
from testkit.server import SCRIPT


def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], input=input, capture_output=True, text=True, env=os.environ,
        timeout=60, check=False,
    )  # fmt: skip


def test_token_create_stdout_is_exactly_the_token(cli: CliEnv) -> None:
    result = run("token", "create", "mahavishnu")
    assert result.returncode == 0
    assert result.stderr == ""
    token = result.stdout.removesuffix("\n")
    assert "\n" not in token and token.count(".") == 2
    assert run("token", "verify", token).returncode == 0


def test_token_pipes_from_create_into_verify(cli: CliEnv) -> None:
    token = run("token", "create", "mahavishnu", "--role", "orchestrator").stdout
    result = run("token", "verify", "-", "--json", input=token)
    assert result.returncode == 0
    assert '"valid": true' in result.stdout


def test_token_header_as_a_headers_helper_prints_one_json_object(cli: CliEnv) -> None:
    """As Claude Code runs it: a shell command with the secret in a file."""
    secret_file = cli.cwd / "secret"
    secret_file.write_text(cli.secret + "\n")
    cli.unset("SESSION_BUDDY_SECRET")
    command = f"SESSION_BUDDY_SECRET_FILE={secret_file} {SCRIPT} token header claude --scope read"
    result = subprocess.run(
        command, shell=True, capture_output=True, text=True, env=os.environ, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    headers = json.loads(result.stdout)
    assert list(headers) == ["Authorization"]
    assert run("token", "verify", headers["Authorization"]).returncode == 1  # no secret here
    cli.set("SESSION_BUDDY_SECRET", cli.secret)
    assert run("token", "verify", headers["Authorization"]).returncode == 0


def test_token_header_that_cannot_mint_exits_1_with_one_line_on_stderr(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    result = run("token", "header", "claude")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "SESSION_BUDDY_SECRET" in result.stderr


def test_user_errors_exit_1_with_one_line_and_no_traceback(cli: CliEnv) -> None:
    result = run("token", "verify", "garbage")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("❌ Authentication failed: Invalid token")


def test_configuration_errors_exit_1_without_traceback(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_LEEWAY_SECONDS", "-5")
    result = run("auth", "status")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "SESSION_BUDDY_LEEWAY_SECONDS" in result.stderr


def test_usage_errors_exit_2(cli: CliEnv) -> None:
    assert run("token", "create").returncode == 2
    assert run("token", "frobnicate").returncode == 2
    assert run("message", "sign", "[]").returncode == 2


def test_auth_status_exit_1_when_it_would_fail_closed(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_SECRET", "short")
    result = run("auth", "status")
    assert result.returncode == 1
    assert "JWT secret must be at least 32 characters long" in result.stderr
    assert "Traceback" not in result.stderr


def test_secret_is_never_echoed_by_other_commands(cli: CliEnv) -> None:
    token = run("token", "create", "alice").stdout.strip()
    outputs = [
        run("auth", "status"),
        run("token", "verify", token),
        run("token", "revoke", token),
        run("token", "verify", token),
        run("message", "sign", "{}"),
    ]
    for result in outputs:
        assert cli.secret not in result.stdout + result.stderr
    assert all(token not in r.stdout + r.stderr for r in outputs)


def _leaf_commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    children = getattr(command, "commands", None)
    if not children:
        return [path]
    return [leaf for name, sub in children.items() for leaf in _leaf_commands(sub, (*path, name))]


LEAVES = _leaf_commands(typer.main.get_command(app))


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert "session-buddy " + " ".join(path) in " ".join(result.stdout.split())
