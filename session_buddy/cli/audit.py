"""``session-buddy audit list|export``: who was allowed or refused what, and why.

Reading the audit trail needs no secret — whoever can read the database can read it, as
with ``sessions list``. Rows are decisions, or runs of identical ones (``count``);
``export`` writes one JSON object per line (``mcp-common``'s ``AuthAuditEvent`` fields)
for a SIEM.
"""

from __future__ import annotations

import json
import re
import time
from typing import Annotated

import typer
from rich.table import Table

from session_buddy.auth.trail import as_event
from session_buddy.cli.config import existing_database
from session_buddy.cli.output import cell, console, emit, fail, note, title
from session_buddy.store import StorageError
from session_buddy.store.audit import AuditRecord, AuditRepository

app = typer.Typer(help="Read the audit trail of authorization decisions.", no_args_is_help=True)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")


def parse_since(text: str | None) -> float | None:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"2d"``, ``"1w"`` ago as a Unix time (None: all)."""
    if text is None:
        return None
    match = _DURATION.fullmatch(text)
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not a duration like 90s, 15m, 1h, 2d or 1w", param_hint="--since"
        )
    return time.time() - float(match[1]) * _UNITS[match[2]]


Since = Annotated[
    str | None,
    typer.Option(help="Only decisions seen within this long: 90s, 15m, 1h, 2d, 1w."),
]


def _repository() -> AuditRepository | None:
    """The audit trail of the configured database; None when there is no database yet."""
    database = existing_database()
    if database is None:
        return None
    return AuditRepository(database)


def _search(
    *,
    since: float | None,
    limit: int,
    user: str | None = None,
    tool: str | None = None,
    denied_only: bool = False,
    newest_first: bool = True,
) -> list[AuditRecord]:
    repository = _repository()
    if repository is None:
        return []
    try:
        return repository.search(
            since=since,
            user=user,
            tool=tool,
            denied_only=denied_only,
            limit=limit,
            newest_first=newest_first,
        )
    except StorageError as exc:
        fail(str(exc), exc.fix)


@app.command(
    "list",
    epilog="Examples:  session-buddy audit list --denied --since 1h   |   "
    "session-buddy audit list --user alice --tool end_session --json",
)
def list_events(
    user: Annotated[str | None, typer.Option(help="Only this caller (the token's user).")] = None,
    tool: Annotated[str | None, typer.Option(help="Only this tool, e.g. end_session.")] = None,
    denied: Annotated[bool, typer.Option("--denied", help="Only refusals.")] = False,
    since: Since = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many rows, newest first.")
    ] = DEFAULT_LIMIT,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Authorization decisions of tool calls, newest first."""
    records = _search(
        since=parse_since(since), user=user, tool=tool, denied_only=denied, limit=limit
    )
    if as_json:
        emit(json.dumps([as_event(record) for record in records]))
        return
    if not records:
        note("No audit events match.")
        return
    table = Table(
        title=title(f"Audit trail ({len(records)} rows, newest first)"), title_justify="left"
    )
    for column in ("last seen", "result", "tool", "caller", "permission", "reason", "client", "×"):
        table.add_column(column, justify="right" if column == "×" else "left")
    for record in records:
        event = as_event(record)
        allowed = record.result == "allowed"
        caller = record.caller_id or "-"
        if record.caller_service:
            caller += f" ({record.caller_service})"
        table.add_row(
            cell(event["last_seen"]),
            cell("allowed" if allowed else "denied", "green" if allowed else "red"),
            cell(record.action),
            cell(caller),
            cell(record.permission or "-"),
            cell(record.reason or "-"),
            cell(record.source_ip or "-"),
            cell(record.count),
        )
    console().print(table)


@app.command(
    "export",
    epilog="Examples:  session-buddy audit export --since 1d > audit.jsonl   |   "
    "session-buddy audit export --since 1h | jq 'select(.result == \"denied\")'",
)
def export(since: Since = "1d") -> None:
    """Every decision seen within --since (default 1d), oldest first, one JSON line each."""
    for record in _search(since=parse_since(since), limit=MAX_LIMIT, newest_first=False):
        emit(json.dumps(as_event(record)))
