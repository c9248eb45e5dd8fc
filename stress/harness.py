"""What every scenario needs: a private root, the secrets, processes, clients and results.

Nothing here knows a scenario. A :class:`Context` owns the temporary root (logs, data
dirs, project dirs), the server secrets and the registry of every token used (for the
hygiene scan). :func:`launch_server` runs ``session-buddy serve --transport http`` (the
kit's :mod:`testkit.server`) on a free port with DEBUG logging and its output under the
logs; :func:`run_cli` runs the CLI the same way. Clients are in :mod:`stress.wire`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from testkit.environment import clean_environment, new_secret
from testkit.postgres import PostgresServer
from testkit.processes import die_with_parent
from testkit.server import LOOPBACK, SERVE_HTTP, ServerProcess, can_bind, launch_http_server

FLOOD_ADDRESS = "127.0.0.2"
CALL_TIMEOUT = 20.0
AUTH_FAILED = "❌ Authentication failed"
TRACEBACK = "Traceback (most recent call last)"


# -- results ------------------------------------------------------------------------


@dataclass
class Bar:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Outcome:
    """What a scenario measured and whether each of its bars was met."""

    number: int
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    summary: str = ""

    def figure(self, name: str, value: Any) -> None:
        self.figures[name] = value

    def bar(self, name: str, ok: bool, detail: str = "") -> bool:
        self.bars.append(Bar(name, bool(ok), detail))
        return bool(ok)

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.bars) and all(b.ok for b in self.bars)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.number,
            "title": self.title,
            "verdict": self.verdict,
            "seconds": round(self.seconds, 1),
            "summary": self.summary,
            "figures": self.figures,
            "bars": [{"bar": b.name, "ok": b.ok, "detail": b.detail} for b in self.bars],
            "notes": self.notes,
            "error": self.error,
        }


# -- the run's private world ------------------------------------------------------------


class SourceAddresses:
    """Distinct loopback source addresses (127.0.x.y), one per batch of bad requests.

    The server throttles bad credentials per client address (20 per minute); scenarios
    that must see every verdict send each batch of fewer than 20 from a fresh address.
    """

    def __init__(self) -> None:
        self._next = 0
        self._lock = threading.Lock()
        self.usable = can_bind("127.0.1.2")

    def take(self) -> str | None:
        if not self.usable:
            return None
        with self._lock:
            n = self._next
            self._next += 1
        return f"127.{1 + n // 62500}.{(n // 250) % 250}.{2 + n % 250}"


class TokenRegistry:
    """Every token string the run sent anywhere: the hygiene scan looks for each one."""

    def __init__(self) -> None:
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    def add(self, token: object) -> None:
        if isinstance(token, str) and len(token.strip()) >= 16:
            with self._lock:
                self._tokens.add(token)

    def add_all(self, tokens: Iterable[object]) -> None:
        for token in tokens:
            self.add(token)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._tokens))

    def __len__(self) -> int:
        return len(self._tokens)


class Context:
    """One stress run: root directory, secrets, token registry, child processes."""

    def __init__(self, root: Path, *, verbose: bool = True, quick: bool = False) -> None:
        self.root = root
        self.verbose = verbose
        self.quick = quick
        self.secret = new_secret()
        self.previous_secrets = [new_secret(), secrets.token_urlsafe(33)]
        self.tokens = TokenRegistry()
        self.database_passwords: list[str] = []  # of every database URL used: never written
        self.addresses = SourceAddresses()
        self.logs = root / "logs"
        self.logs.mkdir(parents=True)
        self.cwd = root / "cwd"
        self.cwd.mkdir()
        self.harness_data = root / "data-harness"
        self.data_dirs: list[Path] = [self.harness_data]
        self._children: list[subprocess.Popen[bytes]] = []
        self.immutable: list[Path] = []
        self._counter = 0
        self._lock = threading.Lock()

    @property
    def server_secrets(self) -> list[str]:
        return [self.secret, *self.previous_secrets]

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, flush=True)

    def unique(self, stem: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{stem}-{self._counter:03d}"

    def data_dir(self, name: str) -> Path:
        """A fresh data dir path (not created: the product creates it)."""
        path = self.root / f"data-{self.unique(name)}"
        self.data_dirs.append(path)
        return path

    def project_dir(self, name: str) -> Path:
        path = self.root / "projects" / self.unique(name)
        path.mkdir(parents=True)
        return path

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        """The environment of a child: ours, minus inherited session-buddy configuration."""
        return clean_environment(
            SESSION_BUDDY_SECRET=self.secret,
            SESSION_BUDDY_PREVIOUS_SECRETS=",".join(self.previous_secrets),
            SESSION_BUDDY_DATA_DIR=str(data_dir),
            SESSION_BUDDY_LOG_LEVEL="DEBUG",
            PYTHONUNBUFFERED="1",
            **extra,
        )

    def adopt(self, process: subprocess.Popen[bytes]) -> None:
        """Kill ``process`` with the others when the scenario ends (:meth:`kill_children`)."""
        with self._lock:
            self._children.append(process)

    def kill_children(self) -> None:
        with self._lock:
            children = list(self._children)
        for process in children:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)

    def release_immutable(self) -> None:
        """Lift every ``chattr +i`` a scenario set (so the root can be removed)."""
        for path in reversed(self.immutable):
            subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
        self.immutable.clear()

    def stdio_log(self, name: str) -> Path:
        return self.logs / f"{self.unique(name)}.log"


# -- processes --------------------------------------------------------------------------


def launch_server(
    ctx: Context,
    name: str,
    data_dir: Path,
    port: int | None = None,
    *,
    host: str = LOOPBACK,
    prefix: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
) -> ServerProcess:
    """``serve --transport http`` at DEBUG, its log under logs/, killed if the harness dies.

    ``prefix`` runs it through another command (``ip netns exec NAME``, which execs it:
    the pid is the server's); ``settings`` are extra ``SESSION_BUDDY_*`` variables.
    """
    server = launch_http_server(
        ctx.env(data_dir, **(settings or {})),
        ctx.cwd,
        host=host,
        port=port,
        log_path=ctx.logs / f"{ctx.unique(f'server-{name}')}.log",
        args=("--log-level", "DEBUG"),
        command=(*prefix, *SERVE_HTTP),
        preexec_fn=functools.partial(die_with_parent, signal.SIGKILL),
    )
    ctx.adopt(server.process)
    return server


@contextlib.asynccontextmanager
async def postgres_database(ctx: Context, name: str) -> AsyncIterator[str]:
    """A PostgreSQL server of its own on 127.0.0.1 with one database, owned by a login role
    (not a superuser) with a random password; yields that database's URL.

    The server is started and stopped by one thread that lives as long as the block (the
    kit's server dies with the thread that started it); its log is copied under logs/ and
    its passwords join those the hygiene scan looks for.
    """
    server = PostgresServer()
    keeper = ThreadPoolExecutor(1, thread_name_prefix=f"stress-postgres-{name}")
    password = secrets.token_urlsafe(18)
    ctx.database_passwords += [password, server.superuser_password]

    async def in_keeper(operation: Callable[[], None]) -> None:
        await anyio.to_thread.run_sync(keeper.submit(operation).result)

    try:
        await in_keeper(server.start)
        server.create_role(name, password)
        server.create_database(name, owner=name)
        yield server.url(user=name, password=password, dbname=name)
    finally:
        with contextlib.suppress(OSError):
            if server.base_dir is not None and server.log_path.exists():
                shutil.copyfile(server.log_path, ctx.logs / f"{ctx.unique('postgres')}.log")
        with anyio.CancelScope(shield=True):
            await in_keeper(server.close)
        keeper.shutdown()


async def ready(server: ServerProcess) -> float:
    """Seconds until ``/healthz`` answered (``StartFailed`` otherwise), waited for in a
    worker thread so the scenario's other tasks keep running."""
    return await anyio.to_thread.run_sync(server.wait_until_ready)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    exited_at: float = 0.0  # time.monotonic() when the process was seen to exit


async def run_cli(
    ctx: Context,
    args: list[str],
    *,
    data_dir: Path,
    timeout: float = 30.0,
    settings: Mapping[str, str] | None = None,
) -> CliResult:
    """Run ``python -m session_buddy ARGS``; its output is also kept under logs/.

    ``seconds`` ends when the process has exited; ``settings`` are extra variables.
    """
    name = ctx.unique("cli")
    started = time.monotonic()
    process = await anyio.open_process(
        [sys.executable, "-m", "session_buddy", *args],
        cwd=ctx.cwd,
        env=ctx.env(data_dir, **(settings or {})),
        stdin=subprocess.DEVNULL,
    )
    out = err = b""
    exited_at = 0.0
    try:
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as tg:

                async def read_out() -> None:
                    nonlocal out
                    assert process.stdout is not None
                    async for chunk in process.stdout:
                        out += chunk

                async def read_err() -> None:
                    nonlocal err
                    assert process.stderr is not None
                    async for chunk in process.stderr:
                        err += chunk

                tg.start_soon(read_out)
                tg.start_soon(read_err)
                await process.wait()
                exited_at = time.monotonic()
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        (ctx.logs / f"{name}.out").write_bytes(out)
        (ctx.logs / f"{name}.err").write_bytes(err)
    return CliResult(
        process.returncode if process.returncode is not None else -9,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        time.monotonic() - started,
        exited_at,
    )


def quiet_library_logging(ctx: Context) -> Path:
    """session_buddy's in-process log records (at DEBUG, unredacted) go to a file we scan."""
    path = ctx.logs / "harness-session-buddy.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("session_buddy")
    ours.handlers[:] = [handler]
    ours.setLevel(logging.DEBUG)
    ours.propagate = False
    other = logging.FileHandler(ctx.root / "harness-deps.log", encoding="utf-8")
    root = logging.getLogger()
    root.handlers[:] = [other]
    root.setLevel(logging.WARNING)
    return path
