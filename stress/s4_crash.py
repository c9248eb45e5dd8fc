"""Scenario 4: ``kill -9`` the HTTP server during a burst of checkpoints, then restart.

Before the first server starts, the CLI revokes a token; during each burst it revokes
another. Four official MCP clients write checkpoints into one session as fast as they
can; at a random moment the server gets SIGKILL. It is restarted on the same data dir
(three cycles). Bars per restart: healthy within the startup limit and no traceback in
its log, ``PRAGMA integrity_check`` is ``ok``, every checkpoint whose result reached a
client before the kill is in the database, every acknowledged revocation is still
honoured ("Token has been revoked"), and the session accepts checkpoints again.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path

import anyio

from stress.harness import AUTH_FAILED, TRACEBACK, Context, Outcome, launch_server, ready, run_cli
from stress.tokens import REVOKED
from stress.wire import call
from testkit.mcp import mcp_http, text_of
from testkit.server import ServerProcess, StartFailed
from testkit.tokens import mint

TITLE = "Crash safety (kill -9)"
CYCLES = 3
BURST_CLIENTS = 4
KILL_AFTER_MIN = 0.8  # seconds into the burst; plus up to 1 s at random


def _database(data_dir: Path) -> Path:
    return data_dir / "session-buddy.db"


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _stored_notes(path: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0] for row in conn.execute("SELECT note FROM checkpoints") if row[0]}
    finally:
        conn.close()


async def _burst(
    server: ServerProcess, token: str, project: Path, tag: str, acked: list[str], stop: anyio.Event
) -> int:
    """Checkpoint from several clients until ``stop``; returns how many calls failed."""
    failed = 0

    async def client_loop(n: int) -> None:
        nonlocal failed
        try:
            async with mcp_http(server.url, timeout=5) as client:
                i = 0
                while not stop.is_set():
                    note = f"{tag}-c{n}-{i}"
                    i += 1
                    result = await call(
                        client,
                        "checkpoint",
                        {"working_directory": str(project), "note": note, "token": token},
                        timeout=5,
                    )
                    if result.is_error:
                        failed += 1
                    else:
                        acked.append(note)
        except Exception:  # the server died under us: expected once stop is near
            failed += 0 if stop.is_set() else 1

    async with anyio.create_task_group() as tg:
        for n in range(BURST_CLIENTS):
            tg.start_soon(client_loop, n)
    return failed


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(4, TITLE)
    data_dir = ctx.data_dir("crash")
    project = ctx.project_dir("crash")
    token = mint(ctx.secret, "crash-writer")
    victims = [mint(ctx.secret, f"crash-victim-{n}", unique=True) for n in range(CYCLES + 1)]
    ctx.tokens.add_all([token, *victims])
    database = _database(data_dir)
    acked: list[str] = []
    revoked: list[str] = []
    cycles: list[dict[str, object]] = []
    problems: list[str] = []

    first = await run_cli(ctx, ["token", "revoke", victims[0]], data_dir=data_dir)
    if first.returncode == 0:
        revoked.append(victims[0])
    else:
        problems.append(f"CLI revoke before start failed: {first.stderr.strip()[:120]}")

    server = launch_server(ctx, "crash-0", data_dir)
    try:
        await ready(server)
        async with mcp_http(server.url) as client:
            started = await call(
                client, "start_session", {"working_directory": str(project), "token": token}
            )
        if started.is_error:
            problems.append(f"start_session: {text_of(started)[:120]}")

        for cycle in range(CYCLES):
            stop = anyio.Event()
            kill_after = KILL_AFTER_MIN + secrets.randbelow(1000) / 1000
            acked_before = len(acked)
            revoke_result: dict[str, object] = {}

            async def revoke_during_burst(victim: str, into: dict[str, object]) -> None:
                result = await run_cli(ctx, ["token", "revoke", victim], data_dir=data_dir)
                into["rc"] = result.returncode
                into["err"] = result.stderr.strip()[:120]

            async def killer(current: ServerProcess, delay: float, stop: anyio.Event) -> None:
                await anyio.sleep(delay)
                current.kill()
                stop.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(revoke_during_burst, victims[cycle + 1], revoke_result)
                tg.start_soon(killer, server, kill_after, stop)
                failed = await _burst(server, token, project, f"k{cycle}", acked, stop)
            if revoke_result.get("rc") == 0:
                revoked.append(victims[cycle + 1])
            else:
                problems.append(f"CLI revoke during burst: {revoke_result.get('err')}")

            t0 = time.monotonic()
            server = launch_server(ctx, f"crash-{cycle + 1}", data_dir)
            try:
                await ready(server)
            except StartFailed as exc:
                problems.append(f"restart {cycle + 1}: {exc}")
                cycles.append({"cycle": cycle + 1, "restart": "FAILED"})
                break
            restart_s = time.monotonic() - t0
            integrity = _integrity(database)
            missing = [n for n in acked if n not in _stored_notes(database)]
            still_revoked = 0
            async with mcp_http(server.url) as client:
                for victim in revoked:
                    result = await call(client, "whoami", {"token": victim})
                    if text_of(result) == f"{AUTH_FAILED}: {REVOKED}":
                        still_revoked += 1
                again = await call(
                    client,
                    "checkpoint",
                    {"working_directory": str(project), "note": f"after-{cycle}", "token": token},
                )
            if not again.is_error:
                acked.append(f"after-{cycle}")
            log = server.log()
            tracebacks = log.count(TRACEBACK)
            errors = [
                line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line
            ]
            cycles.append(
                {
                    "cycle": cycle + 1,
                    "killed_after_s": round(kill_after, 2),
                    "acked_in_burst": len(acked) - acked_before - (0 if again.is_error else 1),
                    "calls_failed_before_kill": failed,
                    "restart_s": round(restart_s, 2),
                    "integrity": integrity,
                    "acked_missing": len(missing),
                    "revocations_in_force": f"{still_revoked}/{len(revoked)}",
                    "checkpoint_after_restart": "ok" if not again.is_error else text_of(again)[:80],
                    "tracebacks": tracebacks,
                    "error_lines": len(errors),
                }
            )
            if integrity != "ok":
                problems.append(f"restart {cycle + 1}: integrity_check {integrity}")
            if missing:
                problems.append(
                    f"restart {cycle + 1}: {len(missing)} acknowledged checkpoints lost"
                )
            if still_revoked != len(revoked):
                problems.append(
                    f"restart {cycle + 1}: revocations in force {still_revoked}/{len(revoked)}"
                )
            if again.is_error:
                problems.append(f"restart {cycle + 1}: checkpoint failed: {text_of(again)[:80]}")
            if errors:
                problems.append(f"restart {cycle + 1}: error logged: {errors[0][:120]}")
            if tracebacks:
                problems.append(f"restart {cycle + 1}: {tracebacks} tracebacks in the log")
    finally:
        server.stop()

    outcome.figure("cycles", cycles)
    outcome.figure("checkpoints_acknowledged", len(acked))
    outcome.figure("revocations_acknowledged", len(revoked))
    outcome.bar(f"{CYCLES} kill -9 / restart cycles completed", len(cycles) == CYCLES)
    outcome.bar(
        "restarts clean, intact, nothing acknowledged lost, revocations kept",
        not problems,
        "; ".join(problems[:4]),
    )
    outcome.summary = (
        f"{len(cycles)} kills; {len(acked)} acked checkpoints, "
        f"{sum(int(c.get('acked_missing', 0)) for c in cycles)} lost; "
        f"integrity {'/'.join(str(c.get('integrity')) for c in cycles)}; "
        f"{len(revoked)} revocations kept"
    )
    return outcome
