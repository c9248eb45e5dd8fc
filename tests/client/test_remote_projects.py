"""``SessionBuddyClient`` for a project on another machine: the id and the state of a local
clone (:func:`describe_checkout`), against a real HTTP server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from session_buddy.client import (
    SessionBuddyClient,
    SessionBuddyError,
    SessionBuddyToolError,
    describe_checkout,
)
from testkit.git import commit, git, head, init
from testkit.server import ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

TOKEN = "ghp_ClientS3cretT0ken0123456789abcdefZZ"


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """The caller's own clone (the server never looks at it) and its project id."""
    name = f"app-{uuid.uuid4().hex[:8]}"
    path = init(tmp_path / "my-clone")
    commit(path, "README.md", "# app\n")
    git(path, "remote", "add", "origin", f"https://ci:{TOKEN}@gitlab.example.org/group/{name}.git")
    (path / "dirty.txt").write_text("not committed\n")
    return path, f"gitlab.example.org/group/{name}"


def test_a_checkout_describes_itself_without_its_credentials(checkout: tuple[Path, str]) -> None:
    path, project_id = checkout

    report = describe_checkout(path)

    assert (report.id, report.branch, report.commit, report.changed_files) == (
        project_id,
        "main",
        head(path),
        1,
    )
    assert report.project.removed == ("credentials",)  # here, before anything is sent
    assert TOKEN not in repr(report)


def test_a_directory_without_a_project_id_is_refused(tmp_path: Path) -> None:
    plain = init(tmp_path / "no-remote")

    with pytest.raises(SessionBuddyError, match="has no project id"):
        describe_checkout(plain)


async def test_a_whole_session_by_project_id_over_http(
    server: ServerProcess, checkout: tuple[Path, str]
) -> None:
    path, project_id = checkout
    async with SessionBuddyClient.http(server.url, secret=server.secret) as sb:
        started = await sb.start(project=describe_checkout(path))
        new_head = commit(path, "work.py")
        checkpoint = await sb.checkpoint(
            note="work done", project=describe_checkout(path), changed_files=0
        )
        status = await sb.status(project=project_id, branch="main")
        listed = await sb.list_sessions(project=project_id)
        handoff = await sb.end(summary="over", project=project_id, commit=new_head)

    assert (started.project_path, started.project_id) == (None, project_id)
    assert started.snapshot.git.changed_files == 1
    assert checkpoint.session_id == started.id
    assert (checkpoint.snapshot.git.commit, checkpoint.changed_files) == (new_head, 0)
    assert status.session is not None and status.session.id == started.id
    assert [s.id for s in listed.sessions] == [started.id]
    assert handoff.session.id == started.id and "over" in handoff.markdown


async def test_naming_no_project_is_a_tool_error_saying_how(server: ServerProcess) -> None:
    async with SessionBuddyClient.http(server.url, secret=server.secret) as sb:
        with pytest.raises(SessionBuddyToolError) as raised:
            await sb.start()

    assert "no project named; pass working_directory" in str(raised.value)
