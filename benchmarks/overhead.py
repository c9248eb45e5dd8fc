"""Part: what a tool call costs on our server against FastMCP, a bare endpoint, and the GC.

The real server (``python -m session_buddy serve --transport http``, auth on, bearer
header, SQLite, so MCP sessions for the clients that open them) answers ``whoami``; so do

* **FastMCP** 4.1.6 with its ``JWTVerifier`` (HS256) on the same tool with the same
  answer (:mod:`benchmarks.fastmcp_server`), driven like ours by the official MCP client;
* a **bare Starlette endpoint** answering every POST with one fixed JSON body
  (:mod:`benchmarks.bare_endpoint`). No MCP client can talk to it, so for this comparison
  both it and a server of ours of its own get the same raw HTTP requests from one
  ``httpx2`` client: the bytes the official client sends for a ``whoami`` call (after
  its handshake, for handshake clients), the answer checked for a result that is no
  error;
* our server with CPython's garbage collector as it comes (:mod:`benchmarks.gc_mode`
  ``stdlib``), against the shipped one (``gc.freeze()`` after start-up:
  :mod:`session_buddy.collector`), for the latency tail under 8 concurrent callers;
* our server on asyncio, the loop uvicorn falls back to (:mod:`benchmarks.http_stack`),
  against what ships: uvloop (which FastMCP and the bare endpoint, in the same
  environment, get as well); h11 parses HTTP for all of them.

Each in both protocol generations of the client (handshake: ``mode="legacy"``,
2025-11-25; ``2026``: its default, 2026-07-28), and two ways:

* **sequential**: one caller per configuration, configurations taking turns call by call
  (order rotated every turn; a configuration's time in a round is the sum of its calls);
* **8 concurrent callers** per configuration (each its own connection, and for handshake
  clients its own MCP session), configurations taking turns batch by batch.

Every configuration has a server process of its own (see :mod:`benchmarks.e2e`). Ratios
per round, then the median. Each server's CPU time (user + system) over all the rounds,
per call, is reported beside it; p50 and p99 are by nearest rank over every call.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from benchmarks.e2e import QUIET, STARTUP_TIMEOUT, USER
from benchmarks.harness import Profile, Row, median, progress, spread
from testkit.environment import new_secret, server_environment
from testkit.figures import percentile
from testkit.mcp import http_transport, modern_meta
from testkit.processes import REPO_ROOT, cpu_seconds
from testkit.server import SERVE_HTTP, launch_http_server
from testkit.tokens import mint

PART = "overhead"
TOOL = "whoami"
CONCURRENT = 8
BATCH_TIMEOUT = 300.0
# generation -> (the official client's mode, the protocol version it must negotiate)
GENERATIONS = {"handshake": ("legacy", "2025-11-25"), "2026": ("auto", "2026-07-28")}
LABELS = {"handshake": "handshake clients (2025-11-25)", "2026": "2026-07-28 clients"}
PYTHON = sys.executable
GC_MODE = (PYTHON, "-m", "benchmarks.gc_mode")  # then the mode, then serve's arguments
HTTP_STACK = (PYTHON, "-m", "benchmarks.http_stack")  # then the stack, then serve's arguments
# The alternative measured beside the shipped freeze: a young generation ten times
# CPython's (fewer, larger young collections), with the freeze.
GC_THRESHOLDS = "freeze:7000,10,10"
# server -> its command (--host and --port follow); each gets the same environment
SERVERS: dict[str, tuple[str, ...]] = {
    "ours": (*SERVE_HTTP, *QUIET),
    "ours_gc_stdlib": (*GC_MODE, "stdlib", *SERVE_HTTP[3:], *QUIET),
    "ours_gc_thresholds": (*GC_MODE, GC_THRESHOLDS, *SERVE_HTTP[3:], *QUIET),
    "ours_asyncio_h11": (*HTTP_STACK, "asyncio-h11", *SERVE_HTTP[3:], *QUIET),
    "fastmcp": (PYTHON, "-m", "benchmarks.fastmcp_server", *QUIET),
    "bare": (PYTHON, "-m", "benchmarks.bare_endpoint", *QUIET),
}
# configuration -> (server, generation, client: "official" MCP client or "raw" HTTP)
CONFIGURATIONS: dict[str, tuple[str, str, str]] = {
    **{f"ours_{g}": ("ours", g, "official") for g in GENERATIONS},
    **{f"fastmcp_{g}": ("fastmcp", g, "official") for g in GENERATIONS},
    **{f"raw_ours_{g}": ("ours", g, "raw") for g in GENERATIONS},
    **{f"bare_{g}": ("bare", g, "raw") for g in GENERATIONS},
    **{f"ours_asyncio_h11_{g}": ("ours_asyncio_h11", g, "official") for g in GENERATIONS},
    "ours_gc_stdlib_handshake": ("ours_gc_stdlib", "handshake", "official"),
    "ours_gc_thresholds_handshake": ("ours_gc_thresholds", "handshake", "official"),
}
# (configuration, its reference, target, what) per generation: calls/s of the first over
# the second, per round, sequential and with 8 concurrent callers.
COMPARISONS: list[tuple[str, str, float | None, str]] = [
    ("ours", "fastmcp", 1.2, "calls/s, ours / FastMCP + JWTVerifier (official client)"),
    ("raw_ours", "bare", 0.5, "calls/s, ours / bare Starlette endpoint (raw HTTP)"),
    (
        "ours",
        "ours_asyncio_h11",
        None,  # context: what uvloop gives
        "calls/s, ours (uvloop) / ours on asyncio",
    ),
]
TAILS = {  # configuration -> what its p99/p50 row says it is
    "ours_handshake": "shipped GC settings (gc.freeze() after start-up)",
    "ours_gc_stdlib_handshake": "CPython's GC as it comes",
    "ours_gc_thresholds_handshake": f"gc.freeze() and thresholds {GC_THRESHOLDS[7:]}",
    "ours_2026": "shipped GC settings (gc.freeze() after start-up)",
    "fastmcp_handshake": "FastMCP",
    "bare_handshake": "bare Starlette endpoint (the machine's own tail), raw client",
}
TAIL_TARGET = 3.0  # p99 ≤ 3 × p50 with 8 concurrent callers


@dataclass
class Configuration:
    """One configuration: its callers (the first is the sequential one) and what it measured."""

    name: str
    pid: int
    callers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    sequential: list[float] = field(default_factory=list)  # seconds per round
    sequential_latencies: list[float] = field(default_factory=list)
    concurrent: list[float] = field(default_factory=list)  # seconds per batch
    concurrent_latencies: list[float] = field(default_factory=list)
    calls_made: int = 0
    cpu_ms_per_call: float = 0.0


def official_caller(name: str, client: Client) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        try:
            result = await client.call_tool(TOOL, {})
        except MCPError as exc:
            raise RuntimeError(f"{name}: {TOOL} failed: {exc.error}") from exc
        if result.is_error:
            raise RuntimeError(f"{name}: {TOOL} failed: {result.content}")

    return call


async def official_client(url: str, token: str, generation: str, stack: AsyncExitStack) -> Client:
    mode, version = GENERATIONS[generation]
    client = await stack.enter_async_context(Client(http_transport(url, bearer=token), mode=mode))
    if client.protocol_version != version:
        raise RuntimeError(f"{url}: negotiated {client.protocol_version}, not {version}")
    return client


# The requests the official client (mcp 2.3) sends, byte for byte but for the id.
_META = modern_meta("mcp", "0.1.0")
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def raw_caller(
    name: str, url: str, token: str, generation: str, stack: AsyncExitStack
) -> Callable[[], Awaitable[None]]:
    """A caller sending the official client's ``whoami`` request with ``httpx2``."""
    http = await stack.enter_async_context(
        httpx2.AsyncClient(
            headers={"authorization": f"Bearer {token}", **ACCEPT},
            timeout=httpx2.Timeout(60.0),
            trust_env=False,
        )
    )
    call: dict[str, Any] = {"name": TOOL, "arguments": {}}
    if generation == "2026":
        headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call"}
        headers["mcp-name"] = TOOL
        call["_meta"] = _META
    else:  # the handshake, as the client makes it; a server without sessions ignores it
        version = GENERATIONS[generation][1]
        opened = await http.post(
            url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "mcp", "version": "0.1.0"},
                },
            },
        )
        opened.raise_for_status()
        headers = {"mcp-protocol-version": version}
        if "mcp-session-id" in opened.headers:
            headers["mcp-session-id"] = opened.headers["mcp-session-id"]
        notified = await http.post(
            url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        )
        notified.raise_for_status()
    ids = iter(range(2, 1 << 62))

    async def send() -> None:
        body = {"jsonrpc": "2.0", "id": next(ids), "method": "tools/call", "params": call}
        response = await http.post(url, json=body, headers=headers)
        if response.status_code != 200 or b'"isError":false' not in response.content:
            raise RuntimeError(f"{name}: {response.status_code} {response.content[:300]!r}")

    return send


async def open_configurations(
    root: Path, secret: str, token: str, stack: AsyncExitStack
) -> list[Configuration]:
    progress(f"{PART}: starting {len(CONFIGURATIONS)} HTTP servers")
    servers = {}
    for name, (server_name, _, _) in CONFIGURATIONS.items():
        data_dir = root / "data" / name
        data_dir.mkdir(parents=True)
        servers[name] = launch_http_server(  # all start at once; each is waited for below
            server_environment(data_dir, secret),
            REPO_ROOT,  # the benchmarks package is imported from there
            log_path=root / f"{name}.log",
            command=SERVERS[server_name],
            startup_timeout=STARTUP_TIMEOUT,
        )
        stack.callback(servers[name].stop)
    configs = []
    for name, (_, generation, kind) in CONFIGURATIONS.items():
        server = stack.enter_context(servers[name])
        config = Configuration(name, server.process.pid)
        for _ in range(CONCURRENT):
            if kind == "official":
                client = await official_client(server.url, token, generation, stack)
                config.callers.append(official_caller(name, client))
            else:
                config.callers.append(await raw_caller(name, server.url, token, generation, stack))
        for caller in config.callers:  # each connection warm, each client's tool list read
            await caller()
            config.calls_made += 1
        configs.append(config)
    return configs


def per_caller(profile: Profile) -> int:
    """Calls each concurrent caller makes per batch (eight make twice a sequential round's)."""
    return max(5, profile.e2e_calls // 4)


async def sequential_rounds(profile: Profile, configs: list[Configuration]) -> None:
    calls, rounds, warmup = profile.e2e_calls, profile.e2e_rounds, 1
    progress(f"{PART}: sequential, {rounds} rounds (+{warmup}) × {calls} calls × {len(configs)}")
    clock = time.perf_counter
    for number in range(warmup + rounds):
        spent = [0.0] * len(configs)
        latencies: list[list[float]] = [[] for _ in configs]
        gc.collect()
        gc.disable()  # the client's collector is apparatus: it runs between rounds only
        try:
            with anyio.fail_after(BATCH_TIMEOUT):
                for turn in range(calls):
                    shift = (turn + number) % len(configs)
                    for index in [*range(shift, len(configs)), *range(shift)]:
                        start = clock()
                        await configs[index].callers[0]()
                        elapsed = clock() - start
                        spent[index] += elapsed
                        latencies[index].append(elapsed)
        finally:
            gc.enable()
        for index, config in enumerate(configs):
            config.calls_made += calls
            if number >= warmup:
                config.sequential.append(spent[index])
                config.sequential_latencies += latencies[index]


async def concurrent_rounds(
    profile: Profile, configs: list[Configuration], part: str = PART
) -> None:
    calls, rounds, warmup = per_caller(profile), profile.e2e_rounds, 1
    progress(
        f"{part}: {CONCURRENT} concurrent callers, {rounds} rounds (+{warmup}) × "
        f"{calls} calls each × {len(configs)}"
    )
    clock = time.perf_counter
    for number in range(warmup + rounds):
        shift = number % len(configs)
        for config in configs[shift:] + configs[:shift]:
            latencies: list[float] = []

            async def caller(
                call: Callable[[], Awaitable[None]], latencies: list[float] = latencies
            ) -> None:
                for _ in range(calls):
                    start = clock()
                    await call()
                    latencies.append(clock() - start)

            gc.collect()
            gc.disable()
            try:
                with anyio.fail_after(BATCH_TIMEOUT):
                    start = clock()
                    async with anyio.create_task_group() as group:
                        for call in config.callers:
                            group.start_soon(caller, call)
                    elapsed = clock() - start
            finally:
                gc.enable()
            config.calls_made += calls * len(config.callers)
            if number >= warmup:
                config.concurrent.append(elapsed)
                config.concurrent_latencies += latencies


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def tail(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) in seconds."""
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


def rows_for(profile: Profile, configs: list[Configuration]) -> list[Row]:
    by_name = {config.name: config for config in configs}
    sequential_calls = profile.e2e_calls
    concurrent_calls = per_caller(profile) * CONCURRENT
    rows: list[Row] = []
    for mine_prefix, reference_prefix, target, what in COMPARISONS:
        for generation in GENERATIONS:
            mine = by_name[f"{mine_prefix}_{generation}"]
            ref = by_name[f"{reference_prefix}_{generation}"]
            for way, label, n in (
                ("sequential", "sequential", sequential_calls),
                ("concurrent", f"{CONCURRENT} concurrent", concurrent_calls),
            ):
                mine_s, ref_s = getattr(mine, way), getattr(ref, way)
                per_round = [b / a for a, b in zip(mine_s, ref_s, strict=True)]
                rows.append(
                    Row(
                        PART,
                        f"{mine.name}_vs_{ref.name}_{way}",
                        f"HTTP {what}, {LABELS[generation]}, {label}",
                        median(per_round),
                        op=None if target is None else ">=",
                        target=target,
                        details={
                            "absolute": (
                                f"{n / median(mine_s):.0f} vs {n / median(ref_s):.0f} calls/s; "
                                f"server CPU {mine.cpu_ms_per_call:.2f} vs "
                                f"{ref.cpu_ms_per_call:.2f} ms/call"
                            ),
                            "ratio_per_round": [round(r, 4) for r in per_round],
                            "server_cpu_ms_per_call": [
                                round(mine.cpu_ms_per_call, 3),
                                round(ref.cpu_ms_per_call, 3),
                            ],
                        },
                    )
                )
    for name in TAILS:
        config = by_name[name]
        p50, p99 = tail(config.concurrent_latencies)
        shipped = name == "ours_handshake"
        collector = TAILS[name]
        generation = name.rpartition("_")[2]
        rows.append(
            Row(
                PART,
                f"{name}_p99_over_p50",
                f"p99 / p50 latency, {CONCURRENT} concurrent callers, {collector}, "
                f"{LABELS[generation]}",
                p99 / p50 if p50 else float("nan"),
                op="<=" if shipped else None,
                target=TAIL_TARGET if shipped else None,
                details={
                    "absolute": f"p50 {_ms(p50)}, p99 {_ms(p99)}",
                    "p50_ms": round(p50 * 1000, 3),
                    "p99_ms": round(p99 * 1000, 3),
                    "calls": len(config.concurrent_latencies),
                },
            )
        )
    for config in configs:
        server_name, generation, kind = CONFIGURATIONS[config.name]
        seq_p50, seq_p99 = tail(config.sequential_latencies)
        con_p50, con_p99 = tail(config.concurrent_latencies)
        rows.append(
            Row(
                PART,
                f"{config.name}_calls_per_s",
                f"HTTP {server_name.replace('_', ' ')}, {kind} client, {LABELS[generation]}: "
                f"calls/s with {CONCURRENT} concurrent callers",
                concurrent_calls / median(config.concurrent),
                unit="calls/s",
                details={
                    "absolute": (
                        f"sequential {sequential_calls / median(config.sequential):.0f} calls/s, "
                        f"p50 {_ms(seq_p50)}, p99 {_ms(seq_p99)}; {CONCURRENT} concurrent p50 "
                        f"{_ms(con_p50)}, p99 {_ms(con_p99)}; server CPU "
                        f"{config.cpu_ms_per_call:.2f} ms/call"
                    ),
                    "server_cpu_ms_per_call": round(config.cpu_ms_per_call, 3),
                    "sequential_p50_ms": round(seq_p50 * 1000, 3),
                    "sequential_p99_ms": round(seq_p99 * 1000, 3),
                    "concurrent_p50_ms": round(con_p50 * 1000, 3),
                    "concurrent_p99_ms": round(con_p99 * 1000, 3),
                    "sequential_seconds": spread(config.sequential),
                    "concurrent_seconds": spread(config.concurrent),
                    "calls": config.calls_made,
                },
            )
        )
    return rows


async def _run(profile: Profile, root: Path, secret: str, token: str) -> list[Row]:
    async with AsyncExitStack() as stack:
        configs = await open_configurations(root, secret, token, stack)
        before = {config.name: (cpu_seconds(config.pid), config.calls_made) for config in configs}
        await sequential_rounds(profile, configs)
        await concurrent_rounds(profile, configs)
        for config in configs:
            cpu_before, calls_before = before[config.name]
            spent = cpu_seconds(config.pid) - cpu_before
            config.cpu_ms_per_call = 1000 * spent / (config.calls_made - calls_before)
        return rows_for(profile, configs)


def run(profile: Profile) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="sb-bench-overhead-") as tmp:
        root = Path(tmp)
        secret = new_secret()
        token = mint(secret, USER, lifetime=4 * 3600)
        return anyio.run(_run, profile, root, secret, token)
