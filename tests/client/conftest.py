"""Real servers for client tests: ``session-buddy serve`` over stdio (spawned by the client)
and over HTTP on 127.0.0.1 (spawned here), with real git projects."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx
import pytest

SCRIPT = Path(sys.executable).with_name("session-buddy")
STARTUP_TIMEOUT = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any session-buddy or Mahavishnu configuration."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SESSION_BUDDY_") and name != "MAHAVISHNU_AUTH_SECRET"
    }
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HttpServer:
    url: str
    secret: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def http_server(directory: Path, **env: str) -> Iterator[HttpServer]:
    """``session-buddy serve --transport http`` on a free port, until the block ends."""
    secret = env.pop("SESSION_BUDDY_SECRET", secrets.token_urlsafe(32))
    data_dir = directory / "data"
    log = directory / "server.log"
    port = free_port()
    environment = clean_environment(
        SESSION_BUDDY_SECRET=secret, SESSION_BUDDY_DATA_DIR=str(data_dir), **env
    )
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(SCRIPT), "serve", "--transport", "http", "--port", str(port)],
            env=environment, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            cwd=directory,
        )  # fmt: skip
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", process, log)
        yield HttpServer(f"http://127.0.0.1:{port}/mcp", secret, data_dir, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """One HTTP server shared by a test module (auth enabled, its own data dir)."""
    with http_server(tmp_path_factory.mktemp("http-server")) as running:
        yield running


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with one commit."""
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "T")
    git(path, "config", "commit.gpgsign", "false")
    (path / "README.md").write_text("# project\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "first")
    return path


@pytest.fixture
def server_log(tmp_path: Path) -> Iterator[TextIO]:
    """Where a stdio server's stderr goes (kept out of the test output)."""
    with (tmp_path / "stdio-server.log").open("w+") as log:
        yield log
