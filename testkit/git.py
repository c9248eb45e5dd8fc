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
