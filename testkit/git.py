"""Real git repositories for test setup; a failing git command raises, so a broken fixture
is obvious."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git(path: Path, *args: str) -> str:
    """Run ``git -C path ARGS``; its stdout, stripped."""
    result = subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def init(path: Path, *, branch: str = "main") -> Path:
    """An empty repository with a committer configured and signing off."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    git(path, "config", "user.email", "tester@example.com")
    git(path, "config", "user.name", "Tester")
    git(path, "config", "commit.gpgsign", "false")
    return path


def commit(path: Path, name: str = "file.txt", content: str | None = None) -> str:
    """Write ``name`` (or append a line to it) and commit it; returns the new HEAD sha."""
    file = path / name
    file.parent.mkdir(parents=True, exist_ok=True)
    previous = file.read_text() if file.exists() else ""
    file.write_text(content if content is not None else previous + "change\n")
    git(path, "add", name)
    git(path, "commit", "-q", "-m", f"change {name}")
    return head(path)


def head(path: Path) -> str:
    return git(path, "rev-parse", "HEAD")


def make_git_repo(path: Path, name: str = "demo") -> Path:
    """A committed repository whose pyproject names the project ``name``."""
    init(path)
    commit(path, "pyproject.toml", f'[project]\nname = "{name}"\n')
    return path


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``root`` (``.git`` too) with mtime and size."""
    state: dict[str, tuple[int, int]] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(directory) / name
            info = full.lstat()
            state[str(full.relative_to(root))] = (info.st_mtime_ns, info.st_size)
    return state


def recording_program(path: Path, record: Path) -> Path:
    """An executable at ``path`` that, whenever run, appends its environment to ``record``
    and copies stdin to stdout (so it works as a filter driver too)."""
    path.write_text(f"#!/bin/sh\nenv >> '{record}'\necho --- >> '{record}'\nexec cat\n")
    path.chmod(0o755)
    return path


def commit_filtered_file(repo: Path, driver: bytes = b"evil") -> Path:
    """Commit ``file.txt`` and a ``.gitattributes`` naming the filter ``driver`` for it (the
    driver's program is for the caller to configure)."""
    (repo / ".gitattributes").write_bytes(b"*.txt filter=" + driver + b"\n")
    commit(repo, "file.txt", "content\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    return repo


def plain_status_runs(repo: Path, record: Path, dirty: str = "file.txt") -> bool:
    """Whether an ordinary ``git status`` (this process's environment and configuration)
    runs the program that writes ``record``: the proof that a hostile fixture is armed.
    Afterwards ``record`` is gone and ``dirty`` is stat-dirty again."""
    subprocess.run(["git", "-C", str(repo), "status"], capture_output=True, check=False)
    ran = record.exists()
    record.unlink(missing_ok=True)
    make_stat_dirty(repo, dirty)
    return ran


def make_stat_dirty(path: Path, name: str) -> None:
    """Rewrite a tracked file with the same content: git must read it again to know it is
    unchanged (through the file's clean filter, if it has one)."""
    file = path / name
    content = file.read_bytes()
    file.write_bytes(content)
    stamp = file.stat().st_mtime_ns + 2_000_000_000
    os.utime(file, ns=(stamp, stamp))
