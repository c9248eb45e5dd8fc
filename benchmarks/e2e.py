"""Part 2: MCP tool calls per second, end to end, with authentication off and on.

The real server (``python -m session_buddy serve``) over stdio and over streamable HTTP,
driven by the official MCP client (``mcp.client.Client``), calling ``session_status``
on a temporary git repository in which each server's caller has started a session (so
every call reads a real row). Configurations:

* stdio, auth off / auth on with the ``token`` argument;
* HTTP, auth off / auth on with the ``token`` argument / auth on with an
  ``Authorization: Bearer`` header;
* the baseline: :mod:`benchmarks.baseline_server` — the SDK's ``AuthSettings`` +
  ``TokenVerifier`` (PyJWT) — over HTTP with a bearer header;
* the PostgreSQL backend: stdio with the ``token`` argument and HTTP with a bearer header,
  auth on, each server on its own database of a PostgreSQL server the benchmark starts
  (:mod:`benchmarks.postgres`), compared with the same configuration on SQLite;
* audit + metrics off (issue 12): an auth-on server started with
  ``SESSION_BUDDY_AUDIT=false`` and ``SESSION_BUDDY_METRICS=false`` (stdio with the
  ``token`` argument, HTTP with a bearer header), against the auth-on server of the same
  configuration above, which runs with the defaults (both on; over stdio only the audit
  exists, metrics are HTTP-only). After the rounds, each side is checked to have been
  what it claims: the audit trail of an "on" server holds every call and a "quiet" one's
  holds none; the "on" HTTP server's ``/metrics`` counted every call, the quiet one has
  no ``/metrics``.

Every round runs a fixed number of sequential calls per configuration; configurations
that are compared take turns call by call (rotated order), so both sides of a ratio see
the same load from the rest of the machine. Every configuration has a server process of
its own: a server that has just answered the previous call answers the next one faster
(awake, caches warm), which would favour whichever of two configurations sharing a server
follows the other in the rotation. A configuration's calls/s in a round is its calls over
the time they took; figures are medians over rounds, ratios are taken per round, then
the median.
All servers log at WARNING, so no configuration pays for per-request log lines.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx
from mcp.client import Client
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.harness import Profile, Row, median, progress, spread
from benchmarks.postgres import BenchPostgres, bench_postgres
from session_buddy.auth.principal import Principal
from session_buddy.auth.trail import FLUSH_SECONDS
from session_buddy.sessions.service import SessionService
from session_buddy.store import SqliteDatabase
from testkit.environment import new_secret, server_environment
from testkit.figures import percentile
from testkit.git import make_git_repo
from testkit.mcp import mcp_http, mcp_stdio
from testkit.processes import REPO_ROOT
from testkit.server import SERVE_HTTP, ServerProcess, launch_http_server
from testkit.tokens import mint

PART = "e2e"
QUIET = ("--log-level", "WARNING")
BASELINE = (sys.executable, "-m", "benchmarks.baseline_server", *QUIET)
USER = "bench-user"
STARTUP_TIMEOUT = 60.0
BATCH_TIMEOUT = 300.0
TOOL = "session_status"

# (configuration, its reference, target): calls/s of the first over the second, per round.
COMPARISONS: list[tuple[str, str, float, str]] = [
    ("stdio_on_token", "stdio_off", 0.97, "stdio calls/s, auth on (token argument) / off"),
    ("http_on_token", "http_off", 0.97, "HTTP calls/s, auth on (token argument) / off"),
    ("http_on_bearer", "http_off", 0.97, "HTTP calls/s, auth on (bearer header) / off"),
    ("http_on_bearer", "http_sdk_baseline", 1.0, "HTTP calls/s, bearer / SDK-auth server"),
    ("http_on_token", "http_sdk_baseline", 1.0, "HTTP calls/s, token argument / SDK-auth server"),
    ("stdio_pg_token", "stdio_on_token", 0.8, "PostgreSQL/SQLite calls/s (stdio)"),
    ("http_pg_bearer", "http_on_bearer", 0.8, "PostgreSQL/SQLite calls/s (HTTP)"),
    ("stdio_on_token", "stdio_quiet_token", 0.97, "stdio calls/s, audit on / off (no metrics)"),
    ("http_on_bearer", "http_quiet_bearer", 0.97, "HTTP calls/s, audit + metrics on / off"),
]
# What the "on / off" rows switch (the quiet servers' environment), and what they measure.
QUIET_SWITCHES = {"SESSION_BUDDY_AUDIT": "false", "SESSION_BUDDY_METRICS": "false"}
NOTES = {
    "stdio_on_token_vs_stdio_quiet_token": (
        "over stdio only the audit trail applies: metrics (/metrics, the per-tool wrapper, "
        "the decision counters) exist on HTTP servers only"
    ),
    "http_on_bearer_vs_http_quiet_bearer": (
        "audit trail and metrics (/metrics, the per-tool wrapper, the decision counters) "
        "on by default vs SESSION_BUDDY_AUDIT=false, SESSION_BUDDY_METRICS=false"
    ),
}
DESCRIPTIONS = {
    "stdio_off": "stdio, auth off",
    "stdio_on_token": "stdio, auth on, token argument",
    "http_off": "HTTP, auth off",
    "http_on_token": "HTTP, auth on, token argument",
    "http_on_bearer": "HTTP, auth on, bearer header",
    "http_sdk_baseline": "HTTP, SDK AuthSettings + PyJWT verifier, bearer header",
    "stdio_pg_token": "stdio, auth on, token argument, PostgreSQL",
    "http_pg_bearer": "HTTP, auth on, bearer header, PostgreSQL",
    "stdio_quiet_token": "stdio, auth on, token argument, audit off",
    "http_quiet_bearer": "HTTP, auth on, bearer header, audit + metrics off",
}


@dataclass
class Configuration:
    name: str
    client: Client
    arguments: dict[str, Any]
    seconds: list[float] = field(default_factory=list)  # one batch duration per round
    latencies: list[float] = field(default_factory=list)  # every call, in seconds
    data_dir: Path | None = None  # its server's (SQLite) data dir
    metrics_url: str | None = None  # its HTTP server's /metrics
    # What its server recorded, read after the rounds (see ``check_recorders``).
    recorded: dict[str, int | None] = field(default_factory=dict)
    calls_made: int = 0  # successful tool calls, warm-up and setup included
    tool: str = TOOL  # what it calls

    @property
    def backend(self) -> str:
        return "postgresql" if "_pg_" in self.name else "sqlite"


@dataclass
class Setup:
    root: Path
    repo: Path
    secret: str
    token: str
    postgres: BenchPostgres
    logs: list[TextIO] = field(default_factory=list)

    def data_dir(self, name: str) -> Path:
        path = self.root / "data" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(
        self, data_dir: Path, *, auth: bool, postgres: bool = False, quiet: bool = False
    ) -> dict[str, str]:
        """A server's environment; with ``postgres``, a new database named for the data dir;
        ``quiet``: audit and metrics switched off (:data:`QUIET_SWITCHES`)."""
        settings = dict(QUIET_SWITCHES) if quiet else {}
        if postgres:
            settings["SESSION_BUDDY_DATABASE_URL"] = self.postgres.database_url(data_dir.name)
        return server_environment(data_dir, self.secret if auth else None, **settings)

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.stderr"

    def log(self, name: str) -> TextIO:
        handle = self.log_path(name).open("w", encoding="utf-8")
        self.logs.append(handle)
        return handle


def stdio_client(
    setup: Setup, name: str, *, auth: bool, postgres: bool = False, quiet: bool = False
) -> Client:
    env = setup.env(setup.data_dir(name), auth=auth, postgres=postgres, quiet=quiet)
    return mcp_stdio(env, setup.root, setup.log(name), "--transport", "stdio", *QUIET)


async def call(config: Configuration) -> Any:
    result = await config.client.call_tool(config.tool, config.arguments)
    if result.is_error:
        raise RuntimeError(f"{config.name}: {config.tool} failed: {result.content}")
    config.calls_made += 1
    return result


RECORD_DEADLINE = 10.0  # seconds for the audit writers (0.5 s batches) to catch up


def audited_calls(data_dir: Path) -> int:
    """Allowed ``session_status`` decisions in the audit trail of the server on ``data_dir``."""
    database = SqliteDatabase(data_dir / "session-buddy.db", create=False).open()
    try:
        rows = database.query(
            "SELECT COALESCE(SUM(count), 0) FROM audit_events "
            "WHERE result = 'allowed' AND action = ?",
            (TOOL,),
        )
    finally:
        database.close()
    return int(rows[0][0])


async def metered_calls(url: str) -> int | None:
    """``session_status`` calls that ended ``ok`` on the server's ``/metrics`` (None: no page)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if (
                sample.name == "session_buddy_tool_calls_total"
                and sample.labels.get("tool") == TOOL
                and sample.labels.get("outcome") == "ok"
            ):
                total += sample.value
    return int(total)


async def check_recorders(configs: list[Configuration]) -> None:
    """The audit + metrics rows compare what they say they compare.

    After two audit batch intervals, a server with the defaults must have audited every
    call its configuration made (its writer is given :data:`RECORD_DEADLINE` to catch up)
    and, over HTTP, counted each on ``/metrics``; a quiet one (:data:`QUIET_SWITCHES`)
    must have audited nothing and serve no ``/metrics``. Raises ``RuntimeError`` otherwise.
    Configurations without a ``data_dir`` (not SQLite auth-on servers) are not checked.
    """
    await anyio.sleep(2 * FLUSH_SECONDS)
    deadline = time.monotonic() + RECORD_DEADLINE
    for config in configs:
        if config.data_dir is None:
            continue
        quiet = "_quiet_" in config.name
        expected = 0 if quiet else config.calls_made
        audited = audited_calls(config.data_dir)
        while audited < expected and time.monotonic() < deadline:
            await anyio.sleep(0.2)
            audited = audited_calls(config.data_dir)
        if audited != expected:
            raise RuntimeError(f"{config.name}: {audited} calls audited, {expected} expected")
        config.recorded = {"audited_calls": audited}
        if config.metrics_url is not None:
            metered = await metered_calls(config.metrics_url)
            if metered != (None if quiet else expected):
                raise RuntimeError(
                    f"{config.name}: /metrics counted {metered} calls, "
                    + ("no /metrics expected" if quiet else f"{expected} expected")
                )
            config.recorded["metered_calls"] = metered


async def open_configurations(setup: Setup, stack: AsyncExitStack) -> list[Configuration]:
    repo = str(setup.repo)
    token = setup.token
    enter: Callable[[Any], Awaitable[Client]] = stack.enter_async_context

    progress(
        "e2e: starting servers (stdio ×4, HTTP ×5, SDK baseline; 2 on PostgreSQL, "
        "2 with audit + metrics off)"
    )
    stdio_off = await enter(stdio_client(setup, "stdio_off", auth=False))
    stdio_on = await enter(stdio_client(setup, "stdio_on", auth=True))
    stdio_pg = await enter(stdio_client(setup, "stdio_pg", auth=True, postgres=True))
    stdio_quiet = await enter(stdio_client(setup, "stdio_quiet", auth=True, quiet=True))

    def serve(
        name: str,
        *,
        auth: bool,
        cwd: Path = setup.root,
        args: Sequence[str] = QUIET,
        command: Sequence[str] = SERVE_HTTP,
        postgres: bool = False,
        quiet: bool = False,
    ) -> ServerProcess:
        env = setup.env(setup.data_dir(name), auth=auth, postgres=postgres, quiet=quiet)
        log_path = setup.log_path(name)
        server = launch_http_server(
            env, cwd, log_path=log_path, args=args, command=command, startup_timeout=STARTUP_TIMEOUT
        )
        return stack.enter_context(server)

    off_server = serve("http_off", auth=False)
    # One server per configuration: a server that has just answered the previous call
    # answers faster (its process is awake, its caches warm), so two configurations
    # sharing a server would favour whichever follows the other in the rotation.
    token_server = serve("http_on_token", auth=True)
    bearer_server = serve("http_on_bearer", auth=True)
    pg_server = serve("http_pg", auth=True, postgres=True)
    quiet_server = serve("http_quiet", auth=True, quiet=True)
    baseline_dir = setup.data_dir("http_sdk_baseline")
    SessionService(SqliteDatabase(baseline_dir / "session-buddy.db").open()).start(
        Principal(user_id=USER, authenticated=True), repo
    )
    baseline_server = serve(
        "http_sdk_baseline",
        auth=True,
        cwd=REPO_ROOT,
        args=("--data-dir", str(baseline_dir)),
        command=BASELINE,
    )
    http_off = await enter(mcp_http(off_server.url))
    http_token = await enter(mcp_http(token_server.url))
    http_bearer = await enter(mcp_http(bearer_server.url, bearer=token))
    baseline = await enter(mcp_http(baseline_server.url, bearer=token))
    http_pg = await enter(mcp_http(pg_server.url, bearer=token))
    http_quiet = await enter(mcp_http(quiet_server.url, bearer=token))

    def metrics_url(server: ServerProcess) -> str:
        return f"{server.base_url}/metrics"

    configs = [
        Configuration("stdio_off", stdio_off, {"working_directory": repo}),
        Configuration(
            "stdio_on_token",
            stdio_on,
            {"working_directory": repo, "token": token},
            data_dir=setup.data_dir("stdio_on"),
        ),
        Configuration("http_off", http_off, {"working_directory": repo}),
        Configuration(
            "http_on_token",
            http_token,
            {"working_directory": repo, "token": token},
            data_dir=setup.data_dir("http_on_token"),
            metrics_url=metrics_url(token_server),
        ),
        Configuration(
            "http_on_bearer",
            http_bearer,
            {"working_directory": repo},
            data_dir=setup.data_dir("http_on_bearer"),
            metrics_url=metrics_url(bearer_server),
        ),
        Configuration("http_sdk_baseline", baseline, {"working_directory": repo}),
        Configuration("stdio_pg_token", stdio_pg, {"working_directory": repo, "token": token}),
        Configuration("http_pg_bearer", http_pg, {"working_directory": repo}),
        Configuration(
            "stdio_quiet_token",
            stdio_quiet,
            {"working_directory": repo, "token": token},
            data_dir=setup.data_dir("stdio_quiet"),
        ),
        Configuration(
            "http_quiet_bearer",
            http_quiet,
            {"working_directory": repo},
            data_dir=setup.data_dir("http_quiet"),
            metrics_url=metrics_url(quiet_server),
        ),
    ]
    # A session per server (its caller's), so session_status reads a real row.
    for config in configs:
        if config.name != "http_sdk_baseline":
            started = await config.client.call_tool("start_session", config.arguments)
            if started.is_error:
                raise RuntimeError(f"{config.name}: start_session failed: {started.content}")
        status = await call(config)
        if not (status.structured_content or {}).get("active"):
            raise RuntimeError(f"{config.name}: no active session: {status.content}")
    return configs


async def measure(profile: Profile, configs: list[Configuration], part: str = PART) -> None:
    """Rounds of ``e2e_calls`` sequential calls per configuration, interleaved call by call.

    Configurations compared with each other (the stdio ones; the HTTP ones) take
    turns, one call each, in an order rotated at every turn: a burst of load from
    elsewhere on the machine then hits both sides of a ratio alike. A configuration's
    time in a round is the sum of its calls' latencies. The client's own garbage
    collector (measuring apparatus, not what is measured) runs between rounds only.
    """
    calls, rounds, warmup = profile.e2e_calls, profile.e2e_rounds, 1
    groups = [
        group
        for group in (
            [c for c in configs if c.name.startswith("stdio")],
            [c for c in configs if c.name.startswith("http")],
        )
        if group
    ]
    progress(
        f"{part}: {rounds} rounds (+{warmup} warm-up) × {calls} calls × {len(configs)} configs"
    )
    clock = time.perf_counter
    for number in range(warmup + rounds):
        gc.collect()
        gc.disable()
        try:
            await _round(number, warmup, calls, groups, clock)
        finally:
            gc.enable()


async def _round(
    number: int,
    warmup: int,
    calls: int,
    groups: list[list[Configuration]],
    clock: Callable[[], float],
) -> None:
    for group in groups if number % 2 else groups[::-1]:
        spent = [0.0] * len(group)
        latencies: list[list[float]] = [[] for _ in group]
        with anyio.fail_after(BATCH_TIMEOUT):
            for turn in range(calls):
                shift = (turn + number) % len(group)
                for index in [*range(shift, len(group)), *range(shift)]:
                    start = clock()
                    await call(group[index])
                    elapsed = clock() - start
                    spent[index] += elapsed
                    latencies[index].append(elapsed)
        if number >= warmup:
            for index, config in enumerate(group):
                config.seconds.append(spent[index])
                config.latencies += latencies[index]


def rows_for(profile: Profile, configs: list[Configuration]) -> list[Row]:
    by_name = {config.name: config for config in configs}
    calls = profile.e2e_calls

    def rate(config: Configuration) -> float:
        return calls / median(config.seconds)

    rows: list[Row] = []
    for name, reference, target, what in COMPARISONS:
        mine, ref = by_name[name], by_name[reference]
        per_round = [b / a for a, b in zip(mine.seconds, ref.seconds, strict=True)]
        row_name = f"{name}_vs_{reference}"
        details: dict[str, Any] = {
            "absolute": f"{rate(mine):.0f} vs {rate(ref):.0f} calls/s",
            "ratio_per_round": [round(r, 4) for r in per_round],
        }
        if row_name in NOTES:
            details["note"] = NOTES[row_name]
            details["recorded"] = {name: mine.recorded, reference: ref.recorded}
        rows.append(
            Row(PART, row_name, what, median(per_round), op=">=", target=target, details=details)
        )
    for config in configs:
        lat = config.latencies
        rows.append(
            Row(
                PART,
                f"{config.name}_calls_per_s",
                f"{DESCRIPTIONS[config.name]}: calls/s",
                rate(config),
                unit="calls/s",
                details={
                    "absolute": (
                        f"p50 {percentile(lat, 0.5) * 1000:.2f} ms, "
                        f"p99 {percentile(lat, 0.99) * 1000:.2f} ms"
                    ),
                    "p50_ms": round(percentile(lat, 0.5) * 1000, 3),
                    "p99_ms": round(percentile(lat, 0.99) * 1000, 3),
                    "calls_per_s_per_round": [round(calls / s, 1) for s in config.seconds],
                    "batch_seconds": spread(config.seconds),
                    "calls": len(lat),
                    "backend": config.backend,
                    **({"recorded": config.recorded} if config.recorded else {}),
                },
            )
        )
    return rows


async def _run(profile: Profile, setup: Setup) -> list[Row]:
    async with AsyncExitStack() as stack:
        configs = await open_configurations(setup, stack)
        await measure(profile, configs)
        await check_recorders(configs)
        return rows_for(profile, configs)


def run(profile: Profile) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="sb-bench-e2e-") as tmp:
        root = Path(tmp)
        secret = new_secret()
        token = mint(secret, USER, lifetime=4 * 3600)
        progress("e2e: starting PostgreSQL")
        with bench_postgres() as postgres:
            repo = make_git_repo(root / "project", "bench-project")
            setup = Setup(root, repo, secret, token, postgres)
            try:
                return anyio.run(_run, profile, setup)
            finally:
                for handle in setup.logs:
                    handle.close()
