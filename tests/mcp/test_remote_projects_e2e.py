"""Callers on other machines, end to end: the official client over HTTP names its project by
id (no directory on the server), or by a directory whose id joins the same session.

One server process (authentication on, DEBUG logging, its own SQLite data dir) serves the
module; each test uses its own project ids and repositories.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal
from mcp_types import CallToolResult

from session_buddy.sessions.identity import MAX_PROJECT_ID_CHARS
from testkit.environment import new_secret, server_environment
from testkit.git import commit, git, make_git_repo
from testkit.mcp import McpConnection, connect, http_transport, ok, text_of
from testkit.mcp import refused as error_of
from testkit.server import ServerProcess, launch_http_server
from testkit.store import contents
from testkit.tokens import Minter

pytestmark = pytest.mark.e2e

TOKEN = "ghp_E2eS3cretT0ken0123456789abcdefQRS"


@dataclass
class Deployment:
    server: ServerProcess
    portal: BlockingPortal
    token: Minter
    connections: list[McpConnection] = field(default_factory=list)

    def connect(self, user: str, **claims: Any) -> McpConnection:
        conn = connect(
            self.portal, http_transport(self.server.url, bearer=self.token(user, **claims))
        )
        self.connections.append(conn)
        return conn

    @property
    def database(self) -> str:
        return str(self.server.data_dir / "session-buddy.db")


@pytest.fixture(scope="module")
def deployment(portal: BlockingPortal, workdir: Path) -> Iterator[Deployment]:
    secret = new_secret()
    env = server_environment(workdir / "data", secret, SESSION_BUDDY_LOG_LEVEL="DEBUG")
    with launch_http_server(env, workdir) as server:
        running = Deployment(server, portal, Minter(secret))
        yield running
        for conn in running.connections:
            conn.close()


@pytest.fixture
def project_url() -> str:
    """A project id no directory on the server has: a remote on another machine."""
    return f"git@git.example.com:team/remote-{uuid.uuid4().hex[:8]}.git"


def normalised(url: str) -> str:
    return url.replace("git@", "").replace(":", "/").removesuffix(".git")


def refused(result: CallToolResult) -> tuple[str, dict[str, Any]]:
    return text_of(result), error_of(result)


def test_a_remote_caller_runs_a_whole_session_by_project_id(
    deployment: Deployment, project_url: str
) -> None:
    alice = deployment.connect("alice")
    reported = {"project": project_url, "branch": "main"}

    started = ok(alice.call("start_session", **reported, commit="a1b2c3d4", changed_files=3))
    checkpoint = ok(alice.call("checkpoint", **reported, commit="b1b2c3d4", note="tests pass"))
    status = ok(alice.call("session_status", project=project_url))
    ended = alice.call("end_session", **reported, commit="c1b2c3d4", summary="shipped")
    handoff = ok(ended)

    assert started["created"] is True
    assert (started["project_path"], started["project_id"]) == (None, normalised(project_url))
    assert started["snapshot"]["git"] == {
        "git_available": False,
        "is_git_repo": True,
        "branch": "main",
        "commit": "a1b2c3d4",
        "changed_files": 3,
        "note": None,
        "reported": True,
    }
    assert (checkpoint["session_id"], checkpoint["number"]) == (started["id"], 1)
    assert status["active"] is True and status["session"]["checkpoint_count"] == 1
    assert status["last_checkpoint"]["snapshot"]["git"]["commit"] == "b1b2c3d4"
    assert handoff["session"]["active"] is False
    assert "named by id" in handoff["markdown"] and "shipped" in handoff["markdown"]
    assert handoff["markdown"] in text_of(ended)
    assert ok(alice.call("session_status", project=project_url))["active"] is False


def test_a_session_started_by_path_and_checkpointed_by_id_is_one_session(
    deployment: Deployment, tmp_path: Path, project_url: str
) -> None:
    repo = make_git_repo(tmp_path / "server-clone")
    git(repo, "remote", "add", "origin", project_url)
    local = deployment.connect("alice")
    remote = deployment.connect("alice")  # another client, knowing only the id
    new_head = commit(repo, "remote-work.txt")

    started = ok(local.call("start_session", working_directory=str(repo)))
    checkpoint = ok(
        remote.call("checkpoint", project=project_url, branch="main", commit=new_head, note="n")
    )
    status = ok(local.call("session_status", working_directory=str(repo)))
    handoff = ok(remote.call("end_session", project=project_url, summary="done remotely"))

    assert started["project_id"] == normalised(project_url)
    assert checkpoint["session_id"] == started["id"]
    assert checkpoint["snapshot"]["git"]["reported"] is True
    assert status["session"]["id"] == started["id"]
    assert status["session"]["checkpoint_count"] == 1
    assert handoff["session"]["id"] == started["id"]
    assert ok(local.call("session_status", working_directory=str(repo)))["active"] is False


def test_another_user_cannot_touch_a_session_by_its_id(
    deployment: Deployment, project_url: str
) -> None:
    alice = deployment.connect("alice")
    bob = deployment.connect("bob")
    started = ok(alice.call("start_session", project=project_url))
    missing = f"No active session for project {normalised(project_url)}; call start_session first"

    assert ok(bob.call("session_status", project=project_url))["active"] is False
    assert refused(bob.call("checkpoint", project=project_url, note="x"))[0] == missing
    assert refused(bob.call("end_session", project=project_url))[0] == missing
    assert ok(bob.call("list_sessions", project=project_url))["total"] == 0
    status = ok(alice.call("session_status", project=project_url))
    assert status["session"]["id"] == started["id"]
    assert status["session"]["checkpoint_count"] == 0
    assert ok(alice.call("end_session", project=project_url))["session"]["id"] == started["id"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "no project named; pass working_directory (a directory on this server) or project"),
        (
            {"working_directory": "/tmp", "project": "demo"},
            "pass either working_directory or project, not both",
        ),
        (
            {"working_directory": "/tmp", "commit": "abcd"},
            "commit describe a project named by project id; with working_directory the server "
            "reads them from git itself",
        ),
        (
            {"project": "demo\x1b[31m"},
            "project contains a control character (U+001B) at position 5",
        ),
        (
            {"project": "x" * (MAX_PROJECT_ID_CHARS + 1)},
            f"project is {MAX_PROJECT_ID_CHARS + 1} characters long; the limit is 512",
        ),
        (
            {"project": "/home/me/repo"},
            "project looks like a path; pass a directory on this server",
        ),
        ({"project": "file:///srv/repo.git"}, "project is a file:// URL"),
        ({"project": "demo", "branch": "a..b"}, "branch 'a..b' is not a valid git branch name"),
        ({"project": "demo", "commit": "xyz"}, "commit must be 4 to 64 hexadecimal characters"),
        (
            {"project": "demo", "changed_files": -1},
            "changed_files must be a whole number from 0 to 10,000,000",
        ),
    ],
)
def test_a_hostile_project_is_refused_with_a_precise_message(
    deployment: Deployment, arguments: dict[str, Any], message: str
) -> None:
    alice = deployment.connect("alice")

    text, error = refused(alice.call("start_session", **arguments))

    assert message in text
    assert (error["kind"], error["reason"]) == ("session", "invalid_project")
    assert ok(alice.call("whoami"))["user_id"] == "alice"  # still serving


def test_credentials_in_a_project_url_reach_no_row_no_log_and_no_result(
    deployment: Deployment, project_url: str
) -> None:
    alice = deployment.connect("alice")
    host_and_path = project_url.removeprefix("git@").replace(":", "/", 1)
    with_password = f"https://x-access-token:{TOKEN}@{host_and_path}"
    as_user = f"https://{TOKEN}@{host_and_path}"  # how GitHub tokens often travel

    results = [
        alice.call("start_session", project=with_password, branch="main"),
        alice.call("checkpoint", project=as_user, note="n"),
        alice.call("session_status", project=as_user),
        alice.call("list_sessions", project=with_password),
        alice.call("end_session", project=as_user),
    ]

    for result in results:
        structured = ok(result)
        assert structured["notices"] == [
            "Removed from the project URL and stored nowhere: credentials; send it without them."
        ]
        assert TOKEN not in text_of(result) + json.dumps(structured)
    assert ok(results[0])["project_id"] == normalised(project_url)
    assert TOKEN not in str(contents(deployment.database))
    log = deployment.server.log()
    assert " DEBUG " in log and normalised(project_url) in log
    assert TOKEN not in log
