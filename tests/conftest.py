"""Every test runs with a clean ``SESSION_BUDDY_*`` environment and a private data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from session_buddy.mcp.auth import reload_auth_config
from session_buddy.runtime import forget_shared_state
from session_buddy.store import SqliteDatabase
from testkit.environment import inherited_configuration, new_secret

pytest_plugins = ["testkit.pytest_postgres", "testkit.pytest_figures", "testkit.pytest_oidc"]


@pytest.fixture(autouse=True)
def isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """No inherited configuration, no ``.env`` from the checkout, a fresh data dir."""
    for name in inherited_configuration():
        monkeypatch.delenv(name)
    data_dir = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("SESSION_BUDDY_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    reload_auth_config()
    yield data_dir
    monkeypatch.undo()
    reload_auth_config()
    forget_shared_state()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    """An open database in a fresh data dir (closed after the test)."""
    database = SqliteDatabase(tmp_path / "data" / "session-buddy.db").open()
    yield database
    database.close()


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def auth_enabled(monkeypatch: pytest.MonkeyPatch, secret: str) -> str:
    """Authentication on, with a fresh 43-character secret; returns the secret."""
    monkeypatch.setenv("SESSION_BUDDY_SECRET", secret)
    reload_auth_config()
    return secret
