"""Project identity: sessions of projects named by id, and how a directory maps to its id.

Real git repositories on disk (the server's directories) and projects named only by id
(a caller on another machine). See the rule in :mod:`session_buddy.sessions.service`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions.errors import AmbiguousProjectError, NoActiveSessionError
from session_buddy.sessions.service import SessionService
from session_buddy.sessions.target import ReportedProject
from session_buddy.store import SqliteDatabase
from testkit.clock import FixedClock
from testkit.git import commit, git, make_git_repo
from testkit.store import contents

ORIGIN = "git@github.com:owner/demo.git"
REPO_ID = "github.com/owner/demo"
TOKEN = "ghp_Sup3rS3cretT0ken0123456789abcdefXYZ"


def by_id(
    project: str = ORIGIN,
    branch: str | None = None,
    commit: str | None = None,
    changed_files: int | None = None,
) -> ReportedProject:
    return ReportedProject.parse(project, branch, commit, changed_files)


def with_origin(path: Path, url: str = ORIGIN) -> str:
    git(path, "remote", "add", "origin", url)
    return str(path)


@pytest.fixture
def clone(tmp_path: Path) -> str:
    """A server directory: a repository whose origin is ORIGIN."""
    return with_origin(make_git_repo(tmp_path / "projects" / "clone-1"))


# -- a project named by id ------------------------------------------------------------------


def test_a_project_named_by_id_runs_a_whole_session_without_any_directory(
    service: SessionService, alice: Principal, clock: FixedClock
) -> None:
    started = service.start(alice, by_id(branch="main", commit="a" * 40, changed_files=2))
    clock.advance(60)
    checkpoint = service.checkpoint(
        alice, by_id(branch="main", commit="b" * 40, changed_files=0), note="parser done"
    )
    status = service.status(alice, by_id())
    clock.advance(60)
    handoff = service.end(alice, by_id(branch="main", commit="c" * 40), summary="ready")

    assert started.created
    assert (started.project_path, started.project_id, started.project_name) == (
        None,
        REPO_ID,
        "demo",
    )
    assert started.snapshot.markers is None
    assert started.snapshot.git.reported and started.snapshot.git.branch == "main"
    assert "(github.com/owner/demo)" in started.summary_text()
    assert "branch main at aaaaaaaaaaaa, 2 changed files (reported)" in started.summary_text()
    assert (checkpoint.session_id, checkpoint.number) == (started.id, 1)
    assert checkpoint.commits_since_previous is None  # no repository here to count in
    assert (checkpoint.changed_files, checkpoint.note) == (0, "parser done")
    assert status.active and status.session and status.session.id == started.id
    assert status.last_checkpoint and status.last_checkpoint.note == "parser done"
    assert not handoff.session.active
    assert "- **Project:** demo (`github.com/owner/demo`, named by id)" in handoff.markdown
    assert "- **Start:** `main` @ `aaaaaaaaaaaa` (reported)" in handoff.markdown
    assert "- **End:** `main` @ `cccccccccccc` (reported)" in handoff.markdown
    assert "not inspected (the project is not on this server)" in handoff.markdown


def test_every_spelling_of_the_id_reaches_the_same_session(
    service: SessionService, alice: Principal
) -> None:
    started = service.start(alice, by_id("https://github.com/owner/demo"))

    again = service.start(alice, by_id("ssh://git@GitHub.com/owner/demo.git/"))

    assert (again.id, again.created) == (started.id, False)


def test_a_project_id_without_a_session_is_reported_precisely(
    service: SessionService, alice: Principal
) -> None:
    with pytest.raises(NoActiveSessionError) as raised:
        service.checkpoint(alice, by_id())

    assert str(raised.value) == (
        "No active session for project github.com/owner/demo; call start_session first"
    )
    status = service.status(alice, by_id())
    assert status.message == (
        "No active session for project github.com/owner/demo; call start_session to begin one."
    )


# -- a directory and its id -------------------------------------------------------------------


def test_a_directory_records_the_id_of_its_origin_without_credentials(
    service: SessionService, db: SqliteDatabase, alice: Principal, tmp_path: Path
) -> None:
    path = with_origin(
        make_git_repo(tmp_path / "tokened"), f"https://x-access-token:{TOKEN}@github.com/o/r.git"
    )

    started = service.start(alice, path)

    assert (started.project_path, started.project_id) == (path, "github.com/o/r")
    assert started.snapshot.project_id == "github.com/o/r"
    assert TOKEN not in str(contents(str(db.path)))


def test_started_in_a_directory_and_checkpointed_by_id_is_one_session(
    service: SessionService, alice: Principal, clone: str
) -> None:
    started = service.start(alice, clone)
    new_head = commit(Path(clone), "feature.py")

    checkpoint = service.checkpoint(alice, by_id(branch="main", commit=new_head), note="remote")
    unknown = service.checkpoint(alice, by_id(branch="main", commit="f" * 40))
    handoff = service.end(alice, by_id(branch="main", commit=new_head))

    assert checkpoint.session_id == unknown.session_id == started.id
    assert checkpoint.snapshot.git.reported
    assert checkpoint.commits_since_previous == 1  # counted in the session's own directory
    assert unknown.commits_since_previous is None  # a commit this server's clone lacks
    assert handoff.session.id == started.id
    assert f"(`{clone}`), id `{REPO_ID}`" in handoff.markdown


def test_started_by_id_and_continued_in_the_directory_is_one_session(
    service: SessionService, alice: Principal, clone: str
) -> None:
    remote = service.start(alice, by_id(branch="main"))

    joined = service.start(alice, clone)
    status = service.status(alice, clone)
    checkpoint = service.checkpoint(alice, clone, note="local")

    assert (joined.id, joined.created) == (remote.id, False)
    assert status.active and status.session and status.session.id == remote.id
    assert checkpoint.session_id == remote.id
    assert not checkpoint.snapshot.git.reported
    assert checkpoint.snapshot.path == clone


def test_two_clones_on_one_server_are_two_sessions(
    service: SessionService, alice: Principal, clone: str, tmp_path: Path
) -> None:
    second = with_origin(make_git_repo(tmp_path / "projects" / "clone-2"))
    git(Path(second), "checkout", "-q", "-b", "feature")

    one = service.start(alice, clone)
    two = service.start(alice, second)

    assert one.created and two.created and one.id != two.id
    with pytest.raises(AmbiguousProjectError) as raised:
        service.checkpoint(alice, by_id())
    assert raised.value.reason == "ambiguous_project"
    assert str(raised.value).startswith(
        "2 of your active sessions belong to project github.com/owner/demo ("
    )
    assert f"{clone} on main" in str(raised.value) and f"{second} on feature" in str(raised.value)
    assert "pass the branch you are on" in str(raised.value)
    assert service.checkpoint(alice, by_id(branch="feature")).session_id == two.id
    assert service.checkpoint(alice, by_id(branch="main")).session_id == one.id
    with pytest.raises(AmbiguousProjectError):
        service.status(alice, by_id(branch="elsewhere"))


def test_a_repository_without_a_remote_has_no_id_and_is_reached_by_its_directory_only(
    service: SessionService, alice: Principal, project: Path
) -> None:
    local = service.start(alice, str(project))

    remote = service.start(alice, by_id("demo"))

    assert local.project_id is None
    assert remote.created and remote.id != local.id


def test_the_session_buddy_project_setting_names_a_repository(
    service: SessionService, alice: Principal, project: Path, clone: str
) -> None:
    git(project, "config", "session-buddy.project", "demo")
    git(Path(clone), "config", "session-buddy.project", "https://git.example/pinned/name.git")

    named = service.start(alice, str(project))
    pinned = service.start(alice, clone)

    assert named.project_id == "demo"
    assert pinned.project_id == "git.example/pinned/name"  # the setting beats origin
    assert service.checkpoint(alice, by_id("demo")).session_id == named.id


def test_a_session_keeps_the_id_it_started_with_when_the_remote_changes(
    service: SessionService, alice: Principal, clone: str
) -> None:
    started = service.start(alice, clone)
    git(Path(clone), "remote", "set-url", "origin", "git@github.com:owner/renamed.git")

    assert service.checkpoint(alice, by_id()).session_id == started.id
    assert service.checkpoint(alice, clone).session_id == started.id
    assert not service.status(alice, by_id("git@github.com:owner/renamed.git")).active


def test_a_subdirectory_of_a_repository_has_no_id(
    service: SessionService, alice: Principal, clone: str
) -> None:
    sub = Path(clone) / "pkg"
    sub.mkdir()

    started = service.start(alice, str(sub))

    assert started.project_id is None
    assert not service.status(alice, by_id()).active


def test_a_directory_with_an_unusable_origin_has_no_id(
    service: SessionService, alice: Principal, tmp_path: Path
) -> None:
    path = with_origin(make_git_repo(tmp_path / "odd"), "/srv/git/odd.git")

    assert service.start(alice, path).project_id is None


# -- ownership ------------------------------------------------------------------------------


def test_another_user_cannot_see_or_change_a_session_by_its_id(
    service: SessionService, alice: Principal, bob: Principal, clone: str
) -> None:
    started = service.start(alice, clone)

    assert not service.status(bob, by_id()).active
    with pytest.raises(NoActiveSessionError):
        service.checkpoint(bob, by_id(), note="not mine")
    with pytest.raises(NoActiveSessionError):
        service.end(bob, by_id())
    assert service.list_sessions(bob, by_id()).total == 0
    theirs = service.start(bob, by_id())

    assert theirs.created and theirs.id != started.id
    assert service.status(alice, clone).session.checkpoint_count == 0  # type: ignore[union-attr]


def test_an_orchestrator_acts_on_a_users_session_by_its_id(
    service: SessionService, alice: Principal, orchestrator: Principal, clone: str
) -> None:
    started = service.start(alice, clone)

    status = service.status(orchestrator, by_id())
    checkpoint = service.checkpoint(orchestrator, by_id(branch="main"), note="from CI")
    handoff = service.end(orchestrator, by_id())

    assert status.session and status.session.id == started.id
    assert status.message == "Session of user alice active in 'demo'."
    assert checkpoint.session_id == started.id
    assert handoff.ended_by == "mahavishnu" and handoff.session.user_id == "alice"


def test_an_orchestrator_reaches_a_session_started_by_id_through_the_directory(
    service: SessionService, alice: Principal, orchestrator: Principal, clone: str
) -> None:
    started = service.start(alice, by_id())

    assert service.checkpoint(orchestrator, clone).session_id == started.id


def test_listing_by_id_finds_sessions_started_either_way(
    service: SessionService,
    alice: Principal,
    bob: Principal,
    admin: Principal,
    clone: str,
    project: Path,
) -> None:
    local = service.start(alice, clone)
    remote = service.start(bob, by_id("https://github.com/owner/demo"))
    service.start(alice, str(project))

    mine = service.list_sessions(alice, by_id())
    everyone = service.list_sessions(admin, by_id())

    assert [s.id for s in mine.sessions] == [local.id]
    assert {s.id for s in everyone.sessions} == {local.id, remote.id}
    assert service.list_all(project=by_id()).total == 2


# -- credentials ------------------------------------------------------------------------------


def test_credentials_in_a_project_url_are_removed_stored_nowhere_and_reported(
    service: SessionService,
    db: SqliteDatabase,
    alice: Principal,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = by_id(f"https://alice:{TOKEN}@github.com/owner/demo.git", branch="main")
    caplog.set_level(logging.DEBUG)

    started = service.start(alice, sent)
    checkpoint = service.checkpoint(alice, sent, note="n")
    status = service.status(alice, sent)
    listed = service.list_sessions(alice, sent)
    handoff = service.end(alice, sent)

    results = [started, checkpoint, status, listed, handoff]
    for result in results:
        assert result.notices == [
            "Removed from the project URL and stored nowhere: credentials; send it without them."
        ]
        assert "stored nowhere: credentials" in result.summary_text()
        assert TOKEN not in result.model_dump_json() + result.summary_text()
    assert started.project_id == REPO_ID
    assert TOKEN not in str(contents(str(db.path)))
    assert TOKEN not in caplog.text
    assert service.start(alice, by_id()).notices == []
