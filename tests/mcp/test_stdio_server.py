"""The server over stdio, as Claude Code starts it: tools, auth outcomes, ownership, lifecycle.

One server process (authentication on, DEBUG logging) serves the whole module; each test
works in its own git repository, so sessions never collide.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from anyio.from_thread import BlockingPortal
from mcp_types import CallToolResult

from session_buddy.auth.config import AuthConfig
from session_buddy.auth.manager import JWTManager
from session_buddy.config import load_settings
from testkit.environment import new_secret, server_environment
from testkit.git import commit
from testkit.mcp import McpConnection, connect, ok, refused, stdio_transport, text_of
from testkit.tokens import Minter, mint

pytestmark = pytest.mark.e2e

TOOLS = {
    "start_session",
    "checkpoint",
    "end_session",
    "session_status",
    "list_sessions",
    "whoami",
    "verify_envelope",
}
AUTH_FAILED = "❌ Authentication failed"
MEGABYTE = "x" * 1_000_000


@dataclass
class StdioDeployment:
    """The module's server: its connection, secret, data dir and captured stderr."""

    conn: McpConnection
    secret: str
    data_dir: Path
    workdir: Path
    stderr_path: Path
    env: dict[str, str]
    token: Minter = field(init=False)

    def __post_init__(self) -> None:
        self.token = Minter(self.secret)

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return self.conn.call(tool, **arguments)

    def as_user(self, user_id: str, tool: str, **arguments: Any) -> CallToolResult:
        return self.call(tool, token=self.token(user_id), **arguments)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def server(portal: BlockingPortal, workdir: Path) -> Iterator[StdioDeployment]:
    secret = new_secret()
    data_dir = workdir / "data"
    env = server_environment(data_dir, secret, SESSION_BUDDY_LOG_LEVEL="DEBUG")
    stderr_path = workdir / "stderr.log"
    with stderr_path.open("w") as errlog:
        conn = connect(portal, stdio_transport(env, workdir, errlog))
        try:
            yield StdioDeployment(conn, secret, data_dir, workdir, stderr_path, env)
        finally:
            conn.close()


def error_text(result: CallToolResult) -> str:
    """The error's text, after checking its data twin says the same."""
    error = refused(result)
    assert set(error) == {"kind", "reason", "message"}
    assert error["message"] in text_of(result)
    return text_of(result)


# -- tools and schemas -------------------------------------------------------------------


def test_lists_exactly_the_seven_tools(server: StdioDeployment) -> None:
    assert {tool.name for tool in server.conn.tools()} == TOOLS


def test_no_tool_lets_a_caller_supply_an_identity(server: StdioDeployment) -> None:
    for tool in server.conn.tools():
        assert "user_id" not in tool.input_schema.get("properties", {}), tool.name
        assert "user_id" not in str(tool.input_schema), tool.name


def test_every_tool_takes_an_optional_described_token(server: StdioDeployment) -> None:
    for tool in server.conn.tools():
        token = tool.input_schema["properties"]["token"]
        assert "token" not in tool.input_schema.get("required", []), tool.name
        assert token["default"] is None
        assert {"type": "string"} in token["anyOf"]
        assert "JWT" in token["description"]


def test_the_session_tools_take_a_working_directory_or_a_project_id(
    server: StdioDeployment,
) -> None:
    tools = {tool.name: tool.input_schema for tool in server.conn.tools()}
    required = {name: schema.get("required", []) for name, schema in tools.items()}
    reported = {"project", "branch", "commit", "changed_files"}

    # Exactly one of working_directory and project: a rule the tools check themselves.
    assert required == {name: ["envelope"] if name == "verify_envelope" else [] for name in tools}
    for name in ("start_session", "checkpoint", "end_session"):
        assert {"working_directory", *reported} <= set(tools[name]["properties"])
    assert {"working_directory", "project", "branch"} <= set(tools["session_status"]["properties"])
    assert {"working_directory", "project"} <= set(tools["list_sessions"]["properties"])


def test_every_tool_publishes_an_output_schema(server: StdioDeployment) -> None:
    schemas = {tool.name: tool.output_schema for tool in server.conn.tools()}
    assert all(schema and schema["type"] == "object" for schema in schemas.values())
    assert "markdown" in schemas["end_session"]["properties"]
    assert "sessions" in schemas["list_sessions"]["properties"]
    assert "auth_enabled" in schemas["whoami"]["properties"]
    assert "valid" in schemas["verify_envelope"]["properties"]


# -- authentication outcomes -----------------------------------------------------------------


def test_missing_token_is_refused_with_public_message(server: StdioDeployment, repo: Path) -> None:
    result = server.call("start_session", working_directory=str(repo))
    assert error_text(result) == "❌ Authentication failed: Token required"


def test_documented_client_check_finds_the_failure_in_the_result_text(
    server: StdioDeployment, repo: Path
) -> None:
    result = server.call("session_status", working_directory=str(repo))
    assert AUTH_FAILED in text_of(result)  # the documented client check


def test_expired_token_is_refused_with_public_message(server: StdioDeployment, repo: Path) -> None:
    expired = mint(server.secret, "alice", lifetime=-60)
    result = server.call("start_session", working_directory=str(repo), token=expired)
    assert error_text(result) == "❌ Authentication failed: Token has expired"


def test_token_signed_with_another_secret_is_invalid(server: StdioDeployment, repo: Path) -> None:
    forged = mint(new_secret(), "alice")
    result = server.call("start_session", working_directory=str(repo), token=forged)
    assert error_text(result) == "❌ Authentication failed: Invalid token"


def test_unsigned_alg_none_token_is_invalid(server: StdioDeployment, repo: Path) -> None:
    now = int(time.time())
    payload = {"user_id": "alice", "exp": now + 600, "iat": now, "type": "access"}
    unsigned = jwt.encode(payload, None, algorithm="none")
    result = server.call("start_session", working_directory=str(repo), token=unsigned)
    assert error_text(result) == "❌ Authentication failed: Invalid token"


def test_garbage_token_is_invalid(server: StdioDeployment) -> None:
    result = server.call("whoami", token="not-a-jwt")
    assert error_text(result) == "❌ Authentication failed: Invalid token"


def test_revoked_token_is_refused_once_another_process_revokes_it(
    server: StdioDeployment, repo: Path
) -> None:
    token = server.token("carol")
    ok(server.call("start_session", working_directory=str(repo), token=token))
    settings = load_settings(secret=server.secret, data_dir=server.data_dir)
    JWTManager(AuthConfig(settings)).revoke_token(token)
    deadline = time.monotonic() + 5
    while True:
        result = server.call("session_status", working_directory=str(repo), token=token)
        if result.is_error or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert error_text(result) == "❌ Authentication failed: Token has been revoked"


def test_mahavishnu_token_from_plain_pyjwt_is_accepted(server: StdioDeployment) -> None:
    now = int(time.time())
    payload = {"user_id": "mahavishnu", "exp": now + 3600, "iat": now, "type": "access"}
    token = jwt.encode(payload, server.secret, algorithm="HS256")
    identity = ok(server.call("whoami", token=token))
    assert identity["authenticated"] is True
    assert identity["user_id"] == "mahavishnu"


def test_whoami_reports_the_verified_identity(server: StdioDeployment) -> None:
    token = server.token("mahavishnu", iss="mahavishnu", role="orchestrator")
    result = server.call("whoami", token=token)
    identity = ok(result)
    assert identity["auth_enabled"] is True
    assert identity["user_id"] == "mahavishnu"
    assert identity["issuer"] == "mahavishnu"
    assert identity["role"] == "orchestrator"
    assert identity["privileged"] is True
    assert identity["expires_at"].endswith("+00:00")
    assert "Authenticated as mahavishnu" in text_of(result)


def test_whoami_never_returns_the_token(server: StdioDeployment) -> None:
    token = server.token("alice")
    result = server.call("whoami", token=token)
    assert token not in str(result.model_dump())
    assert token.split(".")[2] not in str(result.model_dump())


def test_whoami_without_token_says_auth_is_on_but_caller_is_anonymous(
    server: StdioDeployment,
) -> None:
    identity = ok(server.call("whoami"))
    assert identity["auth_enabled"] is True
    assert identity["authenticated"] is False
    assert identity["user_id"] == "anonymous"


# -- lifecycle ---------------------------------------------------------------------------


def test_full_lifecycle_start_checkpoint_status_end_list(
    server: StdioDeployment, repo: Path
) -> None:
    path = str(repo)
    started = ok(server.as_user("alice", "start_session", working_directory=path))
    assert started["created"] is True
    assert started["project_name"] == "demo"
    assert started["snapshot"]["git"]["branch"] == "main"

    commit(repo, "feature.py", "print('hi')\n")
    checkpoint = ok(
        server.as_user("alice", "checkpoint", working_directory=path, note="feature done")
    )
    assert checkpoint["session_id"] == started["id"]
    assert checkpoint["number"] == 1
    assert checkpoint["commits_since_previous"] == 1

    status = ok(server.as_user("alice", "session_status", working_directory=path))
    assert status["active"] is True
    assert status["last_checkpoint"]["note"] == "feature done"

    result = server.as_user("alice", "end_session", working_directory=path, summary="Shipped.")
    handoff = ok(result)
    assert handoff["session"]["active"] is False
    assert handoff["commits_during_session"] == 1
    assert handoff["markdown"].startswith("# Session hand-off: demo")
    assert "Shipped." in handoff["markdown"]
    assert "feature done" in handoff["markdown"]
    assert handoff["markdown"] in text_of(result)

    after = ok(server.as_user("alice", "session_status", working_directory=path))
    assert after["active"] is False
    listed = ok(server.as_user("alice", "list_sessions", working_directory=path))
    assert [info["id"] for info in listed["sessions"]] == [started["id"]]


def test_results_carry_a_readable_summary(server: StdioDeployment, repo: Path) -> None:
    result = server.as_user("alice", "start_session", working_directory=str(repo))
    assert text_of(result).startswith("Started session ")
    assert "'demo'" in text_of(result)


def test_starting_twice_returns_the_active_session(server: StdioDeployment, repo: Path) -> None:
    first = ok(server.as_user("alice", "start_session", working_directory=str(repo)))
    second = ok(server.as_user("alice", "start_session", working_directory=str(repo)))
    assert second["id"] == first["id"]
    assert second["created"] is False


def test_checkpoint_without_active_session_is_a_clear_error(
    server: StdioDeployment, repo: Path
) -> None:
    result = server.as_user("alice", "checkpoint", working_directory=str(repo))
    assert error_text(result) == f"No active session for {repo}; call start_session first"


def test_list_limit_is_validated_by_the_schema(server: StdioDeployment) -> None:
    result = server.as_user("alice", "list_sessions", limit=0)
    assert result.is_error
    assert "limit" in text_of(result)


# -- ownership ------------------------------------------------------------------------------


def test_a_user_does_not_see_another_users_session(server: StdioDeployment, repo: Path) -> None:
    ok(server.as_user("alice", "start_session", working_directory=str(repo)))
    status = ok(server.as_user("bob", "session_status", working_directory=str(repo)))
    assert status["active"] is False
    listed = ok(server.as_user("bob", "list_sessions", working_directory=str(repo)))
    assert listed["sessions"] == []


def test_a_user_cannot_change_another_users_session(server: StdioDeployment, repo: Path) -> None:
    alice = ok(server.as_user("alice", "start_session", working_directory=str(repo)))
    refused = server.as_user("bob", "end_session", working_directory=str(repo))
    assert error_text(refused).startswith("No active session for")
    status = ok(server.as_user("alice", "session_status", working_directory=str(repo)))
    assert status["session"]["id"] == alice["id"]
    assert status["active"] is True


def test_two_users_have_separate_sessions_in_one_project(
    server: StdioDeployment, repo: Path
) -> None:
    alice = ok(server.as_user("alice", "start_session", working_directory=str(repo)))
    bob = ok(server.as_user("bob", "start_session", working_directory=str(repo)))
    assert alice["id"] != bob["id"]
    assert bob["user_id"] == "bob"
    listed = ok(server.as_user("alice", "list_sessions", working_directory=str(repo)))
    assert [info["user_id"] for info in listed["sessions"]] == ["alice"]


def test_orchestrator_acts_on_any_users_session(server: StdioDeployment, repo: Path) -> None:
    path = str(repo)
    alice = ok(server.as_user("alice", "start_session", working_directory=path))
    orchestrator = server.token("mahavishnu", role="orchestrator")
    status = ok(server.call("session_status", working_directory=path, token=orchestrator))
    assert status["session"]["id"] == alice["id"]
    checkpoint = ok(server.call("checkpoint", working_directory=path, token=orchestrator))
    assert checkpoint["session_id"] == alice["id"]
    handoff = ok(server.call("end_session", working_directory=path, token=orchestrator))
    assert handoff["session"]["user_id"] == "alice"
    assert handoff["ended_by"] == "mahavishnu"


def test_admin_lists_every_users_sessions(server: StdioDeployment, repo: Path) -> None:
    path = str(repo)
    ok(server.as_user("alice", "start_session", working_directory=path))
    ok(server.as_user("bob", "start_session", working_directory=path))
    admin = server.token("root", role="admin")
    listed = ok(server.call("list_sessions", working_directory=path, token=admin))
    assert sorted(info["user_id"] for info in listed["sessions"]) == ["alice", "bob"]


def test_an_ordinary_role_claim_grants_nothing(server: StdioDeployment, repo: Path) -> None:
    ok(server.as_user("alice", "start_session", working_directory=str(repo)))
    developer = server.token("dave", role="developer")
    listed = ok(server.call("list_sessions", working_directory=str(repo), token=developer))
    assert listed["sessions"] == []


# -- bad input: clear errors, and the server keeps serving -----------------------------------


def test_relative_path_is_refused(server: StdioDeployment) -> None:
    result = server.as_user("alice", "start_session", working_directory="some/project")
    assert error_text(result) == "working directory must be an absolute path, got some/project"


def test_missing_directory_is_refused(server: StdioDeployment, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = server.as_user("alice", "start_session", working_directory=str(missing))
    assert str(missing) in error_text(result)
    assert "does not exist" in error_text(result)


def test_file_instead_of_directory_is_refused(server: StdioDeployment, tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("hello")
    result = server.as_user("alice", "start_session", working_directory=str(file))
    assert str(file) in error_text(result)
    assert "not a directory" in error_text(result)


@pytest.mark.parametrize("argument", ["working_directory", "note", "token"])
def test_one_megabyte_argument_gets_a_short_clear_error(
    server: StdioDeployment, repo: Path, argument: str
) -> None:
    arguments = {"working_directory": str(repo), "token": server.token("alice")}
    ok(server.call("start_session", **arguments))
    arguments[argument] = MEGABYTE
    message = error_text(server.call("checkpoint", **arguments))
    assert len(message) < 500
    expected = {
        "working_directory": "working directory is 1,000,000 characters long; the limit is 4,096",
        "note": "note is 1,000,000 characters long; the limit is 10,000",
        "token": "❌ Authentication failed: Invalid token",
    }[argument]
    assert expected in message
    assert ok(server.as_user("alice", "whoami"))["user_id"] == "alice"


# -- logging ------------------------------------------------------------------------------


def test_auth_failures_are_logged_with_tool_reason_fingerprint_and_client(
    server: StdioDeployment,
) -> None:
    server.call("list_sessions", token=mint(server.secret, "zoe", lifetime=-5))
    lines = [line for line in server.stderr().splitlines() if "reason=expired" in line]
    assert lines, server.stderr()  # the first expired token of the module (rate-limited)
    assert re.search(r"tool=\w+ client=stdio token_fp=[0-9a-f]{12}", lines[0]), lines[0]


def test_debug_log_contains_no_token_and_no_secret(server: StdioDeployment) -> None:
    server.call("whoami", token=server.token("alice"))
    server.call("whoami", token="plainly-not-a-jwt-but-secret-ish")
    log = server.stderr()
    assert " DEBUG " in log  # the server really logged at DEBUG
    assert server.secret not in log
    assert "eyJ" not in log
    assert "plainly-not-a-jwt-but-secret-ish" not in log
    for token in server.token.issued:
        assert token not in log
        assert token.split(".")[2] not in log


# -- several processes on one data dir -----------------------------------------------------


def test_two_server_processes_share_one_data_dir(
    server: StdioDeployment, portal: BlockingPortal, repo: Path
) -> None:
    path = str(repo)
    started = ok(server.as_user("alice", "start_session", working_directory=path))
    with (server.workdir / "second.stderr").open("w") as errlog:
        second = connect(portal, stdio_transport(server.env, server.workdir, errlog))
        try:
            token = server.token("alice")
            status = ok(second.call("session_status", working_directory=path, token=token))
            assert status["session"]["id"] == started["id"]
            ok(second.call("end_session", working_directory=path, token=token))
        finally:
            second.close()
    after = ok(server.as_user("alice", "session_status", working_directory=path))
    assert after["active"] is False


def test_a_client_using_the_initialize_handshake_is_served(
    server: StdioDeployment, portal: BlockingPortal, repo: Path
) -> None:
    with (server.workdir / "legacy.stderr").open("w") as errlog:
        legacy = connect(portal, stdio_transport(server.env, server.workdir, errlog), "legacy")
        try:
            token = server.token("alice")
            started = ok(legacy.call("start_session", working_directory=str(repo), token=token))
            refused = legacy.call("session_status", working_directory=str(repo))
        finally:
            legacy.close()
    assert started["user_id"] == "alice"
    assert error_text(refused) == "❌ Authentication failed: Token required"
