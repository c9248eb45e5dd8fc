"""``session-buddy serve`` as a real process: a free port, a start that waits for health.

:func:`launch_http_server` starts ``serve --transport http`` on a free loopback port with
its output in a log file. Used as ``with launch_http_server(...) as server:`` it waits
until ``GET /healthz`` answers 200, and stops the server when the block ends, whatever
happens; a caller that waits elsewhere (in a worker thread, say) calls
:meth:`ServerProcess.wait_until_ready` itself.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from testkit.processes import run_python

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
SERVE = (sys.executable, "-m", "session_buddy", "serve")
SERVE_HTTP = (*SERVE, "--transport", "http")
SCRIPT = Path(sys.executable).with_name("session-buddy")
"""The installed ``session-buddy`` script, for tests of the command as users run it."""


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def can_bind(address: str) -> bool:
    """Whether this machine has ``address`` (Linux routes all of 127.0.0.0/8 to loopback)."""
    try:
        with socket.socket() as sock:
            sock.bind((address, 0))
    except OSError:
        return False
    return True


class StartFailed(RuntimeError):
    """The server exited, or did not answer its health check in time; the log tail says why."""


@dataclass
class ServerProcess:
    """A started HTTP server: its process, where it listens, its environment and its log.

    As a context manager it waits until the server is ready (stopping it if it never is)
    and stops it when the block ends.
    """

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    env: dict[str, str]
    startup_timeout: float = STARTUP_TIMEOUT
    reach_at: str | None = None
    """The address clients connect to, when not ``host`` (a server bound to 0.0.0.0 is
    reached through the loopback address, so no traffic leaves the machine)."""

    def __enter__(self) -> ServerProcess:
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.reach_at or self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The streamable HTTP endpoint."""
        return f"{self.base_url}/mcp"

    @property
    def secret(self) -> str | None:
        return self.env.get("SESSION_BUDDY_SECRET")

    @property
    def data_dir(self) -> Path:
        return Path(self.env["SESSION_BUDDY_DATA_DIR"])

    def wait_until_ready(self, poll: float = 0.05) -> float:
        """Seconds until ``GET /healthz`` answered 200 (asked every ``poll`` seconds);
        :class:`StartFailed` otherwise."""
        started = time.monotonic()
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            while time.monotonic() - started < self.startup_timeout:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    raise StartFailed(f"server exited with {code}: {self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self.base_url}/healthz").status_code == 200:
                        return time.monotonic() - started
                time.sleep(poll)
        limit = self.startup_timeout
        raise StartFailed(f"server did not answer /healthz in {limit:.0f} s: {self.tail()}")

    def log(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 8) -> str:
        return " | ".join(self.log().strip().splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


def launch_http_server(
    env: dict[str, str],
    cwd: Path,
    *,
    host: str = LOOPBACK,
    port: int | None = None,
    log_path: Path | None = None,
    args: Sequence[str] = (),
    command: Sequence[str] = SERVE_HTTP,
    startup_timeout: float = STARTUP_TIMEOUT,
    preexec_fn: Callable[[], None] | None = None,
    reach_at: str | None = None,
) -> ServerProcess:
    """Start ``command --host HOST --port PORT ARGS`` now, without waiting for it.

    The port is a free one unless given; stdout and stderr go to ``log_path`` (by default
    ``cwd/server-PORT.log``). ``reach_at``: where clients connect when ``host`` is not an
    address to connect to (``0.0.0.0``: the loopback address). Use the result in a
    ``with`` block to wait until it is ready.
    """
    port = port or free_port(host)
    log_path = log_path or cwd / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--host", host, "--port", str(port), *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    return ServerProcess(process, host, port, log_path, env, startup_timeout, reach_at)


def run_server(
    env: dict[str, str], cwd: Path, *args: str, input: str | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``serve ARGS`` to completion (startup failures); stdin closed after ``input``."""
    return run_python(*SERVE[1:], *args, cwd=cwd, env=env, input=input, timeout=timeout)
