"""Fixtures for the session layer: a real SQLite file, real git repositories, a fixed clock."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions.service import SessionService
from session_buddy.store import SqliteDatabase

START = 1_750_000_000.0  # 2025-06-15T15:06:40Z


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class GitOps:
    """Real git for test setup; failures raise so a broken fixture is obvious."""

    @staticmethod
    def run(path: Path, *args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    def init(self, path: Path, *, branch: str = "main") -> Path:
        path.mkdir(parents=True, exist_ok=True)
        self.run(path, "init", "-q", "-b", branch)
        self.run(path, "config", "user.email", "tester@example.com")
        self.run(path, "config", "user.name", "Tester")
        self.run(path, "config", "commit.gpgsign", "false")
        return path

    def commit(self, path: Path, name: str = "file.txt", content: str | None = None) -> str:
        """Write ``name`` and commit it; returns the new HEAD sha."""
        file = path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        previous = file.read_text() if file.exists() else ""
        file.write_text(content if content is not None else previous + "change\n")
        self.run(path, "add", name)
        self.run(path, "commit", "-q", "-m", f"change {name}")
        return self.head(path)

    def head(self, path: Path) -> str:
        return self.run(path, "rev-parse", "HEAD")

    @staticmethod
    def tree_state(root: Path) -> dict[str, tuple[int, int]]:
        """Every file and directory under ``root`` (``.git`` too) with mtime and size."""
        state: dict[str, tuple[int, int]] = {}
        for directory, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                full = Path(directory) / name
                info = full.lstat()
                state[str(full.relative_to(root))] = (info.st_mtime_ns, info.st_size)
        return state


@pytest.fixture
def gitops() -> GitOps:
    return GitOps()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = SqliteDatabase(tmp_path / "data" / "session-buddy.db").open()
    yield database
    database.close()


@pytest.fixture
def service(db: Database, clock: FixedClock) -> SessionService:
    return SessionService(db, clock=clock)


@pytest.fixture
def project(tmp_path: Path, gitops: GitOps) -> Path:
    """A committed git repository with a pyproject naming it ``demo``."""
    repo = gitops.init(tmp_path / "projects" / "demo-dir")
    gitops.commit(repo, "pyproject.toml", '[project]\nname = "demo"\n')
    return repo


@pytest.fixture
def plain_dir(tmp_path: Path) -> Path:
    """A directory that is not a git repository."""
    path = tmp_path / "projects" / "plain"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def alice() -> Principal:
    return Principal(user_id="alice", authenticated=True, role="user")


@pytest.fixture
def bob() -> Principal:
    return Principal(user_id="bob", authenticated=True, role="user")


@pytest.fixture
def orchestrator() -> Principal:
    return Principal(user_id="mahavishnu", authenticated=True, role="orchestrator")


@pytest.fixture
def admin() -> Principal:
    return Principal(user_id="root-admin", authenticated=True, role="admin")
