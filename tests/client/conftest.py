"""Real servers for client tests: ``session-buddy serve`` over stdio (spawned by the client)
and over HTTP on 127.0.0.1 (spawned here), with real git projects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from testkit.environment import new_secret, server_environment
from testkit.git import commit, init
from testkit.server import ServerProcess, launch_http_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One HTTP server shared by a test module (auth enabled, its own data dir)."""
    directory = tmp_path_factory.mktemp("http-server")
    env = server_environment(directory / "data", new_secret())
    with launch_http_server(env, directory) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with one commit."""
    path = init(tmp_path / "project")
    commit(path, "README.md", "# project\n")
    return path


@pytest.fixture
def server_log(tmp_path: Path) -> Iterator[TextIO]:
    """Where a stdio server's stderr goes (kept out of the test output)."""
    with (tmp_path / "stdio-server.log").open("w+") as log:
        yield log
