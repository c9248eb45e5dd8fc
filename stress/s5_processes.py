"""Scenario 5: three servers (two HTTP, one stdio) and the CLI share one data dir.

Every server keeps writing checkpoints (two clients each) while the CLI revokes tokens,
three ``session-buddy token revoke`` processes at a time. Each victim token is first
accepted by every server (so it sits in their verification caches); after the CLI says
it is revoked, each server is polled until it answers "Token has been revoked". Bars: no
client ever sees "database is locked" (or any storage error, or any failed call), and
every revocation is honoured by every server within 1 s of the CLI returning.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
from mcp import Client

from stress.harness import AUTH_FAILED, TRACEBACK, Context, Outcome, launch_server, ready, run_cli
from stress.tokens import REVOKED
from stress.wire import call
from testkit.mcp import mcp_http, mcp_stdio, text_of
from testkit.server import ServerProcess
from testkit.tokens import mint

TITLE = "Several processes, one data dir"
VICTIMS = 9
PARALLEL_REVOKES = 3
WRITERS_PER_SERVER = 2
HONOUR_WITHIN = 1.0
POLL_EVERY = 0.05
POLL_LIMIT = 5.0
LOCKED_WORDS = ("locked", "busy", "storage unavailable")


class Tally:
    def __init__(self) -> None:
        self.calls = 0
        self.failures: list[str] = []
        self.locked: list[str] = []
        self.delays: dict[str, list[float]] = {}
        self.late: list[str] = []

    def check(self, where: str, text: str, is_error: bool) -> None:
        self.calls += 1
        lowered = text.lower()
        if any(word in lowered for word in LOCKED_WORDS):
            self.locked.append(f"{where}: {text[:100]}")
        if is_error:
            self.failures.append(f"{where}: {text[:100]}")


async def _writer(
    name: str, client: Client, token: str, project: Path, tally: Tally, stop: anyio.Event
) -> None:
    i = 0
    while not stop.is_set():
        result = await call(
            client,
            "checkpoint",
            {"working_directory": str(project), "note": f"{name}-{i}", "token": token},
        )
        tally.check(f"{name} checkpoint", text_of(result), result.is_error)
        i += 1


async def _is_revoked(client: Client, token: str) -> tuple[bool, str]:
    result = await call(client, "whoami", {"token": token})
    text = text_of(result)
    return text == f"{AUTH_FAILED}: {REVOKED}", text


async def _revoke_and_watch(
    ctx: Context,
    data_dir: Path,
    victim: str,
    label: str,
    servers: dict[str, Client],
    tally: Tally,
) -> None:
    result = await run_cli(ctx, ["token", "revoke", victim], data_dir=data_dir)
    for text in (result.stdout, result.stderr):
        if any(word in text.lower() for word in LOCKED_WORDS):
            tally.locked.append(f"CLI revoke {label}: {text.strip()[:100]}")
    if result.returncode != 0:
        tally.failures.append(
            f"CLI revoke {label}: rc {result.returncode} {result.stderr.strip()[:100]}"
        )
        return
    done_at = time.monotonic()

    async def watch(server_name: str, client: Client) -> None:
        while True:
            revoked, text = await _is_revoked(client, victim)
            if revoked:
                tally.delays.setdefault(server_name, []).append(time.monotonic() - done_at)
                return
            if text.startswith(AUTH_FAILED):
                tally.failures.append(f"{server_name} {label}: {text[:80]}")
                return
            if time.monotonic() - done_at > POLL_LIMIT:
                tally.late.append(f"{server_name} {label}: still accepted after {POLL_LIMIT:.0f} s")
                return
            await anyio.sleep(POLL_EVERY)

    async with anyio.create_task_group() as tg:
        for server_name, client in servers.items():
            tg.start_soon(watch, server_name, client)


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(5, TITLE)
    data_dir = ctx.data_dir("shared")
    writers = {name: mint(ctx.secret, f"writer-{name}") for name in ("http-a", "http-b", "stdio")}
    victims = [mint(ctx.secret, f"victim-{n}", unique=True) for n in range(VICTIMS)]
    ctx.tokens.add_all([*writers.values(), *victims])
    tally = Tally()
    http_a = launch_server(ctx, "shared-a", data_dir)
    http_b: ServerProcess | None = None
    stdio_log_path = ctx.stdio_log("server-shared-stdio")
    started = time.monotonic()
    try:
        # Start one first so the schema exists, then the others at once.
        await ready(http_a)
        http_b = launch_server(ctx, "shared-b", data_dir)
        await ready(http_b)
        with stdio_log_path.open("w", encoding="utf-8") as stdio_log:
            async with (
                mcp_http(http_a.url) as client_a,
                mcp_http(http_b.url) as client_b,
                mcp_stdio(
                    ctx.env(data_dir), ctx.cwd, stdio_log, "--log-level", "DEBUG"
                ) as client_c,
            ):
                clients = {"http-a": client_a, "http-b": client_b, "stdio": client_c}
                urls = {"http-a": http_a.url, "http-b": http_b.url}
                projects: dict[str, Path] = {}
                for name, client in clients.items():
                    projects[name] = ctx.project_dir(f"shared-{name}")
                    result = await call(
                        client,
                        "start_session",
                        {"working_directory": str(projects[name]), "token": writers[name]},
                    )
                    tally.check(f"{name} start_session", text_of(result), result.is_error)
                for victim in victims:
                    for name, client in clients.items():
                        result = await call(client, "whoami", {"token": victim})
                        tally.check(
                            f"{name} whoami before revoke", text_of(result), result.is_error
                        )
                stop = anyio.Event()
                async with anyio.create_task_group() as writers_tg:

                    async def own_connection_writer(name: str, n: int) -> None:
                        async with mcp_http(urls[name]) as own:
                            await _writer(
                                f"{name}-{n}", own, writers[name], projects[name], tally, stop
                            )

                    for name, client in clients.items():
                        writers_tg.start_soon(
                            _writer, f"{name}-0", client, writers[name], projects[name], tally, stop
                        )
                        if name in urls:  # stdio has one pipe; HTTP servers get more writers
                            for n in range(1, WRITERS_PER_SERVER):
                                writers_tg.start_soon(own_connection_writer, name, n)

                    limiter = anyio.Semaphore(PARALLEL_REVOKES)

                    async def revoke(n: int) -> None:
                        async with limiter:
                            await _revoke_and_watch(
                                ctx, data_dir, victims[n], f"victim-{n}", clients, tally
                            )

                    async with anyio.create_task_group() as revokers:
                        for n in range(VICTIMS):
                            revokers.start_soon(revoke, n)
                    stop.set()
    finally:
        http_a.stop()
        if http_b is not None:
            http_b.stop()

    logs = http_a.log() + (http_b.log() if http_b else "")
    logs += stdio_log_path.read_text("utf-8", "replace")
    tracebacks = logs.count(TRACEBACK)
    locked_in_logs = logs.lower().count("database is locked")
    all_delays = [d for ds in tally.delays.values() for d in ds]
    worst = max(all_delays, default=float("inf"))
    honoured = len(all_delays)
    outcome.figure("tool_calls", tally.calls)
    outcome.figure("revocations", VICTIMS)
    outcome.figure(
        "honoured_within_s",
        {
            name: {"max": round(max(ds), 3), "mean": round(sum(ds) / len(ds), 3)}
            for name, ds in tally.delays.items()
        },
    )
    outcome.figure("locked_seen_by_clients", len(tally.locked))
    outcome.figure("database_is_locked_in_server_logs", locked_in_logs)
    outcome.figure("failed_calls", len(tally.failures))
    outcome.figure("server_tracebacks", tracebacks)
    outcome.figure("seconds", round(time.monotonic() - started, 1))
    outcome.bar(
        "no 'database is locked' (or storage error) reaches a client",
        not tally.locked,
        "; ".join(tally.locked[:3]),
    )
    outcome.bar("no failed call", not tally.failures, "; ".join(tally.failures[:3]))
    outcome.bar(
        f"every revocation honoured by every server within {HONOUR_WITHIN:g} s",
        honoured == VICTIMS * 3 and worst <= HONOUR_WITHIN and not tally.late,
        f"{honoured}/{VICTIMS * 3} honoured, worst {worst:.3f} s; " + "; ".join(tally.late[:2]),
    )
    outcome.bar("server logs: 0 tracebacks", tracebacks == 0)
    outcome.summary = (
        f"2 HTTP + 1 stdio + CLI: {tally.calls} calls, {len(tally.locked)} locked, "
        f"{len(tally.failures)} failed; {honoured}/{VICTIMS * 3} revocations honoured, "
        f"worst {worst:.2f} s"
    )
    return outcome
