"""Starting the server: configuration it refuses, the disabled-auth warning, a clean stdout."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal

from testkit.environment import new_secret, server_environment
from testkit.mcp import INITIALIZE, connect, ok, stdio_transport, text_of
from testkit.server import run_server
from testkit.tokens import mint

pytestmark = pytest.mark.e2e

SECRET_TOO_SHORT = "❌ JWT secret must be at least 32 characters long"
SECRET_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
AUTH_DISABLED = "⚠️ JWT authentication disabled (SESSION_BUDDY_SECRET not set)"


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_short_secret_stops_the_server_with_length_message(tmp_path: Path, transport: str) -> None:
    env = server_environment(tmp_path / "data", "too-short-secret")
    result = run_server(env, tmp_path, "--transport", transport, "--port", "1")
    assert result.returncode == 1
    assert SECRET_TOO_SHORT in result.stderr
    assert SECRET_HINT in result.stderr
    assert "Traceback" not in result.stderr
    assert "too-short-secret" not in result.stderr + result.stdout


def test_corrupted_database_stops_the_server_naming_the_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "session-buddy.db"
    database.write_bytes(b"this is not an SQLite database, just some bytes\n" * 200)
    result = run_server(server_environment(data_dir, new_secret()), tmp_path)
    assert result.returncode == 1
    assert str(database) in result.stderr
    assert "corrupted" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_dir_that_is_a_file_stops_the_server_with_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    result = run_server(server_environment(blocker, new_secret()), tmp_path)
    assert result.returncode == 1
    assert f"{blocker} is not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_log_level_is_a_usage_error(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", new_secret())
    result = run_server(env, tmp_path, "--log-level", "LOUD")
    assert result.returncode == 2
    assert "LOUD" in result.stderr


def test_unknown_log_level_in_the_environment_is_refused(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", new_secret(), SESSION_BUDDY_LOG_LEVEL="LOUD")
    result = run_server(env, tmp_path)
    assert result.returncode == 1
    assert "SESSION_BUDDY_LOG_LEVEL" in result.stderr


def test_help_shows_the_transports_and_an_example(tmp_path: Path) -> None:
    result = run_server(server_environment(tmp_path, None), tmp_path, "--help")
    assert result.returncode == 0
    for text in ("--transport", "--host", "--port", "--log-level", "--transport http --port 8678"):
        assert text in result.stdout


def test_stdio_writes_only_protocol_messages_to_stdout(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", None, SESSION_BUDDY_LOG_LEVEL="DEBUG")
    result = run_server(env, tmp_path, input=json.dumps(INITIALIZE) + "\n")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, result.stderr
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in lines)
    assert " DEBUG " in result.stderr


def test_without_secret_the_server_warns_once_and_serves_anonymously(
    tmp_path: Path, portal: BlockingPortal, repo: Path
) -> None:
    env = server_environment(tmp_path / "data", None)
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as errlog:
        conn = connect(portal, stdio_transport(env, tmp_path, errlog))
        try:
            identity = conn.call("whoami").structured_content
            started = conn.call("start_session", working_directory=str(repo))
            ignored = conn.call("session_status", working_directory=str(repo), token="anything")
        finally:
            conn.close()
    assert identity is not None
    assert identity["auth_enabled"] is False
    assert identity["user_id"] == "anonymous"
    assert not started.is_error
    assert started.structured_content["user_id"] == "anonymous"
    assert not ignored.is_error
    assert stderr_path.read_text().count(AUTH_DISABLED) == 1


# -- where the configuration comes from -------------------------------------------------------


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_two_secrets_that_disagree_stop_the_server_naming_both(
    tmp_path: Path, transport: str
) -> None:
    secret, other = new_secret(), new_secret()
    secret_file = tmp_path / "secret"
    secret_file.write_text(other)
    env = server_environment(tmp_path / "data", secret, SESSION_BUDDY_SECRET_FILE=str(secret_file))
    result = run_server(env, tmp_path, "--transport", transport, "--port", "1")
    assert result.returncode == 1
    assert f"SESSION_BUDDY_SECRET_FILE {secret_file} (set in the environment)" in result.stderr
    assert "and SESSION_BUDDY_SECRET (set in the environment) give different secrets" in (
        result.stderr
    )
    assert secret not in result.stderr + result.stdout
    assert other not in result.stderr + result.stdout


def test_a_dotenv_in_the_working_directory_does_not_configure_the_server(
    tmp_path: Path, portal: BlockingPortal
) -> None:
    """The project an assistant opens is the server's working directory: its ``.env``
    cannot choose the secret (a forged admin token is refused), and the log says so."""
    secret, forged = new_secret(), new_secret()
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    project = tmp_path / "cloned-repo"
    project.mkdir()
    (project / ".env").write_text(
        f"SESSION_BUDDY_SECRET={forged}\nSESSION_BUDDY_AUTH_REQUIRED=false\n"
    )
    env = server_environment(tmp_path / "data", None, SESSION_BUDDY_SECRET_FILE=str(secret_file))
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as errlog:
        conn = connect(portal, stdio_transport(env, project, errlog))
        try:
            refused = conn.call("whoami", token=mint(forged, "attacker", role="admin"))
            anonymous = conn.call("session_status", working_directory=str(project))
            allowed = conn.call("whoami", token=mint(secret, "claude"))
        finally:
            conn.close()
    assert refused.is_error and "Invalid token" in text_of(refused)
    assert anonymous.is_error and "Token required" in text_of(anonymous)
    assert ok(allowed)["user_id"] == "claude"
    assert f"{project / '.env'} is not read" in stderr_path.read_text()


# -- where it listens -------------------------------------------------------------------------


def test_a_port_in_use_is_one_line_naming_the_port_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = server_environment(tmp_path / "data", new_secret())
        result = run_server(env, tmp_path, "--transport", "http", "--port", str(port))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"Port {port} on 127.0.0.1 is already in use" in line
    assert "--port" in line
    assert "serving" not in result.stderr and "Errno" not in result.stderr


def test_an_address_this_machine_does_not_have_is_named(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", new_secret())
    result = run_server(env, tmp_path, "--transport", "http", "--host", "192.0.2.1")
    assert result.returncode == 1
    assert "192.0.2.1 is not an address of this machine" in result.stderr
    assert "serving" not in result.stderr and "Traceback" not in result.stderr
