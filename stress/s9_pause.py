"""Scenario 9: sixteen sessions pause past the revocation staleness limit, then call at once.

An idle Claude Code that then fires parallel tool calls. A server's revocation set counts
as current for ``MAX_STALE_SECONDS`` (5 s) after its last confirmation; past that, a
check must re-read the log first. On SQLite nothing reads the log while nobody calls; on
PostgreSQL the log is read only when a notification comes, so after a quiet spell the next
notification's read starts from an old confirmation. Either way the first check (or the
notification) starts a read, and every check arriving meanwhile must wait for it — or use
a view that is still fresh — and never be refused.

Two servers run side by side, one on SQLite and one on PostgreSQL (started by the kit),
each with 16 official MCP clients (8 send a bearer header, 8 the token argument). Each
round: another process revokes :data:`NOBODY` tokens nobody holds (one transaction: the
next read of the log has that many rows to fetch — on PostgreSQL through its 30 s
look-back) and one token the server has cached (a victim); on PostgreSQL the scenario
waits until the server refuses the victim (it has read the log); every client stays quiet
for :data:`PAUSE` seconds; then (on PostgreSQL right after one more revocation, whose
notification starts the read) every client calls ``session_status`` at once, plus one
call with the victim. Bars, per backend over every round: 0 valid calls refused, every
victim refused as revoked, no traceback in the server log. Reported: refusals per round
and the slowest call of each burst. Before the fix, 4 rounds refused 60 of 64 valid calls
on SQLite (15 in every round) and all 64 on PostgreSQL.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import anyio

from session_buddy.auth.revocation import MAX_STALE_SECONDS
from session_buddy.store.base import Database
from stress.harness import AUTH_FAILED, TRACEBACK, Context, Outcome, launch_server, ready
from stress.tokens import REVOKED
from testkit.fleet import CALL_TIMEOUT, Fleet, revoke_elsewhere
from testkit.mcp import text_of
from testkit.postgres import PostgresServer
from testkit.server import ServerProcess
from testkit.store import database_at
from testkit.tokens import mint

TITLE = "Idle, then a burst"
LIMIT_SECONDS = 90.0
SESSIONS = 16
PAUSE = MAX_STALE_SECONDS + 0.7
ROUNDS = 4
QUICK_ROUNDS = 2
NOBODY = 20000  # revocations of tokens nobody holds, per round
ROLE = "session_buddy"
DATABASE = "session_buddy"


@dataclass
class Backend:
    """One server, its database and what its bursts saw."""

    name: str
    location: str  # the database, for the revoking process
    server: ServerProcess
    pushed: bool  # PostgreSQL: the burst follows a notification
    refused: list[str] = field(default_factory=list)  # valid calls that failed
    victims: list[str] = field(default_factory=list)  # what each victim call got
    slowest: list[float] = field(default_factory=list)  # per burst, seconds
    refused_per_round: list[int] = field(default_factory=list)
    calls: int = 0


async def _rounds(ctx: Context, backend: Backend, rounds: int) -> None:
    tokens = [mint(ctx.secret, f"pause-{backend.name}-{n}", unique=True) for n in range(SESSIONS)]
    victims = [mint(ctx.secret, f"victim-{backend.name}-{n}", unique=True) for n in range(rounds)]
    ctx.tokens.add_all([*tokens, *victims])
    arguments = {"working_directory": str(ctx.project_dir(f"pause-{backend.name}"))}
    elsewhere = await anyio.to_thread.run_sync(database_at(backend.location).open)
    try:
        await _pause_and_burst(backend, tokens, victims, arguments, elsewhere)
    finally:
        await anyio.to_thread.run_sync(elsewhere.close)


async def _pause_and_burst(
    backend: Backend,
    tokens: list[str],
    victims: list[str],
    arguments: dict[str, str],
    elsewhere: Database,
) -> None:
    """Warm every session (the victims too), then one round per victim."""
    async with Fleet(backend.server.url, tokens, bearer=SESSIONS // 2) as fleet:
        warm, cached = await fleet.burst("session_status", arguments, extra=victims)
        backend.refused += [f"warm-up: {reply.text[:120]}" for reply in warm if not reply.ok]
        backend.refused += [f"victim warm-up: {r.text[:120]}" for r in cached if not r.ok]
        for n, victim in enumerate(victims):
            await anyio.to_thread.run_sync(lambda: revoke_elsewhere(elsewhere, junk=NOBODY))
            await anyio.to_thread.run_sync(
                lambda victim=victim: revoke_elsewhere(elsewhere, [victim])
            )
            if backend.pushed:
                await _until_read(fleet, arguments, victim)
            await anyio.sleep(PAUSE)
            if backend.pushed:  # its notification starts a read of the log (and the look-back)
                await anyio.to_thread.run_sync(lambda: revoke_elsewhere(elsewhere, junk=1))
            replies, (victim_reply,) = await fleet.burst(
                "session_status", arguments, extra=[victim]
            )
            backend.calls += len(replies) + 1
            refused = [f"round {n}: {reply.text[:120]}" for reply in replies if not reply.ok]
            backend.refused += refused
            backend.refused_per_round.append(len(refused))
            backend.victims.append(victim_reply.text)
            backend.slowest.append(max(reply.seconds for reply in [*replies, victim_reply]))


async def _until_read(fleet: Fleet, arguments: dict[str, str], victim: str) -> None:
    """Until the server refuses ``victim``: PostgreSQL's server reads the log when notified
    (a call reads nothing there), so it has now read this round's revocations, and the pause
    counts from then."""
    with anyio.fail_after(CALL_TIMEOUT):
        while True:
            result = await fleet.clients[-1].call_tool(
                "session_status", {**arguments, "token": victim}
            )
            if text_of(result) == f"{AUTH_FAILED}: {REVOKED}":
                return
            await anyio.sleep(0.02)


def _create_database(ctx: Context, pg: PostgresServer) -> str:
    """A role and a database it owns; the URL the server uses."""
    password = secrets.token_urlsafe(18)
    ctx.database_passwords += [password, pg.superuser_password]
    pg.create_role(ROLE, password)
    pg.create_database(DATABASE, owner=ROLE)
    return pg.url(user=ROLE, password=password, dbname=DATABASE)


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(9, TITLE)
    rounds = QUICK_ROUNDS if ctx.quick else ROUNDS
    started = time.monotonic()
    sqlite_dir = ctx.data_dir("pause-sqlite")
    sqlite = launch_server(ctx, "pause-sqlite", sqlite_dir)
    pg = PostgresServer()
    # PostgreSQL dies with the thread that started it: one thread keeps it for the run.
    keeper = ThreadPoolExecutor(1, thread_name_prefix="stress-postgres")
    try:
        await anyio.to_thread.run_sync(keeper.submit(pg.start).result)
        url = _create_database(ctx, pg)
        settings = {"SESSION_BUDDY_DATABASE_URL": url}
        postgres = launch_server(ctx, "pause-postgres", ctx.data_dir("pause-pg"), settings=settings)
        backends = [
            Backend("sqlite", str(sqlite_dir / "session-buddy.db"), sqlite, pushed=False),
            Backend("postgresql", url, postgres, pushed=True),
        ]
        for backend in backends:
            await ready(backend.server)
        async with anyio.create_task_group() as group:
            for backend in backends:
                group.start_soon(_rounds, ctx, backend, rounds)
        for backend in backends:
            backend.server.stop()
    finally:
        ctx.kill_children()
        await anyio.to_thread.run_sync(keeper.submit(pg.close).result)
        keeper.shutdown()

    expected = f"{AUTH_FAILED}: {REVOKED}"
    for backend in backends:
        tracebacks = backend.server.log().count(TRACEBACK)
        wrong_victims = [text[:100] for text in backend.victims if text != expected]
        outcome.figure(
            backend.name,
            {
                "rounds": rounds,
                "calls": backend.calls,
                "refused": len(backend.refused),
                "refused_per_round": backend.refused_per_round,
                "slowest_call_per_burst_s": [round(s, 3) for s in backend.slowest],
                "tracebacks": tracebacks,
            },
        )
        outcome.bar(
            f"{backend.name}: 0 valid calls refused after {PAUSE:g} s pauses",
            not backend.refused and len(backend.victims) == rounds,
            "; ".join(backend.refused[:3]),
        )
        outcome.bar(
            f"{backend.name}: every token revoked during a pause refused as revoked",
            not wrong_victims and len(backend.victims) == rounds,
            "; ".join(wrong_victims[:2]),
        )
        outcome.bar(f"{backend.name}: no traceback in the server log", tracebacks == 0)
    outcome.figure("seconds", round(time.monotonic() - started, 1))
    outcome.summary = "; ".join(
        f"{b.name}: {rounds} bursts of {SESSIONS + 1} after {PAUSE:g} s idle, "
        f"{len(b.refused)} refused, slowest {max(b.slowest, default=0):.2f} s"
        for b in backends
    )
    return outcome
