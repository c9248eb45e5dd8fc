"""Helpers for the MCP server tests: real server subprocesses, real MCP clients, real git.

Servers run as ``python -m session_buddy serve`` with a private data dir and a clean
environment. The official MCP client drives them through a blocking portal (one event
loop in a background thread), so plain synchronous tests can share one connection.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jwt
from anyio.from_thread import BlockingPortal
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Tool

STARTUP_TIMEOUT = 30.0
SERVER_COMMAND = [sys.executable, "-m", "session_buddy", "serve"]


# -- tokens ---------------------------------------------------------------------------


JSON_RPC_HEADERS = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def mint(secret: str, user_id: str = "mahavishnu", *, lifetime: int = 600, **claims: Any) -> str:
    """A token exactly as Mahavishnu mints it with plain PyJWT, plus any extra claims."""
    now = int(time.time())
    payload = {"user_id": user_id, "exp": now + lifetime, "iat": now, "type": "access"}
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


# -- processes ------------------------------------------------------------------------


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any session-buddy or Mahavishnu settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SESSION_BUDDY_", "MAHAVISHNU_"))
    }
    env.update(settings)
    return env


def server_environment(data_dir: Path, secret: str | None, **extra: str) -> dict[str, str]:
    settings = {"SESSION_BUDDY_DATA_DIR": str(data_dir), **extra}
    if secret is not None:
        settings["SESSION_BUDDY_SECRET"] = secret
    return clean_environment(**settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpServer:
    """``session-buddy serve --transport http`` on a free port, stderr captured to a file."""

    process: subprocess.Popen[bytes]
    port: int
    stderr_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/mcp"

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_http_server(env: dict[str, str], workdir: Path, *args: str) -> HttpServer:
    """Start the HTTP server and wait until ``/healthz`` answers 200."""
    port = free_port()
    stderr_path = workdir / f"server-{port}.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*SERVER_COMMAND, "--transport", "http", "--port", str(port), *args],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = HttpServer(process, port, stderr_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.stderr()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not answer /healthz in time:\n{server.stderr()}")


def run_server_briefly(
    env: dict[str, str], workdir: Path, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run ``serve`` to completion (for startup failures); stdin closed at once."""
    return subprocess.run(
        [*SERVER_COMMAND, *args],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- MCP clients ------------------------------------------------------------------------


@dataclass
class McpConnection:
    """A connected official MCP client, driven synchronously through a blocking portal."""

    portal: BlockingPortal
    client: Client
    _exit: Any = field(repr=False)

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return self.portal.call(self.client.call_tool, tool, arguments)

    def tools(self) -> list[Tool]:
        return self.portal.call(self.client.list_tools).tools

    def close(self) -> None:
        self._exit(None, None, None)


def connect(
    portal: BlockingPortal, transport: AbstractAsyncContextManager[Any], mode: str = "auto"
) -> McpConnection:
    """Connect the official client; ``mode="legacy"`` forces the initialize handshake."""
    manager = portal.wrap_async_context_manager(Client(transport, mode=mode))
    client = manager.__enter__()
    return McpConnection(portal, client, manager.__exit__)


def stdio_transport(
    env: dict[str, str], workdir: Path, errlog: Any, *args: str
) -> AbstractAsyncContextManager[Any]:
    params = StdioServerParameters(
        command=SERVER_COMMAND[0], args=[*SERVER_COMMAND[1:], *args], env=env, cwd=workdir
    )
    return stdio_client(params, errlog=errlog)


@contextlib.asynccontextmanager
async def http_transport(
    url: str, headers: dict[str, str] | None = None, local_address: str | None = None
) -> AsyncIterator[Any]:
    """Streamable HTTP; ``local_address`` picks the loopback address the client connects from."""
    async with (
        httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(30, read=300),
            transport=httpx2.AsyncHTTPTransport(local_address=local_address),
        ) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


# -- git --------------------------------------------------------------------------------


def make_git_repo(path: Path, name: str = "demo") -> Path:
    """A committed git repository whose pyproject names the project ``name``."""
    path.mkdir(parents=True, exist_ok=True)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "tester@example.com")
    git("config", "user.name", "Tester")
    git("config", "commit.gpgsign", "false")
    (path / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    git("add", "pyproject.toml")
    git("commit", "-q", "-m", "initial")
    return path


def commit_file(repo: Path, name: str, content: str) -> None:
    (repo / name).write_text(content)
    subprocess.run(["git", "-C", str(repo), "add", name], check=True, capture_output=True)
    subprocess.run(
        ["git", "-C", str(repo), "commit", "-q", "-m", f"add {name}"],
        check=True,
        capture_output=True,
    )
