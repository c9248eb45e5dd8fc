"""Part 5: how cost grows with data — months of a team's history against none.

Two databases per backend (SQLite, and a PostgreSQL the run starts): *empty* (the schema,
and what the measurement itself writes) and *large*: the same plus the issue's history
(:mod:`testkit.history`: 10⁵ sessions over 10³ users, 10⁶ checkpoints, 10⁶ audit rows,
10⁵ revocations in force), written in bulk, not through the server. Both hold the same
recent activity (:func:`testkit.history.fill_recent`: a page of every listing) and the
history is older than a day, so the two differ only by what a call should not need to
read. Every figure is a ratio large / empty, measured in the same run:

* tools, through the real HTTP server and the official client with a bearer token, calls
  alternating between the backend's two servers (rotated): ``session_status``,
  ``checkpoint`` (in a directory on the server's disk, and in a project named by id as a
  caller on another machine names it), ``whoami``, ``list_sessions`` of the caller's own
  sessions, of a project id's (every user's: a repository of the team's with about 2,000
  sessions in the history) and of every user's (a token with the ``admin`` role, as an
  orchestrator's);
* CLI listings, a process each as an operator runs them: ``sessions list``, ``audit list
  --since 1h``, ``audit export --since 1d``;
* start-up: from starting ``serve --transport http`` to its first 200 on ``/healthz``
  (authentication and metrics on, so the revocations in force are loaded before it
  answers); on SQLite also with the database file dropped from the page cache first
  (``posix_fadvise(DONTNEED)`` on that file alone).

Targets (the issue's): every tool and listing ≤ 1.2×, start-up ≤ 1.5× (the cold-cache
start is reported without one: it measures the disk).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client

from benchmarks.harness import Profile, Row, median, progress, spread
from benchmarks.postgres import BenchPostgres, bench_postgres
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.history import RECENT_SESSIONS, History, fill, fill_recent, team_project_id
from testkit.mcp import mcp_http
from testkit.processes import run_python
from testkit.server import ServerProcess, launch_http_server
from testkit.store import database_at
from testkit.tokens import mint

PART = "growth"
CALL_TARGET = 1.2
START_TARGET = 1.5
QUIET = ("--log-level", "WARNING")
USER = "bench-user"
ADMIN = "bench-admin"
POLL_SECONDS = 0.005  # /healthz asked this often while a server starts
STARTUP_TIMEOUT = 120.0
BACKENDS = ("sqlite", "postgresql")
SIZES = ("empty", "large")
BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
COLD_NOTE = (
    "the start reads the header, the schema, each table's first page and the index of the "
    "revocations in force (about 7 MB for 10⁵): from a cold cache that is the disk's random "
    "reads, machine-dependent, so this row has no target"
)


@dataclass(frozen=True)
class Tool:
    key: str
    what: str
    name: str
    admin: bool = False  # called with the admin's token
    project: bool = False  # takes the caller's project directory
    remote: bool = False  # names the project by id (a caller on another machine)


TOOLS = (
    Tool("session_status", "session_status", "session_status", project=True),
    Tool("checkpoint", "checkpoint", "checkpoint", project=True),
    Tool("session_status_remote", "session_status (project by id)", "session_status", remote=True),
    Tool("checkpoint_remote", "checkpoint (project by id)", "checkpoint", remote=True),
    Tool("whoami", "whoami", "whoami"),
    Tool("list_sessions_own", "list_sessions (own sessions)", "list_sessions"),
    Tool(
        "list_sessions_project",
        "list_sessions (a project id's, every user's, admin)",
        "list_sessions",
        admin=True,
        remote=True,
    ),
    Tool("list_sessions_all", "list_sessions (every user's, admin)", "list_sessions", admin=True),
)
# A repository of the team's with about 2,000 sessions of the large history (and one of
# the recent ones): what a caller on another machine names.
REMOTE_PROJECT = team_project_id(7)
LISTINGS = (
    ("sessions_list", ("sessions", "list")),
    ("audit_list_1h", ("audit", "list", "--since", "1h")),
    ("audit_export_1d", ("audit", "export", "--since", "1d")),
)


@dataclass
class Deployment:
    """One database (``size`` of ``backend``) and the environment its processes get."""

    backend: str
    size: str
    env: dict[str, str]
    display: str  # a file path or host:port/db, never a URL (it holds the password)
    file: Path | None  # the SQLite file
    server: ServerProcess | None = None
    clients: dict[bool, Client] = field(default_factory=dict)  # by "admin"

    @property
    def name(self) -> str:
        return f"{self.backend}_{self.size}"


@dataclass
class Setup:
    root: Path
    repo: Path
    secret: str
    user_token: str
    admin_token: str
    history: History
    now: float = field(default_factory=time.time)  # "now" for every database's rows
    deployments: dict[tuple[str, str], Deployment] = field(default_factory=dict)
    built: dict[str, Any] = field(default_factory=dict)

    def pair(self, backend: str) -> list[Deployment]:
        return [self.deployments[backend, size] for size in SIZES]


def _warmup(profile: Profile) -> int:
    """Rounds run first and left out: one, none in a quick run."""
    return 0 if profile.name == "quick" else 1


def run(profile: Profile) -> list[Row]:
    history = History().scaled(profile.growth_fraction)
    with tempfile.TemporaryDirectory(prefix="sb-bench-growth-") as tmp:
        root = Path(tmp)
        secret = new_secret()
        setup = Setup(
            root=root,
            repo=make_git_repo(root / "project", "growth-project"),
            secret=secret,
            user_token=mint(secret, USER, lifetime=6 * 3600),
            admin_token=mint(secret, ADMIN, lifetime=6 * 3600, role="admin"),
            history=history,
        )
        progress("growth: starting PostgreSQL")
        with bench_postgres() as postgres:
            for backend in BACKENDS:
                for size in SIZES:
                    setup.deployments[backend, size] = _build(setup, backend, size, postgres)
            rows = _startup_rows(profile, setup)
            rows += anyio.run(_tool_rows, profile, setup)
            rows += _listing_rows(profile, setup)
            rows.append(_history_row(setup))
            return rows


def _build(setup: Setup, backend: str, size: str, postgres: BenchPostgres) -> Deployment:
    data_dir = setup.root / f"{backend}-{size}"
    data_dir.mkdir()
    settings = {}
    if backend == "postgresql":
        settings["SESSION_BUDDY_DATABASE_URL"] = postgres.database_url(f"growth_{size}")
    env = server_environment(data_dir, setup.secret, **settings)
    location = settings.get("SESSION_BUDDY_DATABASE_URL", str(data_dir / "session-buddy.db"))
    started = time.monotonic()
    database = database_at(location).open()
    try:
        if size == "large":
            progress(f"growth: writing the large {BACKEND_NAMES[backend]} database")
            fill(database, setup.history, now=setup.now)
            setup.built[f"{backend}_seconds"] = round(time.monotonic() - started, 1)
        fill_recent(database, now=setup.now)
        if size == "large":
            setup.built[f"{backend}_mb"] = round(_size_mb(database, location), 1)
        display = database.display
    finally:
        database.close()
    file = None if backend == "postgresql" else Path(location)
    return Deployment(backend, size, env, display, file)


def _size_mb(database: Any, location: str) -> float:
    if database.dialect.name == "postgresql":
        rows = database.query("SELECT pg_database_size(current_database())")
        return float(rows[0][0]) / 1e6
    return Path(location).stat().st_size / 1e6


# -- start-up ---------------------------------------------------------------------------


def drop_from_page_cache(file: Path) -> None:
    """Make the next read of ``file`` (and its ``-wal``) come from the disk, not memory;
    other files, and other users of the machine, keep their cache."""
    for path in (file, file.with_name(file.name + "-wal")):
        if not path.exists():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def time_startup(setup: Setup, deployment: Deployment, *, cold: bool = False) -> float:
    """Seconds from starting the server to its first 200 on ``/healthz``."""
    if cold and deployment.file is not None:
        drop_from_page_cache(deployment.file)
    started = time.perf_counter()
    server = launch_http_server(
        deployment.env,
        setup.root,
        log_path=setup.root / f"start-{deployment.name}.log",
        args=QUIET,
        startup_timeout=STARTUP_TIMEOUT,
    )
    try:
        server.wait_until_ready(poll=POLL_SECONDS)
        return time.perf_counter() - started
    finally:
        server.stop()


def _startup_rows(profile: Profile, setup: Setup) -> list[Row]:
    configurations = [(backend, False) for backend in BACKENDS] + [("sqlite", True)]
    rows = []
    for backend, cold in configurations:
        label = "cold file cache" if cold else "warm"
        progress(f"growth: {profile.growth_starts} start-ups of each {backend} server ({label})")
        times: dict[str, list[float]] = {size: [] for size in SIZES}
        warmup = _warmup(profile)
        for number in range(warmup + profile.growth_starts):
            pair = setup.pair(backend)
            for deployment in pair if number % 2 else pair[::-1]:
                seconds = time_startup(setup, deployment, cold=cold)
                if number >= warmup:
                    times[deployment.size].append(seconds)
        key = f"{backend}_startup" + ("_cold" if cold else "")
        what = f"{BACKEND_NAMES[backend]}: start-up to /healthz 200" + (
            ", file not in the page cache" if cold else ""
        )
        # From a cold cache the start reads the revocations in force from the disk: what
        # that costs is the disk's (random reads), so the row informs and has no target.
        row = _ratio_row(key, what, times, None if cold else START_TARGET)
        if cold:
            row.details["note"] = COLD_NOTE
        rows.append(row)
    return rows


# -- tools ------------------------------------------------------------------------------


async def _tool_rows(profile: Profile, setup: Setup) -> list[Row]:
    async with AsyncExitStack() as stack:
        with ExitStack() as servers:
            for deployment in setup.deployments.values():
                deployment.server = servers.enter_context(
                    launch_http_server(
                        deployment.env,
                        setup.root,
                        log_path=setup.root / f"serve-{deployment.name}.log",
                        args=QUIET,
                        startup_timeout=STARTUP_TIMEOUT,
                    )
                )
                url = deployment.server.url
                for admin, token in ((False, setup.user_token), (True, setup.admin_token)):
                    client = mcp_http(url, bearer=token, timeout=300)
                    deployment.clients[admin] = await stack.enter_async_context(client)
                await _check_setup(setup, deployment)
            times = await _measure_tools(profile, setup)
            await stack.aclose()
    return [
        _ratio_row(
            f"{backend}_{tool.key}",
            f"{BACKEND_NAMES[backend]}: {tool.what}",
            times[backend, tool.key],
            CALL_TARGET,
        )
        for backend in BACKENDS
        for tool in TOOLS
    ]


async def _call(setup: Setup, deployment: Deployment, tool: Tool) -> Any:
    arguments: dict[str, Any] = {}
    if tool.project:
        arguments["working_directory"] = str(setup.repo)
    if tool.remote:
        arguments["project"] = REMOTE_PROJECT
    if tool.name == "checkpoint":
        arguments["note"] = "growth benchmark"
    result = await deployment.clients[tool.admin].call_tool(tool.name, arguments)
    if result.is_error:
        raise RuntimeError(f"{deployment.name}: {tool.name} failed: {result.content}")
    return result.structured_content or {}


async def _check_setup(setup: Setup, deployment: Deployment) -> None:
    """The caller's session started; the admin sees every session of the database."""
    started = await deployment.clients[False].call_tool(
        "start_session", {"working_directory": str(setup.repo)}
    )
    remote = await deployment.clients[False].call_tool(
        "start_session", {"project": REMOTE_PROJECT, "branch": "main"}
    )
    for answer in (started, remote):
        if answer.is_error:
            raise RuntimeError(f"{deployment.name}: start_session failed: {answer.content}")
    listing = await _call(setup, deployment, TOOLS[-1])
    expected = 2 + RECENT_SESSIONS + (setup.history.sessions if deployment.size == "large" else 0)
    total = listing.get("total")
    if total != expected:
        raise RuntimeError(f"{deployment.name}: {total} sessions listed, {expected} expected")


async def _measure_tools(
    profile: Profile, setup: Setup
) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Per round, each tool's calls on the empty and the large server of a backend take
    turns call by call (order rotated every turn); a round's figure is the mean time of its
    calls on each. Warm-up rounds are left out."""
    times = {
        (backend, tool.key): {size: [] for size in SIZES} for backend in BACKENDS for tool in TOOLS
    }
    calls, warmup = profile.growth_calls, _warmup(profile)
    progress(
        f"growth: {profile.growth_rounds} rounds (+{warmup} warm-up) × {calls} calls × "
        f"{len(TOOLS)} tools × {len(setup.deployments)} servers"
    )
    clock = time.perf_counter
    for number in range(warmup + profile.growth_rounds):
        for backend in BACKENDS if number % 2 else BACKENDS[::-1]:
            pair = setup.pair(backend)
            for tool in TOOLS:
                spent = {size: 0.0 for size in SIZES}
                for turn in range(calls):
                    order = pair if (turn + number) % 2 else pair[::-1]
                    for deployment in order:
                        start = clock()
                        await _call(setup, deployment, tool)
                        spent[deployment.size] += clock() - start
                if number >= warmup:
                    for size in SIZES:
                        times[backend, tool.key][size].append(spent[size] / calls)
    return times


# -- CLI listings -----------------------------------------------------------------------


def time_listing(setup: Setup, deployment: Deployment, args: Sequence[str]) -> float:
    """Seconds ``session-buddy ARGS`` takes, start to exit, output captured."""
    started = time.perf_counter()
    result = run_python("-m", "session_buddy", *args, cwd=setup.root, env=deployment.env,
                        timeout=600)  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{deployment.name}: {' '.join(args)} failed: {result.stderr[-500:]}")
    return elapsed


def _listing_rows(profile: Profile, setup: Setup) -> list[Row]:
    rounds, warmup = profile.growth_starts, _warmup(profile)
    progress(f"growth: {rounds} rounds (+{warmup} warm-up) of CLI listings")
    times = {
        (backend, key): {size: [] for size in SIZES} for backend in BACKENDS for key, _ in LISTINGS
    }
    for number in range(warmup + rounds):
        for backend in BACKENDS:
            pair = setup.pair(backend)
            for key, args in LISTINGS:
                for deployment in pair if number % 2 else pair[::-1]:
                    seconds = time_listing(setup, deployment, args)
                    if number >= warmup:
                        times[backend, key][deployment.size].append(seconds)
    return [
        _ratio_row(
            f"{backend}_{key}",
            f"{BACKEND_NAMES[backend]}: session-buddy {' '.join(args)}",
            times[backend, key],
            CALL_TARGET,
        )
        for backend in BACKENDS
        for key, args in LISTINGS
    ]


# -- rows -------------------------------------------------------------------------------


def _ratio_row(key: str, what: str, times: dict[str, list[float]], target: float | None) -> Row:
    """large / empty per round, their median; absolute figures in milliseconds."""
    per_round = [large / empty for large, empty in zip(times["large"], times["empty"], strict=True)]
    ms = {size: [seconds * 1000 for seconds in times[size]] for size in SIZES}
    large_ms, empty_ms = median(ms["large"]), median(ms["empty"])
    return Row(
        PART,
        f"{key}_large_vs_empty",
        f"{what}, large / empty",
        median(per_round),
        op=None if target is None else "<=",
        target=target,
        details={
            "absolute": f"{large_ms:.1f} ms vs {empty_ms:.1f} ms",
            "ratio_per_round": [round(ratio, 4) for ratio in per_round],
            "ms_large": spread(ms["large"]),
            "ms_empty": spread(ms["empty"]),
        },
    )


def _history_row(setup: Setup) -> Row:
    history = setup.history
    built = setup.built
    return Row(
        PART,
        "large_database",
        "the large database: sessions in it",
        history.sessions,
        unit="sessions",
        details={
            "absolute": (
                f"{history.sessions:,} sessions of {history.users:,} users, "
                f"{history.checkpoints:,} checkpoints, {history.audit:,} audit rows, "
                f"{history.revoked:,} revocations; SQLite {built.get('sqlite_mb')} MB "
                f"(written in {built.get('sqlite_seconds')} s), PostgreSQL "
                f"{built.get('postgresql_mb')} MB ({built.get('postgresql_seconds')} s)"
            ),
            "history": {
                "users": history.users,
                "sessions": history.sessions,
                "checkpoints": history.checkpoints,
                "audit": history.audit,
                "revoked": history.revoked,
            },
            "built": built,
            "databases": {d.name: d.display for d in setup.deployments.values()},
        },
    )
