"""What git reports about a project, that git is asked read-only, and commit counting."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from session_buddy.sessions.git import MAX_CONFIGURED_DRIVERS, count_commits, git_snapshot
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


# -- a hostile repository configuration ---------------------------------------------------
# Each test first shows that plain git (what ran before) does run the configured program,
# then that git_snapshot does not.


@pytest.fixture
def record(tmp_path: Path) -> Path:
    """Where a configured program writes its environment, should it ever run."""
    return tmp_path / "program-ran.log"


@pytest.fixture
def program(tmp_path: Path, record: Path) -> Path:
    return gitops.recording_program(tmp_path / "program.sh", record)


@pytest.mark.parametrize("command", ["clean", "process"])
def test_a_filter_driver_in_the_repository_config_never_runs(
    project: Path, program: Path, record: Path, command: str
) -> None:
    gitops.commit_filtered_file(project)
    gitops.git(project, "config", f"filter.evil.{command}", str(program))
    gitops.make_stat_dirty(project, "file.txt")
    assert gitops.plain_status_runs(project, record)

    snapshot = git_snapshot(project)

    assert not record.exists()
    assert snapshot.changed_files == 0


@pytest.mark.parametrize(
    "driver", [b"evil", b"dotted.name", b"a=b", b"caf\xc3\xa9", b"not-utf8-\xff"]
)
@pytest.mark.parametrize("how", ["include.path", "includeIf"])
def test_a_filter_driver_from_an_included_config_file_never_runs(
    project: Path, program: Path, record: Path, tmp_path: Path, driver: bytes, how: str
) -> None:
    gitops.commit_filtered_file(project, driver)
    included = tmp_path / "included.cfg"
    included.write_bytes(b'[filter "' + driver + b'"]\n\tclean = ' + str(program).encode() + b"\n")
    key = "include.path" if how == "include.path" else f"includeIf.gitdir:{project}/.path"
    gitops.git(project, "config", key, str(included))
    gitops.make_stat_dirty(project, "file.txt")
    assert gitops.plain_status_runs(project, record)

    git_snapshot(project)

    assert not record.exists()


def test_a_submodule_filter_driver_never_runs(
    project: Path, program: Path, record: Path, tmp_path: Path
) -> None:
    library = gitops.commit_filtered_file(gitops.init(tmp_path / "library"))
    gitops.git(
        project, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib"
    )
    gitops.git(project, "commit", "-q", "-m", "submodule")
    gitops.git(project / "lib", "config", "filter.evil.clean", str(program))
    gitops.make_stat_dirty(project / "lib", "file.txt")
    assert gitops.plain_status_runs(project, record, dirty="lib/file.txt")

    git_snapshot(project)

    assert not record.exists()


def _partial_clone_missing_a_blob(origin: Path, clone: Path, program: Path) -> Path:
    """A blob-less clone of ``origin`` whose staged rename makes git want a missing blob
    from its promisor remote, fetched through a configured ``uploadpack`` program."""
    gitops.git(origin, "config", "uploadpack.allowFilter", "true")
    gitops.git(origin, "config", "uploadpack.allowAnySHA1InWant", "true")
    gitops.git(
        clone.parent, "clone", "-q", "--no-local", "--filter=blob:none", origin.as_uri(), clone.name
    )
    lines = "".join(f"{clone.name} {n}\n" for n in range(300))
    gitops.commit(origin, f"{clone.name}.txt", lines)
    gitops.git(clone, "-c", "protocol.file.allow=always", "fetch", "-q", "origin")
    upload_pack = f"{program} </dev/null >/dev/null; git-upload-pack"
    gitops.git(clone, "config", "remote.origin.uploadpack", upload_pack)
    gitops.git(clone, "update-ref", "HEAD", "origin/main")
    (clone / "renamed.txt").write_text(lines + "one more\n")
    gitops.git(clone, "add", "renamed.txt")
    return clone


def test_a_partial_clone_does_not_fetch_through_a_configured_program(
    project: Path, program: Path, record: Path, tmp_path: Path
) -> None:
    control = _partial_clone_missing_a_blob(project, tmp_path / "control", program)
    assert gitops.plain_status_runs(control, record, dirty="renamed.txt")
    clone = _partial_clone_missing_a_blob(project, tmp_path / "clone", program)

    git_snapshot(clone)

    assert not record.exists()


@pytest.mark.parametrize(
    "variable", ["HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_PARAMETERS", "COUNT"]
)
def test_configuration_from_outside_the_repository_is_not_read(
    project: Path,
    program: Path,
    record: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    gitops.commit_filtered_file(project)
    config = tmp_path / "home" / ".gitconfig"
    config.parent.mkdir()
    config.write_text(f'[filter "evil"]\n\tclean = {program}\n')
    (tmp_path / "home" / "git").mkdir()
    (tmp_path / "home" / "git" / "config").write_text(config.read_text())
    settings = {
        "HOME": {"HOME": str(config.parent)},
        "XDG_CONFIG_HOME": {"XDG_CONFIG_HOME": str(config.parent)},
        "GIT_CONFIG_GLOBAL": {"GIT_CONFIG_GLOBAL": str(config)},
        "GIT_CONFIG_PARAMETERS": {"GIT_CONFIG_PARAMETERS": f"'filter.evil.clean'='{program}'"},
        "COUNT": {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "filter.evil.clean",
            "GIT_CONFIG_VALUE_0": str(program),
        },
    }[variable]
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    gitops.make_stat_dirty(project, "file.txt")
    assert gitops.plain_status_runs(project, record)

    git_snapshot(project)

    assert not record.exists()


def test_git_runs_with_a_minimal_environment(
    project: Path, tmp_path: Path, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-" * 6
    head = gitops.head(project)
    monkeypatch.setenv("SESSION_BUDDY_SECRET", secret)
    monkeypatch.setenv("MAHAVISHNU_AUTH__SECRET", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("GIT_TRACE", str(tmp_path / "trace"))
    wrapper = tmp_path / "git-wrapper"
    wrapper.write_text(f"#!/bin/sh\nenv -0 >> '{record}'\nexec git \"$@\"\n")
    wrapper.chmod(0o755)

    snapshot = git_snapshot(project, git=str(wrapper))

    assert snapshot.commit == head
    dump = record.read_bytes()
    assert secret.encode() not in dump
    names = {entry.partition(b"=")[0].decode() for entry in dump.split(b"\0") if entry}
    shell_own = {"PWD", "SHLVL", "OLDPWD", "_"}
    assert {name for name in names - shell_own if not name.startswith("GIT_")} == {
        "PATH",
        "HOME",
        "LC_ALL",
    }
    assert "GIT_TRACE" not in names
    assert not (tmp_path / "trace").exists()


def test_a_config_naming_too_many_drivers_is_not_run(project: Path, tmp_path: Path) -> None:
    included = tmp_path / "many.cfg"
    included.write_text(
        "".join(f'[filter "f{n}"]\n\tclean = cat\n' for n in range(MAX_CONFIGURED_DRIVERS + 1))
    )
    gitops.git(project, "config", "include.path", str(included))

    snapshot = git_snapshot(project)

    assert snapshot.commit == gitops.head(project)
    assert snapshot.changed_files is None


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
