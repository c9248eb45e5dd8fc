"""Scenario 3: eight legitimate clients keep working while a ninth floods forged tokens.

Phase A: 8 official MCP clients (one user each) loop over checkpoint, session_status,
whoami and list_sessions for a fixed time. Phase B: the same, while ``stress.flood``
(another process, another source address) sends forged tokens as bearer headers and as
``token`` arguments as fast as it can. Bars: no forged call succeeds, no 5xx anywhere,
no legitimate call fails, the flooding client gets 429s, and the log lines the flood
causes stay bounded by the rate limits (failure log: one line per reason and client per
10 s; throttle: 20 bad credentials per client per minute reach the application).
Reported: legit p50/p99 latency with and without the flood, and their ratio.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from stress.harness import FLOOD_ADDRESS, TRACEBACK, Context, Outcome, launch_server, ready
from stress.tokens import forged_tokens
from stress.wire import call
from testkit.figures import percentile
from testkit.mcp import mcp_http
from testkit.processes import REPO_ROOT
from testkit.server import ServerProcess
from testkit.tokens import mint

TITLE = "Load with bad actors"
CLIENTS = 8
PHASE_SECONDS = 8.0
FLOOD_CONCURRENCY = 12
FORGED_TOKENS = 300
# Rate limits the product promises (session_buddy.auth.failure_log, session_buddy.auth.throttle).
FAILURE_LOG_WINDOW = 10.0
THROTTLE_LIMIT = 20
THROTTLE_WINDOW = 60.0
# Log lines one admitted (not 429) bad request may cause: access line, failure line, and
# the SDK's DEBUG lines for one request.
LINES_PER_ADMITTED_REQUEST = 12


class Legit:
    """Latencies and failures of the legitimate clients, per phase."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {"A": [], "B": []}
        self.failures: list[str] = []
        self.phase = "setup"


async def _legit_client(
    server: ServerProcess, token: str, project: Path, legit: Legit, stop: anyio.Event, n: int
) -> None:
    async with mcp_http(server.url) as client:
        started = await call(
            client, "start_session", {"working_directory": str(project), "token": token}
        )
        if started.is_error:
            legit.failures.append(f"start_session: {started.content[0]}")
            return
        step = 0
        while not stop.is_set():
            tool, arguments = [
                ("checkpoint", {"working_directory": str(project), "note": f"c{n}-{step}"}),
                ("session_status", {"working_directory": str(project)}),
                ("whoami", {}),
                ("list_sessions", {"limit": 5}),
            ][step % 4]
            step += 1
            phase = legit.phase
            t0 = time.perf_counter()
            try:
                result = await call(client, tool, {**arguments, "token": token})
            except Exception as exc:
                legit.failures.append(f"{phase} {tool}: {type(exc).__name__}: {exc}"[:160])
                continue
            elapsed = time.perf_counter() - t0
            if result.is_error:
                text = "".join(getattr(b, "text", "") for b in result.content)
                legit.failures.append(f"{phase} {tool}: {text[:120]}")
            elif phase == legit.phase and phase in legit.latencies:
                legit.latencies[phase].append(elapsed)


async def _run_flood(
    ctx: Context,
    server: ServerProcess,
    tokens: list[str],
    project: Path,
    seconds: float,
    on_start: Callable[[], None],
) -> dict[str, Any]:
    """Run ``stress.flood``; ``on_start`` is called when its first request goes out."""
    orders = {
        "url": server.url,
        "source": FLOOD_ADDRESS if ctx.addresses.usable else None,
        "seconds": seconds,
        "concurrency": FLOOD_CONCURRENCY,
        "tokens": tokens,
        "project": str(project),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BUDDY_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    process = await anyio.open_process([sys.executable, "-m", "stress.flood"], env=env, cwd=ctx.cwd)
    lines: list[bytes] = []
    err = b""
    try:
        with anyio.fail_after(seconds + 30):
            assert process.stdin is not None and process.stdout is not None
            await process.stdin.send(json.dumps(orders).encode())
            await process.stdin.aclose()
            buffer = b""
            async for chunk in process.stdout:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    if line == b"started":
                        on_start()
                    elif line:
                        lines.append(line)
            await process.wait()
            if process.stderr is not None:
                err = b"".join([chunk async for chunk in process.stderr])
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
    (ctx.logs / "flood.err").write_bytes(err)
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"flood exited {process.returncode}: {err[-300:]!r}")
    return json.loads(lines[-1])


def _lines(path: Path, start: int, end: int) -> list[str]:
    with path.open("rb") as log:
        log.seek(start)
        return log.read(end - start).decode("utf-8", "replace").splitlines()


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(3, TITLE)
    tokens = [mint(ctx.secret, f"load-{n}") for n in range(CLIENTS)]
    forged = forged_tokens(ctx.secret, FORGED_TOKENS)
    ctx.tokens.add_all(tokens + forged)
    projects = [ctx.project_dir(f"load-{n}") for n in range(CLIENTS)]
    flood_project = ctx.project_dir("flood")
    server = launch_server(ctx, "load", ctx.data_dir("load"))
    legit = Legit()
    stop = anyio.Event()
    flood: dict[str, Any] = {}
    try:
        await ready(server)
        async with anyio.create_task_group() as tg:
            for n in range(CLIENTS):
                tg.start_soon(_legit_client, server, tokens[n], projects[n], legit, stop, n)
            await anyio.sleep(1.0)  # sessions started, tool lists cached
            offsets = {"A0": server.log_path.stat().st_size}
            legit.phase = "A"
            await anyio.sleep(PHASE_SECONDS)
            legit.phase = "between"
            log_path = server.log_path
            offsets["A1"] = log_path.stat().st_size
            flood_started = time.monotonic()

            def begin_phase_b() -> None:
                nonlocal flood_started
                offsets["B0"] = log_path.stat().st_size
                flood_started = time.monotonic()
                legit.phase = "B"

            flood = await _run_flood(
                ctx, server, forged, flood_project, PHASE_SECONDS, begin_phase_b
            )
            flood_seconds = time.monotonic() - flood_started
            legit.phase = "done"
            offsets["B1"] = server.log_path.stat().st_size
            stop.set()
    finally:
        server.stop()

    lines_a = _lines(server.log_path, offsets["A0"], offsets["A1"])
    lines_b = _lines(server.log_path, offsets["B0"], offsets["B1"])
    calls_a, calls_b = len(legit.latencies["A"]), len(legit.latencies["B"])
    flood_lines = [line for line in lines_b if FLOOD_ADDRESS in line]
    failure_lines = [line for line in flood_lines if "authentication failed" in line]
    access_lines = [line for line in flood_lines if "uvicorn.access" in line]
    per_call_a = len(lines_a) / max(1, calls_a)
    excess_b = max(0, round(len(lines_b) - per_call_a * calls_b))
    windows = math.ceil(flood_seconds / THROTTLE_WINDOW)
    reasons = 6  # distinct failure reasons the forged tokens trigger, at most
    failure_bound = reasons * (math.ceil(flood_seconds / FAILURE_LOG_WINDOW) + 1)
    admitted_bound = windows * THROTTLE_LIMIT * LINES_PER_ADMITTED_REQUEST
    line_bound = failure_bound + admitted_bound

    p50_a, p99_a = percentile(legit.latencies["A"], 0.5), percentile(legit.latencies["A"], 0.99)
    p50_b, p99_b = percentile(legit.latencies["B"], 0.5), percentile(legit.latencies["B"], 0.99)
    ratio = p99_b / p99_a if p99_a else float("inf")
    got_429 = sum(v for k, v in flood["statuses"].items() if k.endswith(" 429"))
    tracebacks = server.log().count(TRACEBACK)

    outcome.figure("legit_calls", {"without_flood": calls_a, "with_flood": calls_b})
    outcome.figure(
        "legit_latency_ms",
        {
            "p50_without": round(p50_a * 1000, 1),
            "p99_without": round(p99_a * 1000, 1),
            "p50_with": round(p50_b * 1000, 1),
            "p99_with": round(p99_b * 1000, 1),
            "p99_ratio": round(ratio, 2),
        },
    )
    outcome.figure("flood", {k: v for k, v in flood.items() if k != "unauthorized_samples"})
    outcome.figure(
        "flood_log_lines",
        {
            "naming_flood_client": len(flood_lines),
            "of_which_access_log": len(access_lines),
            "of_which_auth_failure": len(failure_lines),
            "excess_lines_vs_baseline": excess_b,
            "bound": line_bound,
            "lines_per_flood_request": round(len(flood_lines) / max(1, flood["requests"]), 3),
        },
    )
    outcome.figure("server_tracebacks", tracebacks)
    outcome.bar(
        "0 unauthorized successes",
        flood["unauthorized_successes"] == 0,
        "; ".join(flood.get("unauthorized_samples", [])),
    )
    outcome.bar("0 5xx (flood)", flood["server_errors"] == 0, str(flood["server_errors"]))
    failures = legit.failures
    outcome.bar("0 failed legitimate calls", not failures, "; ".join(failures[:3]))
    outcome.bar("flooding client gets 429s", got_429 > 0, f"statuses {flood['statuses']}")
    outcome.bar(
        f"auth-failure log lines bounded by the log rate limit (≤ {failure_bound})",
        len(failure_lines) <= failure_bound,
        f"{len(failure_lines)} lines",
    )
    outcome.bar(
        f"log lines caused by the flood bounded by the rate limits (≤ {line_bound})",
        len(flood_lines) <= line_bound and excess_b <= line_bound,
        f"{len(flood_lines)} lines name the flood client ({len(access_lines)} access-log lines, "
        f"one per request) and ~{excess_b} extra lines vs baseline, for {flood['requests']} "
        "flood requests",
    )
    outcome.bar("server log: 0 tracebacks", tracebacks == 0)
    outcome.summary = (
        f"legit {calls_a}→{calls_b} calls, p99 {p99_a * 1000:.0f}→{p99_b * 1000:.0f} ms "
        f"(×{ratio:.2f}); flood {flood['requests']} req: {flood['unauthorized_successes']} "
        f"unauthorized, {got_429}×429, {flood['server_errors']} 5xx, "
        f"{len(flood_lines)} log lines (bound {line_bound})"
    )
    return outcome
