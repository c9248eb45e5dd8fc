"""``session-buddy db backup|restore|check|copy``: the operator's database chores.

SQLite is backed up and restored here (SQLite's online backup API); PostgreSQL by its own
``pg_dump``/``pg_restore``, whose exact commands these print. ``check`` reads every page
of a SQLite file. ``copy`` moves a SQLite deployment into PostgreSQL. The PostgreSQL driver
is imported only by ``copy`` and by ``check`` on PostgreSQL.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from session_buddy.cli.config import cli_settings
from session_buddy.cli.output import console, emit, fail, note, success, warn
from session_buddy.config import Settings
from session_buddy.store import SqliteDatabase, StorageError, migrations
from session_buddy.store.backup import (
    STOP_SERVERS_FIX,
    BackupError,
    backup_sqlite,
    describe_rows,
    pg_dump_command,
    pg_restore_command,
    restore_sqlite,
)
from session_buddy.store.sqlite import failed_check
from session_buddy.store.urls import describe_url, password_of
from session_buddy.text import plural, printable

app = typer.Typer(
    help="Back up, restore or check the database, or copy a SQLite deployment into PostgreSQL.",
    no_args_is_help=True,
)

PASSWORD_SOURCES = "PGPASSWORD or ~/.pgpass (or it asks)"


def _configured_url(settings: Settings) -> str | None:
    try:
        return settings.resolved_database_url()
    except ValueError as exc:  # an unreadable or empty SESSION_BUDDY_DATABASE_URL_FILE
        fail(str(exc), getattr(exc, "fix", None))


def _postgres_tool(command: list[str], what: str, url: str, steps: str) -> NoReturn:
    """Print PostgreSQL's own command for the job on stdout, say why on stderr, exit 1."""
    emit(shlex.join(command))
    fail(
        f"The database is PostgreSQL at {describe_url(url)}: {what} with PostgreSQL's "
        f"{command[0]}, the command above{steps}",
        f"run it; {command[0]} reads the password from {PASSWORD_SOURCES}",
    )


@app.command(
    "backup",
    epilog="Examples:  session-buddy db backup /var/backups/session-buddy.db   |   "
    "session-buddy db backup ~/sb-$(date +%F).db --force",
)
def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (mode 0600).")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
) -> None:
    """Back up the database to PATH while servers keep running.

    SQLite: a consistent copy of one moment, made with SQLite's online backup API, written
    with mode 0600 and checked before it takes PATH's name. PostgreSQL: prints the pg_dump
    command of session-buddy's tables instead (and exits 1).
    """
    settings = cli_settings()
    url = _configured_url(settings)
    if url is not None:
        _postgres_tool(pg_dump_command(url, str(path)), "back it up", url, "")
    target = path.expanduser()
    try:
        snapshot = backup_sqlite(settings.database_path, target, overwrite=force)
    except BackupError as exc:
        fail(str(exc), exc.fix)
    success(
        f"Backed up {settings.database_path} to {target} (schema revision "
        f"{snapshot.revision}: {describe_rows(snapshot.rows)})."
    )


@app.command(
    "restore",
    epilog="Example:  session-buddy db restore /var/backups/session-buddy.db --force",
)
def restore(
    path: Annotated[Path, typer.Argument(help="A file written by: session-buddy db backup.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the data the database holds now."),
    ] = False,
) -> None:
    """Replace the database with a backup; refused while any process has it open.

    Stop every session-buddy process on this data dir first (servers, Claude Code's and
    Mahavishnu's stdio servers): a running server keeps revocations in memory and would not
    see what the restore changed. A backup from an older version is migrated. PostgreSQL:
    prints the pg_restore command instead (and exits 1).
    """
    settings = cli_settings()
    url = _configured_url(settings)
    if url is not None:
        _postgres_tool(
            pg_restore_command(url, str(path)),
            "restore it",
            url,
            " after stopping every instance (start them again when it has finished)",
        )
    database = settings.database_path
    try:
        restored = restore_sqlite(path.expanduser(), database, replace=force)
    except BackupError as exc:
        fail(str(exc), exc.fix)
    except StorageError as exc:  # a backup from a newer version, or a database unusable
        fail(str(exc), exc.fix)
    revision = restored.snapshot.revision
    migrated = (
        f", migrated from revision {restored.backup_revision}"
        if restored.backup_revision != revision
        else ""
    )
    success(
        f"Restored {path} into {database} (schema revision {revision}{migrated}: "
        f"{describe_rows(restored.snapshot.rows)})."
    )
    if restored.opened_meanwhile:
        warn(f"A process opened {database} during the restore: restart it ({STOP_SERVERS_FIX}).")


@app.command(
    "check",
    epilog="Example:  session-buddy db check",
)
def check() -> None:
    """Check every page and index of the database, while servers keep running.

    SQLite: PRAGMA integrity_check over the whole file, in one read transaction (seconds
    for a file of a gigabyte). A server's start checks only what costs the same at any
    size — the header, the schema, each table's first page — and every page only after the
    machine went down with the file open; run this after a disk error, and before trusting
    an old copy. Exit 1 on any damage, naming it. PostgreSQL: checks that the database is
    reachable and at a schema revision this version knows; its pages are PostgreSQL's to
    check (data checksums, pg_amcheck).
    """
    settings = cli_settings()
    url = _configured_url(settings)
    if url is not None:
        _check_postgres(url)
        return
    path = settings.database_path
    if not path.is_file():
        fail(
            f"No database at {path} (nothing to check)",
            "check SESSION_BUDDY_DATA_DIR (see: session-buddy auth status)",
        )
    database = SqliteDatabase(path, create=False)
    try:
        problems = database.check()
    except StorageError as exc:
        fail(str(exc), exc.fix)
    finally:
        database.close()
    if problems:
        for problem in problems[1:]:
            note(f"  {printable(problem)}")
        error = failed_check(path, problems)
        fail(str(error), error.fix)
    success(f"{path}: every page and index is sound (PRAGMA integrity_check).")


def _check_postgres(url: str) -> None:
    from session_buddy.store.postgres import PostgresDatabase

    database = PostgresDatabase(url)
    try:
        database.open()
    except StorageError as exc:
        fail(str(exc), exc.fix)
    finally:
        database.close()
    success(
        f"PostgreSQL at {describe_url(url)}: reachable, schema at revision "
        f"{migrations.HEAD}. Its pages are PostgreSQL's to check: data checksums "
        "(initdb --data-checksums) and pg_amcheck."
    )


@app.command(
    "copy",
    epilog="Examples:  SESSION_BUDDY_DATABASE_URL_FILE=/run/secrets/db-url session-buddy db "
    "copy   |   session-buddy db copy --to-file /run/secrets/db-url --from backup.db",
)
def copy(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="URL",
            help="postgresql://user:password@host:port/dbname (the password then shows in "
            "ps and shell history: prefer --to-file or SESSION_BUDDY_DATABASE_URL_FILE).",
        ),
    ] = None,
    to_file: Annotated[
        Path | None,
        typer.Option("--to-file", metavar="FILE", help="Read the URL from this file."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            metavar="PATH",
            help="The SQLite file to copy (default: the one in SESSION_BUDDY_DATA_DIR).",
        ),
    ] = None,
) -> None:
    """Copy a SQLite deployment's data into PostgreSQL.

    The target is --to, --to-file, or else the configured SESSION_BUDDY_DATABASE_URL (or
    SESSION_BUDDY_DATABASE_URL_FILE). Its schema is migrated first. Every row is copied
    (sessions, checkpoints, revocations — pushed to running instances at once — envelope
    nonces, throttle counts, the audit trail) and verified in one transaction. Running it
    again changes nothing; PostgreSQL holding other data under the same keys is refused
    (nothing is written). Stop the servers on the SQLite file first.
    """
    if to is not None and to_file is not None:
        raise typer.BadParameter("give --to or --to-file, not both", param_hint="--to")
    overrides: dict[str, object] = {}
    if to is not None:
        overrides["database_url"] = to
    elif to_file is not None:
        overrides.update(database_url=None, database_url_file=to_file)
    settings = cli_settings(**overrides)
    url = _configured_url(settings)
    if url is None:
        fail(
            "No PostgreSQL database to copy to",
            "pass --to-file FILE (or --to URL), or set SESSION_BUDDY_DATABASE_URL_FILE",
        )
    if to is not None and password_of(to):
        warn("--to puts the database password on the command line: prefer --to-file.")
    from session_buddy.store.copy import CopyError, copy_sqlite_to_postgres

    database = (source or settings.database_path).expanduser()
    try:
        report = copy_sqlite_to_postgres(database, url)
    except CopyError as exc:
        fail(str(exc), exc.fix)
    except StorageError as exc:
        fail(str(exc), exc.fix)
    table = Table(title=f"{report.source} → {report.target}", title_justify="left")
    for column in ("table", "in SQLite", "copied", "already there", "in PostgreSQL"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for outcome in report.tables:
        table.add_row(
            escape(outcome.table),
            str(outcome.in_source),
            str(outcome.copied),
            str(outcome.already_there),
            str(outcome.in_target),
        )
    console().print(table)
    if report.copied == 0:
        success(
            f"Nothing to copy: {report.target} holds every row of {report.source} already "
            "(verified)."
        )
        return
    pushed = (
        f"; {plural(report.revocations_logged, 'revocation')} pushed to running instances"
        if report.revocations_logged
        else ""
    )
    success(
        f"Copied {plural(report.copied, 'row')} to {report.target}, every row of "
        f"{report.source} verified there{pushed}."
    )
    note(
        "Next: set SESSION_BUDDY_DATABASE_URL (or _FILE) for every instance and start them "
        "(docs/DEPLOYMENT.md)."
    )
