"""What detect_project reports, and that it never changes the project or the process."""

from __future__ import annotations

import os
from pathlib import Path

from session_buddy.auth.principal import Principal
from session_buddy.sessions.project import detect_project
from session_buddy.sessions.service import SessionService
from testkit import git as gitops


def test_a_snapshot_combines_name_markers_and_git(project: Path) -> None:
    (project / "README.md").write_text("# demo")

    snapshot = detect_project(project)

    assert snapshot.path == str(project)
    assert (snapshot.name, snapshot.name_source) == ("demo", "pyproject.toml")
    assert snapshot.markers.present() == ["README"]
    assert snapshot.git.commit == gitops.head(project)


def test_missing_git_is_skipped_cleanly(project: Path, tmp_path: Path) -> None:
    snapshot = detect_project(project, git=str(tmp_path / "no-such-git"))

    assert snapshot.name == "demo"
    assert snapshot.git.git_available is False
    assert snapshot.git.is_git_repo is False
    assert snapshot.git.commit is None
    assert "not available" in (snapshot.git.note or "")


def test_detection_does_not_write_into_the_project(project: Path) -> None:
    tracked = project / "pyproject.toml"
    tracked.write_text(tracked.read_text())  # same content, newer mtime: index is stale
    os.utime(tracked, ns=(tracked.stat().st_atime_ns, tracked.stat().st_mtime_ns + 10**9))
    (project / "untracked.txt").write_text("u")
    before = gitops.tree_state(project)
    cwd = Path.cwd()

    detect_project(project)

    assert gitops.tree_state(project) == before
    assert ".git/index" in before
    assert Path.cwd() == cwd


def test_a_whole_session_does_not_write_into_the_project(
    service: SessionService, alice: Principal, project: Path
) -> None:
    tracked = project / "pyproject.toml"
    os.utime(tracked, ns=(tracked.stat().st_atime_ns, tracked.stat().st_mtime_ns + 10**9))
    before = gitops.tree_state(project)
    cwd = Path.cwd()

    service.start(alice, str(project))
    service.checkpoint(alice, str(project), "note")
    service.status(alice, str(project))
    service.end(alice, str(project), "summary")

    assert gitops.tree_state(project) == before
    assert Path.cwd() == cwd
