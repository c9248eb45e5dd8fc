"""Part: HTTP tool calls/s of a stateless server against one with MCP sessions.

The real server (``python -m session_buddy serve --transport http``, auth on, bearer
header, SQLite) driven by the official MCP client, calling ``whoami`` (what the transport
costs: the tool itself reads nothing) and ``session_status`` (a tool with its database
work, as the e2e part calls it), in each of the client's two protocol generations:

* **handshake** — ``mode="legacy"``: the 2025-11-25 initialize handshake, what Claude
  Code and every client of that era speak; with sessions, each POST goes through the
  session's long-lived server task and answers as an SSE stream;
* **2026-07-28** — the mcp 2.3 client's default (``mode="auto"``): every request carries
  its own ``_meta``, and the SDK answers it on its own whatever the server's mode.

Servers, one per configuration (as in the e2e part), each answering in one of the two
formats the SDK offers (:mod:`benchmarks.answer_format`): ``sessions_json`` (the SQLite
default, ``SESSION_BUDDY_STATELESS_HTTP=false``, one JSON body per answer: what ships),
``stateless_json`` (``=true``: what ships with PostgreSQL), and for ``whoami``
(``…_whoami``) those two plus ``sessions_sse`` and ``stateless_sse``: an SSE stream per
answer, the MCP SDK's default, which this server sent in session mode before.

The issue's target (≥ 1.4× for handshake clients on ``whoami``) was set against session
mode as the SDK serves it (SSE), where a handshake client's every call opens an SSE stream
— and the official Python client a new TCP connection. Answering JSON in session mode too
gives those clients the same gain without giving up sessions, so two rows say it: stateless
JSON against session-mode SSE (the issue's comparison and its target; for 2026-07-28
clients, no loss: ≥ 0.97×), and stateless JSON against session mode as it ships now (JSON:
context, the two within a few per cent); ``session_status`` shows how much of it a tool's
own database work leaves.

Each ``whoami`` comparison is made twice, as the issue measured it: one caller
(configurations taking turns call by call, ``benchmarks.e2e.measure``) and 8 concurrent
callers, each its own official client and MCP session (configurations taking turns batch
by batch, :func:`benchmarks.overhead.concurrent_rounds`); ratios per round, then the
median. Each server's CPU time (user + system, all threads) over the one-caller rounds,
per call, is reported beside the calls/s: on a shared machine it moves less than the wall
clock does.
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from mcp.client import Client

from benchmarks import overhead
from benchmarks.e2e import QUIET, STARTUP_TIMEOUT, USER, Configuration, call, measure
from benchmarks.harness import Profile, Row, median, progress, spread
from benchmarks.overhead import GENERATIONS, LABELS
from testkit.environment import new_secret, server_environment
from testkit.figures import percentile
from testkit.git import make_git_repo
from testkit.mcp import http_transport
from testkit.processes import REPO_ROOT, cpu_seconds
from testkit.server import SERVE_HTTP, launch_http_server
from testkit.tokens import mint

PART = "stateless"
ANSWER_FORMAT = (sys.executable, "-m", "benchmarks.answer_format")
STATELESS = {"SESSION_BUDDY_STATELESS_HTTP": "true"}
SESSIONS = {"SESSION_BUDDY_STATELESS_HTTP": "false"}
SERVERS: dict[str, tuple[dict[str, str], str]] = {
    # name -> (settings, answer format, through benchmarks.answer_format)
    "sessions_json": (SESSIONS, "json"),
    "stateless_json": (STATELESS, "json"),
    "sessions_json_whoami": (SESSIONS, "json"),
    "stateless_json_whoami": (STATELESS, "json"),
    "sessions_sse_whoami": (SESSIONS, "sse"),
    "stateless_sse_whoami": (STATELESS, "sse"),
}
WHOAMI_SUFFIX = "_whoami"  # servers whose client calls whoami instead of session_status
# (configuration, its reference, target or None for context, what)
COMPARISONS: list[tuple[str, str, float | None, str]] = [
    (
        "stateless_json_whoami",
        "sessions_sse_whoami",
        1.4,
        "calls/s, whoami: stateless (JSON) / session mode as the SDK serves it (SSE)",
    ),
    (
        "stateless_json_whoami",
        "sessions_json_whoami",
        None,  # context: both modes as shipped, within a few per cent either way
        "calls/s, whoami: stateless / session mode, both as shipped (JSON)",
    ),
    (
        "sessions_json_whoami",
        "sessions_sse_whoami",
        None,
        "calls/s, whoami: session mode, JSON / SSE answers",
    ),
    (
        "stateless_json_whoami",
        "stateless_sse_whoami",
        None,
        "calls/s, whoami: stateless, JSON / SSE answers",
    ),
    (
        "stateless_json",
        "sessions_json",
        None,  # context: the SDK's per-request transport against a tool's database work
        "calls/s, session_status (with its database work): stateless / session mode (JSON)",
    ),
]
TARGETS = {  # 2026-07-28 clients are stateless on the wire anyway: no gain, and no loss
    ("stateless_json_whoami", "sessions_sse_whoami", "2026"): 0.97,
}


def name_of(server: str, generation: str) -> str:
    return f"http_{server}_{generation}"  # "http_": one group in benchmarks.e2e.measure


@dataclass
class Measured:
    """The configurations, and each one's server process id."""

    configs: list[Configuration]
    pids: dict[str, int]
    cpu_ms_per_call: dict[str, float] = field(default_factory=dict)
    # the whoami servers again, 8 concurrent callers each (same names)
    crowds: dict[str, overhead.Configuration] = field(default_factory=dict)


async def open_configurations(
    root: Path, secret: str, token: str, repo: Path, stack: AsyncExitStack
) -> Measured:
    progress(f"{PART}: starting {len(SERVERS) * len(GENERATIONS)} HTTP servers")
    measured = Measured([], {})
    for generation, (mode, version) in GENERATIONS.items():
        for server_name, (settings, answer_format) in SERVERS.items():
            name = name_of(server_name, generation)
            data_dir = root / "data" / name
            data_dir.mkdir(parents=True)
            # the same CLI as after python -m session_buddy, its answer format set first
            command = (*ANSWER_FORMAT, answer_format, *SERVE_HTTP[3:])
            server = stack.enter_context(
                launch_http_server(
                    server_environment(data_dir, secret, **settings),
                    REPO_ROOT,  # benchmarks.answer_format is imported from there
                    log_path=root / f"{name}.log",
                    args=QUIET,
                    command=command,
                    startup_timeout=STARTUP_TIMEOUT,
                )
            )
            client = await stack.enter_async_context(
                Client(http_transport(server.url, bearer=token), mode=mode)
            )
            if client.protocol_version != version:
                raise RuntimeError(f"{name}: negotiated {client.protocol_version}, not {version}")
            if server_name.endswith(WHOAMI_SUFFIX):
                config = Configuration(name, client, {}, tool="whoami")
                crowd = overhead.Configuration(name, server.process.pid)
                for _ in range(overhead.CONCURRENT):
                    caller = await overhead.official_client(server.url, token, generation, stack)
                    crowd.callers.append(overhead.official_caller(name, caller))
                measured.crowds[name] = crowd
            else:
                config = Configuration(name, client, {"working_directory": str(repo)})
                started = await client.call_tool("start_session", config.arguments)
                if started.is_error:
                    raise RuntimeError(f"{name}: start_session failed: {started.content}")
            await call(config)
            measured.configs.append(config)
            measured.pids[name] = server.process.pid
    return measured


def _comparison(
    name: str,
    what: str,
    mine: list[float],
    reference: list[float],
    target: float | None,
    absolute: str,
    **details: str,
) -> Row:
    """Calls/s of ``mine`` over ``reference``: per round (seconds, the same calls), then
    the median; a target makes it ``>=`` it, none makes it context."""
    per_round = [b / a for a, b in zip(mine, reference, strict=True)]
    return Row(
        PART,
        name,
        what,
        median(per_round),
        op=None if target is None else ">=",
        target=target,
        details={
            "absolute": absolute,
            "ratio_per_round": [round(r, 4) for r in per_round],
            **details,
        },
    )


def rows_for(profile: Profile, measured: Measured) -> list[Row]:
    configs = measured.configs
    by_name = {config.name: config for config in configs}
    cpu = measured.cpu_ms_per_call
    calls = profile.e2e_calls

    def rate(config: Configuration) -> float:
        return calls / median(config.seconds)

    crowds = measured.crowds
    crowd_calls = overhead.per_caller(profile) * overhead.CONCURRENT

    rows: list[Row] = []
    for generation in GENERATIONS:
        for mine_name, reference_name, target, what in COMPARISONS:
            mine = by_name[name_of(mine_name, generation)]
            ref = by_name[name_of(reference_name, generation)]
            target = TARGETS.get((mine_name, reference_name, generation), target)
            name = f"{mine_name}_vs_{reference_name}_{generation}"
            label = f"{what}, {LABELS[generation]}"
            rows.append(
                _comparison(
                    f"{name}_sequential", f"{label}, one caller", mine.seconds, ref.seconds,
                    target, f"{rate(mine):.0f} vs {rate(ref):.0f} calls/s",
                    server_cpu_ms_per_call=f"{cpu[mine.name]:.2f} vs {cpu[ref.name]:.2f}",
                )
            )  # fmt: skip
            if mine.name not in crowds or ref.name not in crowds:
                continue  # session_status: one caller only
            mine_crowd, ref_crowd = crowds[mine.name].concurrent, crowds[ref.name].concurrent
            mine_rate, ref_rate = (crowd_calls / median(c) for c in (mine_crowd, ref_crowd))
            rows.append(
                _comparison(
                    f"{name}_concurrent", f"{label}, {overhead.CONCURRENT} concurrent callers",
                    mine_crowd, ref_crowd, target, f"{mine_rate:.0f} vs {ref_rate:.0f} calls/s",
                )
            )  # fmt: skip
    for config in configs:
        lat = config.latencies
        server_name, _, generation = config.name.removeprefix("http_").rpartition("_")
        rows.append(
            Row(
                PART,
                f"{config.name}_calls_per_s",
                f"HTTP, {server_name.replace('_', ' ')}, {LABELS[generation]}: calls/s",
                rate(config),
                unit="calls/s",
                details={
                    "absolute": (
                        f"p50 {percentile(lat, 0.5) * 1000:.2f} ms, "
                        f"p99 {percentile(lat, 0.99) * 1000:.2f} ms, "
                        f"server CPU {cpu[config.name]:.2f} ms/call"
                    ),
                    "server_cpu_ms_per_call": round(cpu[config.name], 3),
                    "p50_ms": round(percentile(lat, 0.5) * 1000, 3),
                    "p99_ms": round(percentile(lat, 0.99) * 1000, 3),
                    "calls_per_s_per_round": [round(calls / s, 1) for s in config.seconds],
                    "batch_seconds": spread(config.seconds),
                    "calls": len(lat),
                },
            )
        )
    return rows


async def _run(profile: Profile, root: Path, secret: str, token: str, repo: Path) -> list[Row]:
    async with AsyncExitStack() as stack:
        measured = await open_configurations(root, secret, token, repo, stack)
        before = {name: cpu_seconds(pid) for name, pid in measured.pids.items()}
        await measure(profile, measured.configs, PART)
        for config in measured.configs:
            spent = cpu_seconds(measured.pids[config.name]) - before[config.name]
            calls = profile.e2e_calls * (profile.e2e_rounds + 1)  # measure's warm-up round too
            measured.cpu_ms_per_call[config.name] = 1000 * spent / calls
        await overhead.concurrent_rounds(profile, list(measured.crowds.values()), PART)
        return rows_for(profile, measured)


def run(profile: Profile) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="sb-bench-stateless-") as tmp:
        root = Path(tmp)
        secret = new_secret()
        token = mint(secret, USER, lifetime=4 * 3600)
        repo = make_git_repo(root / "project", "bench-project")
        return anyio.run(_run, profile, root, secret, token, repo)
