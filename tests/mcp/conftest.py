"""Shared fixtures for the MCP server tests (helpers live in ``testkit``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from testkit.git import make_git_repo


@pytest.fixture(scope="session")
def portal() -> Iterator[BlockingPortal]:
    """One event loop in a background thread, shared by every MCP client of the session."""
    with start_blocking_portal() as blocking_portal:
        yield blocking_portal


@pytest.fixture(scope="module")
def workdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of a module's server: its data dir and logs go here too."""
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh committed git repository (its own project, so tests never share sessions)."""
    return make_git_repo(tmp_path / "demo-repo")
