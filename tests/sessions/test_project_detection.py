"""What detect_project reports, and that it never changes the project or the process."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions.project import count_commits, detect_project
from session_buddy.sessions.service import SessionService
from testkit import git as gitops

# -- project name ---------------------------------------------------------------------


def test_name_comes_from_pyproject_project_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "from-pep621"\n')

    snapshot = detect_project(tmp_path)

    assert (snapshot.name, snapshot.name_source) == ("from-pep621", "pyproject.toml")


def test_name_comes_from_poetry_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.poetry]\nname = "from-poetry"\n')

    assert detect_project(tmp_path).name == "from-poetry"


def test_name_comes_from_package_json(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "@scope/web", "version": "1.0.0"}')

    snapshot = detect_project(tmp_path)

    assert (snapshot.name, snapshot.name_source) == ("@scope/web", "package.json")


def test_name_comes_from_cargo_toml(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "crabby"\nversion = "0.1.0"\n')

    snapshot = detect_project(tmp_path)

    assert (snapshot.name, snapshot.name_source) == ("crabby", "Cargo.toml")


def test_pyproject_wins_over_package_json(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "py"\n')
    (tmp_path / "package.json").write_text('{"name": "js"}')

    assert detect_project(tmp_path).name == "py"


def test_name_falls_back_to_the_directory_name(tmp_path: Path) -> None:
    project = tmp_path / "my-project"
    project.mkdir()

    snapshot = detect_project(project)

    assert (snapshot.name, snapshot.name_source) == ("my-project", "directory")


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("pyproject.toml", "[project\nname = "),
        ("pyproject.toml", "[project]\nname = 42\n"),
        ("pyproject.toml", '[project]\nname = "   "\n'),
        ("pyproject.toml", b"\xff\xfe\x00garbage"),
        ("package.json", "{not json"),
        ("package.json", '["a", "list"]'),
        ("package.json", '{"name": {"nested": true}}'),
        ("package.json", "[" * 100_000),
        ("Cargo.toml", "[workspace]\nmembers = []\n"),
    ],
)
def test_malformed_manifest_falls_back_to_the_directory_name(
    tmp_path: Path, file: str, content: str | bytes
) -> None:
    project = tmp_path / "fallback"
    project.mkdir()
    target = project / file
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)

    assert detect_project(project).name == "fallback"


def test_a_manifest_that_is_a_directory_is_ignored(tmp_path: Path) -> None:
    project = tmp_path / "odd"
    (project / "pyproject.toml").mkdir(parents=True)

    assert detect_project(project).name == "odd"


def test_an_unreadable_manifest_is_ignored(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    project = tmp_path / "locked"
    project.mkdir()
    manifest = project / "pyproject.toml"
    manifest.write_text('[project]\nname = "secret"\n')
    manifest.chmod(0)

    assert detect_project(project).name == "locked"


def test_a_manifest_that_is_a_fifo_does_not_block_detection(tmp_path: Path) -> None:
    project = tmp_path / "piped"
    project.mkdir()
    os.mkfifo(project / "package.json")

    assert detect_project(project).name == "piped"


# -- markers --------------------------------------------------------------------------


def test_no_markers_in_an_empty_directory(tmp_path: Path) -> None:
    assert detect_project(tmp_path).markers.present() == []


def test_markers_are_detected(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# hi")
    (tmp_path / "tests").mkdir()
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / "uv.lock").write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "LICENSE").write_text("MIT")

    markers = detect_project(tmp_path).markers

    assert markers.readme and markers.tests and markers.ci
    assert markers.lock_file and markers.docs and markers.license


@pytest.mark.parametrize("name", [".gitlab-ci.yml", "Jenkinsfile", ".circleci", ".ci"])
def test_other_ci_configurations_count_as_ci(tmp_path: Path, name: str) -> None:
    if name.startswith(".c"):
        (tmp_path / name).mkdir()
    else:
        (tmp_path / name).write_text("")

    assert detect_project(tmp_path).markers.ci is True


@pytest.mark.parametrize(
    "name", ["poetry.lock", "package-lock.json", "Cargo.lock", "yarn.lock", "pnpm-lock.yaml"]
)
def test_other_lock_files_count_as_lock_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("")

    assert detect_project(tmp_path).markers.lock_file is True


def test_a_github_directory_without_workflows_is_not_ci(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()

    assert detect_project(tmp_path).markers.ci is False


def test_a_file_named_tests_is_not_a_tests_directory(tmp_path: Path) -> None:
    (tmp_path / "tests").write_text("")

    assert detect_project(tmp_path).markers.tests is False


# -- git ------------------------------------------------------------------------------


def test_git_snapshot_of_a_committed_repository(project: Path) -> None:
    git = detect_project(project).git

    assert git.git_available and git.is_git_repo
    assert git.branch == "main"
    assert git.commit == gitops.head(project)
    assert git.changed_files == 0
    assert git.note is None


def test_changed_files_counts_modified_and_untracked_files(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "demo2"\n')
    (project / "new.txt").write_text("new")
    (project / "a file with\nnewline.txt").write_text("odd")

    assert detect_project(project).git.changed_files == 3


def test_changed_files_counts_only_the_project_subdirectory(project: Path) -> None:
    sub = project / "packages" / "lib"
    sub.mkdir(parents=True)
    (sub / "inside.txt").write_text("x")
    (project / "outside.txt").write_text("y")

    git = detect_project(sub).git

    assert git.is_git_repo is True
    assert git.changed_files == 1


def test_a_plain_directory_is_not_a_git_repository(plain_dir: Path) -> None:
    git = detect_project(plain_dir).git

    assert git.git_available is True
    assert git.is_git_repo is False
    assert (git.branch, git.commit, git.changed_files) == (None, None, None)
    assert git.note == "not a git repository"


def test_a_repository_without_commits_has_a_branch_but_no_commit(tmp_path: Path) -> None:
    repo = gitops.init(tmp_path / "fresh", branch="trunk")
    (repo / "draft.txt").write_text("x")

    git = detect_project(repo).git

    assert git.is_git_repo is True
    assert git.branch == "trunk"
    assert git.commit is None
    assert git.changed_files == 1
    assert git.note == "no commits yet"


def test_a_detached_head_has_a_commit_but_no_branch(project: Path) -> None:
    sha = gitops.head(project)
    gitops.git(project, "checkout", "-q", "--detach")

    git = detect_project(project).git

    assert (git.branch, git.commit) == (None, sha)


def test_missing_git_is_skipped_cleanly(project: Path, tmp_path: Path) -> None:
    snapshot = detect_project(project, git=str(tmp_path / "no-such-git"))

    assert snapshot.name == "demo"
    assert snapshot.git.git_available is False
    assert snapshot.git.is_git_repo is False
    assert snapshot.git.commit is None
    assert "not available" in (snapshot.git.note or "")


def test_git_missing_from_path_is_skipped_cleanly(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    assert detect_project(project).git.git_available is False


def test_a_hanging_git_is_abandoned_after_the_timeout(project: Path, tmp_path: Path) -> None:
    fake = tmp_path / "slow-git"
    fake.write_text("#!/bin/sh\nsleep 30 &\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)

    git = detect_project(project, git=str(fake), git_timeout=0.2).git

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

    assert detect_project(project).git.commit == expected


def test_a_repository_config_cannot_make_git_run_a_program(project: Path, tmp_path: Path) -> None:
    witness = tmp_path / "fsmonitor-ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {witness}\n")
    hook.chmod(0o755)
    gitops.git(project, "config", "core.fsmonitor", str(hook))

    detect_project(project)

    assert not witness.exists()


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
