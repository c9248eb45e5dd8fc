"""Fixtures for the session layer: a real SQLite file, real git repositories, a fixed clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions.service import SessionService
from session_buddy.store import SqliteDatabase
from testkit.clock import FixedClock
from testkit.git import make_git_repo

START = 1_750_000_000.0  # 2025-06-15T15:06:40Z


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def service(db: SqliteDatabase, clock: FixedClock) -> SessionService:
    return SessionService(db, clock=clock)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed git repository with a pyproject naming it ``demo``."""
    return make_git_repo(tmp_path / "projects" / "demo-dir")


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
