"""Scenario 10: a hostile flood against the audit trail, on SQLite and on PostgreSQL.

Two servers — one on a SQLite file, one on a PostgreSQL database of its own — each get a
flood of :data:`REQUESTS_PER_WORKER` requests from each of :data:`FLOOD_WORKERS` clients
with addresses of their own: bad bearer headers (malformed, another scheme, signed with
another secret) on requests naming ever new tools, tools named with a lone surrogate, a
NUL, terminal escapes, a right-to-left override or 100 KB of text, hostile JSON-RPC
methods, bodies that are no JSON, and forged ``token`` arguments; after 20 bad
credentials each client is answered 429.
Meanwhile legitimate users call tools with the official client: three with every scope
(bearer header), a reader whose ``start_session`` is refused (token argument), and a user
whose validly signed token carries a NUL, a lone surrogate and a terminal escape in its
``user_id`` and ``jti``. Then one more call, after the flood, probes the writer.

Bars, per backend, from the real ``session-buddy audit list`` and ``/metrics``:

* every legitimate decision is in the trail: per user, the counts of their rows add up to
  the calls they made (allowed and refused);
* the flood leaves a bounded number of rows: per flooding address at most one row per
  (action, reason) for the refusals admitted before the throttle — the action being one of
  the server's tools, ``unknown`` or ``http`` — plus one row for all its 429s:
  ``addresses × ((tools + 2) × reasons + 1)``, whatever the number of requests;
* every text stored is printable (nothing a terminal or the database could trip on);
* the writer is alive at the end: the probe's decision is written;
* ``session_buddy_audit_events_dropped`` equals what is really missing: every decision
  counted by ``session_buddy_auth_decisions_total`` is in the trail or counted dropped;
* no forged call succeeds, no 5xx, no traceback or logging error in the server logs.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families

from session_buddy.mcp.tools import SessionTools
from stress.harness import (
    TRACEBACK,
    Context,
    Outcome,
    launch_server,
    postgres_database,
    ready,
    run_cli,
)
from stress.wire import call, raw_call, raw_client, raw_message
from testkit.mcp import mcp_http, tools_call
from testkit.server import ServerProcess
from testkit.tokens import mint

TITLE = "Hostile flood vs the audit trail"
FLOOD_WORKERS = 4  # per server, each from an address of its own
REQUESTS_PER_WORKER = 100  # a count, not a time: a loaded machine floods slower, not less
QUICK_REQUESTS_PER_WORKER = 40
TOOLS = sorted(SessionTools.names())
HEADER_REASONS = ("malformed", "bad_signature")  # what the flood's credentials are refused as
HUGE_NAME_CHARS = 100_000
LEGIT_PAUSE_SECONDS = 0.05  # between a user's calls: the flood, not the users, is the load
SETTLE_SECONDS = 15.0  # for the trail to catch up with the last decisions (0.5 s batches)
LOGGING_ERROR = "--- Logging error ---"
# An identity must be printable (a token naming another is refused 401), so this user's
# hostile text rides in the claims a server may echo or record: the jti and a custom claim.
HOSTILE_USER = "hostile-claims"
HOSTILE_TEXT = "\x00\ud800\x1b[2J"
LEGIT_USERS = ("legit-0", "legit-1", "legit-2")
READER = "reader"
PROBE = "probe"


class Hostile(NamedTuple):
    """One flood request: a ``bearer`` header (None: none) and a ``body`` (any JSON value,
    or bytes as they are); with ``tool``, a well-formed call of it with ``body`` as its
    arguments instead (the headers the SDK checks included)."""

    bearer: str | None
    body: Any
    tool: str | None = None


def _hostile_requests(forged: str) -> list[Callable[[int], Hostile]]:
    """Each kind of flood request, for its ``n``-th sending."""
    return [
        lambda n: Hostile("not-a-jwt", tools_call(f"tool-{n}", {})),
        lambda n: Hostile(forged, tools_call(TOOLS[n % len(TOOLS)], {})),
        lambda n: Hostile("not-a-jwt", tools_call(f"\ud800{n}", {})),
        lambda n: Hostile(forged, tools_call(f"start\x00session-{n}", {})),
        lambda n: Hostile("not-a-jwt", tools_call(f"\x1b]0;owned-{n}\x07\x1b[2J", {})),
        lambda n: Hostile("not-a-jwt", tools_call("x" * HUGE_NAME_CHARS + str(n), {})),
        lambda n: Hostile("not-a-jwt", {"jsonrpc": "2.0", "id": n, "method": f"\ud800/\x00{n}"}),
        lambda n: Hostile("not-a-jwt", b"\xff\xfe not json " + str(n).encode()),
        lambda n: Hostile("\u202e-not-a-jwt", tools_call(f"\u202e{n}", {})),
        lambda n: Hostile(None, tools_call(f"\ud800-{n}", {"token": forged})),
        lambda n: Hostile(None, {"token": forged}, tool="whoami"),
    ]


@dataclass
class Tally:
    """What one backend's flood and legitimate users saw."""

    backend: str
    flood_requests: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    unauthorized: int = 0
    transport_errors: int = 0
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)


async def _flood_worker(
    server: ServerProcess, source: str | None, tally: Tally, forged: str, requests: int
) -> None:
    kinds = _hostile_requests(forged)
    tally.addresses.add(source or "127.0.0.1")
    async with raw_client(source) as http:
        for n in range(requests):
            hostile = kinds[n % len(kinds)](n)
            try:
                if hostile.tool is not None:
                    reply = await raw_call(
                        http, server.url, hostile.tool, hostile.body, bearer=hostile.bearer
                    )
                else:
                    reply = await raw_message(http, server.url, hostile.body, bearer=hostile.bearer)
            except httpx.HTTPError:
                tally.transport_errors += 1
                continue
            tally.flood_requests += 1
            tally.statuses[reply.status] += 1
            if reply.tool_ok:
                tally.unauthorized += 1


async def _legit_user(
    server: ServerProcess,
    tally: Tally,
    user: str,
    token: str,
    project: Path,
    stop: anyio.Event,
) -> None:
    """Calls tools until ``stop``; every call the server answered is one decision of ``user``."""
    where = {"working_directory": str(project)}
    if user == READER:  # token argument; every other call refused (missing scope)
        plan = [("list_sessions", {"token": token}, False), ("start_session",
                {**where, "token": token}, True)]  # fmt: skip
        bearer = None
    elif user == HOSTILE_USER:
        await _hostile_claims_user(server, tally, token, stop)
        return
    else:
        plan = [("checkpoint", {**where, "note": "n"}, False), ("session_status", where, False),
                ("whoami", {}, False), ("list_sessions", {"limit": 5}, False)]  # fmt: skip
        bearer = token
    async with mcp_http(server.url, bearer=bearer) as client:
        if user in LEGIT_USERS:
            started = await call(client, "start_session", where)
            tally.calls[user] += 1
            if started.is_error:
                tally.failures.append(f"{user} start_session refused")
        step = 0
        while not stop.is_set():
            tool, arguments, refused = plan[step % len(plan)]
            step += 1
            try:
                result = await call(client, tool, arguments)
            except Exception as exc:
                tally.failures.append(f"{tally.backend} {tool}: {type(exc).__name__}"[:120])
                continue
            tally.calls[user] += 1
            if result.is_error != refused:
                tally.failures.append(f"{tally.backend} {tool}: is_error={result.is_error}")
            await anyio.sleep(LEGIT_PAUSE_SECONDS)


async def _hostile_claims_user(
    server: ServerProcess, tally: Tally, token: str, stop: anyio.Event
) -> None:
    """A validly signed token whose ``jti`` and ``team`` claims hold a NUL, a lone surrogate
    and a terminal escape. Raw HTTP: ``whoami`` echoes the claims, and the official client's
    strict JSON parser refuses the lone surrogate in that answer."""
    async with raw_client() as http:
        while not stop.is_set():
            reply = await raw_call(http, server.url, "whoami", {}, bearer=token)
            tally.calls[HOSTILE_USER] += 1
            if not reply.tool_ok:
                tally.failures.append(f"{tally.backend} hostile-claims whoami: {reply.status}")
            await anyio.sleep(LEGIT_PAUSE_SECONDS)


async def _attack(ctx: Context, server: ServerProcess, tally: Tally, requests: int) -> None:
    tokens = {user: mint(ctx.secret, user) for user in LEGIT_USERS}
    tokens[READER] = mint(ctx.secret, READER, scopes=["read"])
    tokens[HOSTILE_USER] = mint(
        ctx.secret, HOSTILE_USER, jti=f"jti{HOSTILE_TEXT}", team=f"team{HOSTILE_TEXT}"
    )
    forged = mint(ctx.secret + "-not", "mallory")
    ctx.tokens.add_all([*tokens.values(), forged])
    stop = anyio.Event()
    async with anyio.create_task_group() as users:
        for user, token in tokens.items():
            project = ctx.project_dir(f"audit-{tally.backend}-{user[:6]}")
            users.start_soon(_legit_user, server, tally, user, token, project, stop)
        await anyio.sleep(0.5)  # the users are connected before the flood starts
        async with anyio.create_task_group() as flood:
            for _ in range(FLOOD_WORKERS):
                source = ctx.addresses.take()
                flood.start_soon(_flood_worker, server, source, tally, forged, requests)
        stop.set()
    probe = mint(ctx.secret, PROBE)
    ctx.tokens.add(probe)
    async with mcp_http(server.url, bearer=probe) as client:
        if (await call(client, "whoami", {})).is_error:
            tally.failures.append(f"{tally.backend} probe refused")
    tally.calls[PROBE] += 1


def _metrics(server: ServerProcess) -> dict[str, float]:
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    totals: dict[str, float] = collections.defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] += sample.value
    return totals


async def _trail(ctx: Context, data_dir: Path, settings: dict[str, str]) -> list[dict[str, Any]]:
    result = await run_cli(
        ctx,
        ["audit", "list", "--json", "--since", "1h", "--limit", "100000"],
        data_dir=data_dir,
        settings=settings,
    )
    if result.returncode != 0:
        raise RuntimeError(f"audit list exited {result.returncode}: {result.stderr[-300:]}")
    events: list[dict[str, Any]] = json.loads(result.stdout)
    return events


@dataclass
class Verdict:
    """One backend's trail against what was done to it."""

    backend: str
    rows: int
    flood_rows: int
    row_bound: int
    stored: int
    decisions: int
    dropped: int
    missing_legit: dict[str, tuple[int, int]]
    unprintable: int
    probe_written: bool
    tracebacks: int


def _user_count(events: list[dict[str, Any]], user: str) -> int:
    return sum(int(e["count"]) for e in events if e["caller_id"] == user)


async def _judge(
    ctx: Context,
    tally: Tally,
    server: ServerProcess,
    data_dir: Path,
    settings: dict[str, str],
) -> Verdict:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:  # the last batches are written within a second; then nothing moves
        events = await _trail(ctx, data_dir, settings)
        metrics = await anyio.to_thread.run_sync(_metrics, server)
        stored = sum(int(e["count"]) for e in events)
        decisions = int(metrics["session_buddy_auth_decisions_total"])
        dropped = int(metrics["session_buddy_audit_events_dropped"])
        if stored + dropped >= decisions or time.monotonic() > deadline:
            break
        await anyio.sleep(0.3)
    missing = {
        user: (_user_count(events, user), made)
        for user, made in tally.calls.items()
        if _user_count(events, user) != made
    }
    flood_rows = sum(1 for e in events if e["caller_id"] is None)
    row_bound = len(tally.addresses) * ((len(TOOLS) + 2) * len(HEADER_REASONS) + 1)
    texts = [v for e in events for v in e.values() if isinstance(v, str)]
    log = server.log()
    return Verdict(
        backend=tally.backend,
        rows=len(events),
        flood_rows=flood_rows,
        row_bound=row_bound,
        stored=stored,
        decisions=decisions,
        dropped=dropped,
        missing_legit=missing,
        unprintable=sum(1 for text in texts if not text.isprintable()),
        probe_written=_user_count(events, PROBE) == 1,
        tracebacks=log.count(TRACEBACK) + log.count(LOGGING_ERROR),
    )


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(10, TITLE)
    requests = QUICK_REQUESTS_PER_WORKER if ctx.quick else REQUESTS_PER_WORKER
    tallies = {backend: Tally(backend) for backend in ("sqlite", "postgresql")}
    verdicts: list[Verdict] = []
    started = time.monotonic()
    async with postgres_database(ctx, "session_buddy_audit") as url:
        settings = {"sqlite": {}, "postgresql": {"SESSION_BUDDY_DATABASE_URL": url}}
        data_dirs = {backend: ctx.data_dir(f"audit-{backend}") for backend in tallies}
        servers = {
            backend: launch_server(
                ctx, f"audit-{backend}", data_dirs[backend], settings=settings[backend]
            )
            for backend in tallies
        }
        try:
            async with anyio.create_task_group() as tg:
                for server in servers.values():
                    tg.start_soon(ready, server)
            async with anyio.create_task_group() as tg:
                for backend, tally in tallies.items():
                    tg.start_soon(_attack, ctx, servers[backend], tally, requests)
            for backend, tally in tallies.items():
                verdicts.append(
                    await _judge(
                        ctx, tally, servers[backend], data_dirs[backend], settings[backend]
                    )
                )
        finally:
            for server in servers.values():
                server.stop()

    for tally, verdict in zip(tallies.values(), verdicts, strict=True):
        outcome.figure(
            f"{tally.backend}_flood",
            {
                "requests": tally.flood_requests,
                "addresses": len(tally.addresses),
                "statuses": dict(sorted(tally.statuses.items())),
                "transport_errors": tally.transport_errors,
            },
        )
        outcome.figure(f"{tally.backend}_legit_calls", dict(sorted(tally.calls.items())))
        outcome.figure(
            f"{tally.backend}_trail",
            {
                "rows": verdict.rows,
                "flood_rows": verdict.flood_rows,
                "flood_row_bound": verdict.row_bound,
                "decisions_counted": verdict.decisions,
                "decisions_stored": verdict.stored,
                "dropped_metric": verdict.dropped,
            },
        )
    outcome.figure("seconds", round(time.monotonic() - started, 1))

    def each(
        check: Callable[[Verdict], bool], detail: Callable[[Verdict], str]
    ) -> tuple[bool, str]:
        failed = [v for v in verdicts if not check(v)]
        return not failed, "; ".join(f"{v.backend}: {detail(v)}" for v in failed)

    outcome.bar(
        "every legitimate decision is in the trail (per user: stored count = calls made)",
        *each(lambda v: not v.missing_legit, lambda v: f"(stored, made) {v.missing_legit}"),
    )
    outcome.bar(
        "flood rows bounded: addresses × ((tools + 2) × reasons + 1)",
        *each(lambda v: v.flood_rows <= v.row_bound, lambda v: f"{v.flood_rows} > {v.row_bound}"),
    )
    outcome.bar(
        "every stored text is printable",
        *each(lambda v: v.unprintable == 0, lambda v: f"{v.unprintable} texts"),
    )
    outcome.bar(
        "the writer is alive at the end (the probe's decision is written)",
        *each(lambda v: v.probe_written, lambda v: "probe missing"),
    )
    outcome.bar(
        "dropped metric = decisions counted − decisions stored",
        *each(
            lambda v: v.dropped == v.decisions - v.stored,
            lambda v: f"metric {v.dropped}, really {v.decisions - v.stored}",
        ),
    )
    flood = list(tallies.values())
    outcome.bar(
        "0 forged calls succeed, 0 5xx",
        all(t.unauthorized == 0 and not any(s >= 500 for s in t.statuses) for t in flood),
        "; ".join(f"{t.backend}: {dict(t.statuses)}" for t in flood),
    )
    failures = [f for t in flood for f in t.failures]
    outcome.bar("0 failed legitimate calls", not failures, "; ".join(failures[:4]))
    outcome.bar(
        "server logs: 0 tracebacks, 0 logging errors",
        *each(lambda v: v.tracebacks == 0, lambda v: f"{v.tracebacks}"),
    )
    outcome.summary = "; ".join(
        f"{t.backend}: {t.flood_requests} flood req ({t.statuses.get(429, 0)}×429) → "
        f"{v.flood_rows} rows (≤ {v.row_bound}), {sum(t.calls.values())} legit decisions "
        f"all stored: {not v.missing_legit}, dropped {v.dropped}"
        for t, v in zip(flood, verdicts, strict=True)
    )
    return outcome
