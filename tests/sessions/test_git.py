"""What git reports about a project, that git is asked read-only, and commit counting."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from session_buddy.sessions.git import count_commits, git_snapshot
from testkit import git as gitops

# -- snapshot -------------------------------------------------------------------------


def test_git_snapshot_of_a_committed_repository(project: Path) -> None:
    git = git_snapshot(project)

    assert git.git_available and git.is_git_repo
    assert git.branch == "main"
    assert git.commit == gitops.head(project)
    assert git.changed_files == 0
    assert git.note is None


def test_changed_files_counts_modified_and_untracked_files(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "demo2"\n')
    (project / "new.txt").write_text("new")
    (project / "a file with\nnewline.txt").write_text("odd")

    assert git_snapshot(project).changed_files == 3


def test_changed_files_counts_only_the_project_subdirectory(project: Path) -> None:
    sub = project / "packages" / "lib"
    sub.mkdir(parents=True)
    (sub / "inside.txt").write_text("x")
    (project / "outside.txt").write_text("y")

    git = git_snapshot(sub)

    assert git.is_git_repo is True
    assert git.changed_files == 1


def test_a_plain_directory_is_not_a_git_repository(plain_dir: Path) -> None:
    git = git_snapshot(plain_dir)

    assert git.git_available is True
    assert git.is_git_repo is False
    assert (git.branch, git.commit, git.changed_files) == (None, None, None)
    assert git.note == "not a git repository"


def test_a_repository_without_commits_has_a_branch_but_no_commit(tmp_path: Path) -> None:
    repo = gitops.init(tmp_path / "fresh", branch="trunk")
    (repo / "draft.txt").write_text("x")

    git = git_snapshot(repo)

    assert git.is_git_repo is True
    assert git.branch == "trunk"
    assert git.commit is None
    assert git.changed_files == 1
    assert git.note == "no commits yet"


def test_a_detached_head_has_a_commit_but_no_branch(project: Path) -> None:
    sha = gitops.head(project)
    gitops.git(project, "checkout", "-q", "--detach")

    git = git_snapshot(project)

    assert (git.branch, git.commit) == (None, sha)


def test_git_missing_from_path_is_skipped_cleanly(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    assert git_snapshot(project).git_available is False


def test_a_hanging_git_is_abandoned_after_the_timeout(project: Path, tmp_path: Path) -> None:
    fake = tmp_path / "slow-git"
    fake.write_text("#!/bin/sh\nsleep 30 &\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)

    git = git_snapshot(project, git=str(fake), timeout=0.2)

    assert git.commit is None
    assert "did not answer within 0.2 s" in (git.note or "")


def test_git_environment_variables_cannot_redirect_to_another_repository(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = gitops.init(tmp_path / "other")
    gitops.commit(other, "x.txt", "other")
    expected = gitops.head(project)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))

    assert git_snapshot(project).commit == expected


def test_a_repository_config_cannot_make_git_run_a_program(project: Path, tmp_path: Path) -> None:
    witness = tmp_path / "fsmonitor-ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {witness}\n")
    hook.chmod(0o755)
    gitops.git(project, "config", "core.fsmonitor", str(hook))

    git_snapshot(project)

    assert not witness.exists()


# -- commit counting ------------------------------------------------------------------


def test_count_commits_between_two_shas(project: Path) -> None:
    old = gitops.head(project)
    gitops.commit(project)
    new = gitops.commit(project)

    assert count_commits(project, old, new) == 2
    assert count_commits(project, new, new) == 0


@pytest.mark.parametrize(
    ("old", "new"),
    [(None, "abc1234"), ("abc1234", None), ("--output=/tmp/x", "abc1234"), ("0" * 40, "1" * 40)],
)
def test_count_commits_is_none_when_a_sha_is_missing_or_unknown(
    project: Path, old: str | None, new: str | None
) -> None:
    assert count_commits(project, old, new) is None
