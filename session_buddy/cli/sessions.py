"""``session-buddy sessions list|show``: the local operator's view of every session.

Whoever can run this command can read the database file, so it shows every user's
sessions; MCP callers only ever see their own (or all, with a privileged role).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from session_buddy.auth.principal import Principal
from session_buddy.cli.config import existing_database
from session_buddy.cli.output import cell, console, emit, fail, note, title
from session_buddy.sessions import SessionDetail, SessionError, SessionInfo, SessionService
from session_buddy.sessions.service import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from session_buddy.sessions.target import ReportedProject, Target
from session_buddy.store import StorageError
from session_buddy.text import format_duration, printable

app = typer.Typer(help="List and inspect recorded coding sessions.", no_args_is_help=True)

OPERATOR = Principal(user_id="local-operator", authenticated=True, role="admin")
SHORT_ID = 8
MIN_PREFIX = 4


def _service() -> SessionService | None:
    """The session service on the configured database; None when there is none yet."""
    database = existing_database()
    if database is None:
        return None
    return SessionService(database)


def _status(info: SessionInfo) -> Text:
    return cell("active", "green") if info.active else cell(f"ended {info.ended_at}")


PATH_PREFIXES = ("/", ".", "~")


def _project_filter(project: str | None) -> Target | None:
    """A directory when ``project`` names one that exists or looks like a path (starts
    with ``/``, ``.`` or ``~``); otherwise a project id (a git remote URL or a name)."""
    if project is None:
        return None
    directory = Path(project).expanduser()
    if directory.is_dir() or project.startswith(PATH_PREFIXES):
        return str(directory.resolve())
    return ReportedProject.parse(project)


def _where(info: SessionInfo) -> str:
    """The project's directory and/or id, for a table cell."""
    return "\n".join(part for part in (info.project_path, info.project_id) if part)


@app.command(
    "list",
    epilog="Examples:  session-buddy sessions list   |   "
    "session-buddy sessions list --project . --all --json   |   "
    "session-buddy sessions list --project git@github.com:owner/repo.git",
)
def list_sessions(
    project: Annotated[
        str | None,
        typer.Option(
            help="Only sessions of this project: a directory (an existing one, or a path "
            "starting with / . ~), else a project id (git remote URL or name; sessions "
            "started with it, and those of directories that have it)."
        ),
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help=f"Every session (up to {MAX_LIST_LIMIT}), not only the "
            f"{DEFAULT_LIST_LIMIT} most recent.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Sessions of every user, newest first."""
    service = _service()
    limit = MAX_LIST_LIMIT if show_all else DEFAULT_LIST_LIMIT
    if service is None:
        if as_json:
            emit('{"sessions": [], "total": 0}')
        else:
            note("No sessions recorded yet (no database in SESSION_BUDDY_DATA_DIR).")
        return
    try:
        chosen = _project_filter(project)
        result = service.list_all(limit=limit, project=chosen)
    except StorageError as exc:
        fail(str(exc), exc.fix)
    except SessionError as exc:
        fail(str(exc), "pass an existing project directory, or a project id, to --project")
    for notice in result.notices:
        note(notice)
    if as_json:
        emit(result.model_dump_json())
        return
    if not result.sessions:
        if isinstance(chosen, ReportedProject):
            note(
                f"No sessions found for project id {chosen.id!r} "
                f"(no directory {project!r} here either)."
            )
        else:
            note("No sessions found.")
        return
    table = Table(title=title(f"Sessions ({result.total})"), title_justify="left")
    for column in ("id", "project", "user", "started", "status", "duration", "checkpoints"):
        table.add_column(column, justify="right" if column == "checkpoints" else "left")
    for info in result.sessions:
        table.add_row(
            cell(info.id[:SHORT_ID]),
            Text.assemble(cell(info.project_name), "\n", cell(_where(info), "dim")),
            cell(info.user_id),
            cell(info.started_at),
            _status(info),
            cell(format_duration(info.duration_seconds)),
            cell(info.checkpoint_count),
        )
    console().print(table)
    if len(result.sessions) < result.total:
        more = "" if show_all else " (use --all for more)"
        note(f"Showing {len(result.sessions)} of {result.total} sessions{more}.")


def _find(service: SessionService, session_id: str) -> SessionDetail:
    """The session with this id, or with this unique id prefix (as ``list`` shows it)."""
    wanted = session_id.strip().lower()
    if len(wanted) < 32:
        if len(wanted) < MIN_PREFIX:
            fail(
                f"Session id {session_id!r} is too short", f"give at least {MIN_PREFIX} characters"
            )
        matches = [
            info.id
            for info in service.list_all(limit=MAX_LIST_LIMIT).sessions
            if info.id.startswith(wanted)
        ]
        if len(matches) > 1:
            fail(
                f"Session id prefix {session_id!r} matches {len(matches)} sessions",
                "give more characters of the id",
            )
        wanted = matches[0] if matches else wanted
    return service.get_session(OPERATOR, wanted)


@app.command(
    "show",
    epilog="Examples:  session-buddy sessions show 3f2a9c1e   |   "
    "session-buddy sessions show 3f2a9c1e --json",
)
def show(
    session_id: Annotated[str, typer.Argument(help="The id, or its first characters.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """One session: its project, checkpoints, and hand-off document."""
    service = _service()
    list_fix = "list the sessions with: session-buddy sessions list --all"
    if service is None:
        fail(f"No session {session_id} found (no sessions recorded yet)", list_fix)
    try:
        detail = _find(service, session_id)
    except StorageError as exc:
        fail(str(exc), exc.fix)
    except SessionError as exc:
        fail(str(exc), list_fix)
    if as_json:
        emit(detail.model_dump_json())
        return
    info = detail.session
    out = console()
    facts = Table(show_header=False, title=title(f"Session {info.id}"), title_justify="left")
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("project", cell(f"{info.project_name} ({_where(info)})".replace("\n", ", ")))
    facts.add_row("user", cell(info.user_id))
    facts.add_row("started", cell(info.started_at))
    facts.add_row("status", _status(info))
    facts.add_row("duration", cell(format_duration(info.duration_seconds)))
    facts.add_row("at start", cell(info.snapshot.git.describe()))
    if detail.summary:
        facts.add_row("summary", cell(detail.summary))
    out.print(facts)
    if detail.checkpoints:
        table = Table(title="Checkpoints", title_justify="left")
        for column in ("#", "at", "elapsed", "commits", "changed files", "note"):
            table.add_column(column)
        for checkpoint in detail.checkpoints:
            commits = checkpoint.commits_since_previous
            changed = checkpoint.changed_files
            table.add_row(
                cell(checkpoint.number),
                cell(checkpoint.created_at),
                cell(format_duration(checkpoint.elapsed_seconds)),
                cell("-" if commits is None else commits),
                cell("-" if changed is None else changed),
                cell(checkpoint.note or ""),
            )
        out.print(table)
    if detail.handoff_markdown:
        out.print(Markdown(printable(detail.handoff_markdown, keep="\n")))
