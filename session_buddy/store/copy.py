"""Copying a SQLite deployment's data into PostgreSQL: ``session-buddy db copy``.

The rule, table by table: a row PostgreSQL lacks is copied; a row it holds already,
identical, is left alone; a row it holds *differently* under the same key is a conflict, and
one conflict anywhere stops the whole copy before anything is written — the two databases
diverged (the SQLite deployment went on after an earlier copy, or PostgreSQL holds another
deployment's data) and nothing here can tell which side is right. So running the copy again
changes nothing, and says so.

Rows are known by their natural key (a session's id, a revoked token's key, an envelope
nonce, a client and its 10-second bucket). Checkpoints and audit rows have only a number
each database counts for itself, so they are known by their content (every other column,
duplicates counted) and PostgreSQL numbers the ones it receives, in their SQLite order.
The revocation log is a change feed, not data: every revocation the copy adds gets a new
entry in PostgreSQL's log, and the same transaction notifies running instances, which
refuse the token within moments. Which sessions are counted in ``session_totals`` is each
database's own bookkeeping: copied sessions arrive uncounted and are counted after the
commit. The schema is migrated first on both sides (under PostgreSQL's advisory lock) and
must then be the same revision; the SQLite file is checked whole (every page and index)
before anything is read from it.

It all happens in one PostgreSQL transaction, under an advisory lock of its own (two copies
at once take turns): the SQLite rows, read in one read transaction, are streamed into
temporary tables with ``COPY``, compared and inserted by SQL in the server, and every row of
the SQLite file is verified present and identical before the commit.
"""

# SQLite's SQL here is assembled only from the schema's table names and the columns its
# catalog lists; PostgreSQL's is composed with psycopg.sql; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from session_buddy.store import migrations
from session_buddy.store.backup import STOP_SERVERS_FIX, others_have_open
from session_buddy.store.postgres import PostgresDatabase
from session_buddy.store.revocations import CHANNEL as REVOCATION_CHANNEL
from session_buddy.store.sessions import SessionRepository
from session_buddy.store.sqlite import SqliteDatabase, failed_check
from session_buddy.text import shorten

# pg_advisory_xact_lock key of a copy; not the migrations' (a copy migrates before it).
COPY_LOCK_KEY = 0x5E55_10B0_C0B1
BATCH_ROWS = 1000
SHOWN_CONFLICTS = 3
CopyProblem = Literal["missing", "in_use", "conflict", "schema", "verification"]


@dataclass(frozen=True, slots=True)
class _Table:
    """How a table is copied: by its natural ``key``, or (no key) by content, leaving out
    the ``counter`` column each database numbers for itself and the ``bookkeeping`` columns
    each keeps for itself."""

    name: str
    key: tuple[str, ...] = ()
    counter: str | None = None
    bookkeeping: tuple[str, ...] = ()


TABLES = (
    _Table("revoked_tokens", key=("token_key",)),
    _Table("sessions", key=("id",), bookkeeping=("counted",)),
    _Table("checkpoints", counter="id"),
    _Table("envelope_nonces", key=("nonce_key",)),
    _Table("auth_failures", key=("client", "bucket")),
    _Table("auth_blocks", key=("client",)),
    _Table("audit_events", counter="id"),
)
"""The tables copied row by row, each after those it references."""
DERIVED = (migrations.VERSION_TABLE, "revocation_log", "session_totals")
"""The tables not copied row by row: the schema revision (migrated, then compared), the
revocation log (one new entry per revocation copied) and the count of sessions (counted
again after the copy)."""


@dataclass(frozen=True, slots=True)
class Conflict:
    """A row PostgreSQL holds differently: its table, its key, and what differs."""

    table: str
    key: str
    differs: str

    def __str__(self) -> str:
        return f"{self.table} {self.key} ({self.differs})"


class CopyError(Exception):
    """A copy that was refused or failed; nothing was written. ``kind`` says why, ``fix``
    what to do; ``conflicts`` lists (some of) the differing rows of a ``"conflict"``."""

    def __init__(
        self,
        message: str,
        *,
        kind: CopyProblem,
        fix: str,
        conflicts: tuple[Conflict, ...] = (),
    ) -> None:
        super().__init__(message)
        self.kind: CopyProblem = kind
        self.fix = fix
        self.conflicts = conflicts


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table's outcome: rows in the SQLite file, rows copied now, rows in PostgreSQL
    after the copy (its own rows included)."""

    table: str
    in_source: int
    copied: int
    in_target: int

    @property
    def already_there(self) -> int:
        return self.in_source - self.copied


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a copy did: per table, and the revocation-log entries it added."""

    source: str
    target: str
    tables: tuple[TableCopy, ...]
    revocations_logged: int

    @property
    def copied(self) -> int:
        return sum(table.copied for table in self.tables)


def copy_sqlite_to_postgres(database: Path, url: str) -> CopyReport:
    """Copy every row of the SQLite ``database`` into the PostgreSQL database at ``url``.

    See the module doc for the rules. Raises :class:`CopyError` (refused or not verified:
    nothing written) or :class:`~session_buddy.store.StorageError` (a database cannot be
    used, including ``newer_schema`` on either side).
    """
    if not database.is_file():
        raise CopyError(
            f"no SQLite database at {database} (nothing to copy)",
            kind="missing",
            fix="check SESSION_BUDDY_DATA_DIR, or pass --from PATH",
        )
    if others_have_open(database):
        raise CopyError(
            f"another process has {database} open (a running server?): what it writes after "
            "the copy would stay behind — a revocation, say",
            kind="in_use",
            fix=STOP_SERVERS_FIX,
        )
    source = SqliteDatabase(database)
    target = PostgresDatabase(url)
    try:
        source.open()  # migrated to this version's schema
        problems = source.check()  # every page: a copy must not stop halfway through
        if problems:
            raise failed_check(database, problems)
        target.open()  # the same, under the migrations' advisory lock
        target.close()  # its pool is not needed: the copy is one connection
        with target.connect() as conn:
            try:
                report = _Copy(source, target, conn).run()
            except psycopg.Error as exc:
                raise target.storage_error(exc) from None
        SessionRepository(target).tally()  # the copied sessions, counted
        return report
    finally:
        source.close()
        target.close()


def _ident(*names: str) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def _columns(alias: str, names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, name) for name in names)


def _row(alias: str, names: tuple[str, ...]) -> sql.Composable:
    """``ROW(alias.a, alias.b, …)``: compared whole, NULLs included."""
    return sql.SQL("ROW({})").format(_columns(alias, names))


def _fingerprint(alias: str, names: tuple[str, ...]) -> sql.Composable:
    """A row's canonical text (PostgreSQL's own output of every value: floats exactly,
    NULL distinct from the empty string), to hash-join rows known only by their content."""
    return sql.SQL("{}::text").format(_row(alias, names))


def _on_keys(key: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("t", k), sql.Identifier("s", k)) for k in key
    )


class _Copy:
    """One copy, inside the PostgreSQL transaction of ``conn``."""

    def __init__(
        self, source: SqliteDatabase, target: PostgresDatabase, conn: psycopg.Connection[Any]
    ) -> None:
        self._source = source
        self._target = target
        self._conn = conn
        self._columns: dict[str, tuple[str, ...]] = {}
        self._in_source: dict[str, int] = {}

    def run(self) -> CopyReport:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (COPY_LOCK_KEY,))
        self._same_revision()
        self._stage()
        conflicts = [c for table in TABLES for c in self._conflicts(table)]
        conflicts += self._active_session_conflicts()
        if conflicts:
            self._conn.rollback()
            raise self._conflict_error(conflicts)
        copied = {table.name: self._insert(table) for table in TABLES}
        logged = self._log_revocations()
        self._verify(logged)
        outcome = tuple(
            TableCopy(table.name, self._in_source[table.name], copied[table.name], n)
            for table, n in zip(TABLES, self._target_counts(), strict=True)
        )
        if any(copied.values()):
            self._conn.commit()
        else:
            self._conn.rollback()  # nothing to copy: not even a notification
        where = f"PostgreSQL at {self._target.display}"
        return CopyReport(str(self._source.display), where, outcome, logged)

    # -- reading the SQLite file ------------------------------------------------------------

    def _same_revision(self) -> None:
        theirs = self._conn.execute(
            sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(migrations.VERSION_TABLE))
        ).fetchall()
        ours = self._source.query(f"SELECT version_num FROM {migrations.VERSION_TABLE}")
        if [str(r[0]) for r in theirs] != [str(r[0]) for r in ours]:
            raise CopyError(
                f"the schemas differ after migrating (SQLite {ours}, PostgreSQL {theirs})",
                kind="schema",
                fix="run the copy again with the session-buddy version the servers run",
            )

    def _stage(self) -> None:
        """Every SQLite table into a temporary table, from one read transaction."""
        sqlite = self._source.connection()
        sqlite.execute("BEGIN")  # deferred: one snapshot of every table
        try:
            for table in TABLES:
                self._stage_table(table, sqlite)
        finally:
            sqlite.execute("COMMIT")

    def _stage_table(self, table: _Table, sqlite: Any) -> None:
        names = tuple(
            str(row[1])
            for row in sqlite.execute(f'PRAGMA table_info("{table.name}")').fetchall()
            if str(row[1]) != table.counter and str(row[1]) not in table.bookkeeping
        )
        missing = set(names) - self._target_columns(table.name)
        if missing:
            raise CopyError(
                f"PostgreSQL's {table.name} lacks the columns {sorted(missing)}",
                kind="schema",
                fix="run the copy with the session-buddy version the servers run",
            )
        self._columns[table.name] = names
        staged = sql.Identifier(f"copy_{table.name}")
        self._conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
            ).format(staged, _ident(*names), sql.Identifier(table.name))
        )
        self._conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN copy_order BIGINT").format(staged))
        select = ", ".join(f'"{name}"' for name in names)
        rows = sqlite.execute(f'SELECT {select}, rowid FROM "{table.name}" ORDER BY rowid')
        count = 0
        with self._conn.cursor().copy(
            sql.SQL("COPY {} ({}, copy_order) FROM STDIN").format(staged, _ident(*names))
        ) as copy:
            for row in _batches(rows):
                copy.write_row(row)
                count += 1
        self._in_source[table.name] = count

    def _target_columns(self, table: str) -> set[str]:
        rows = self._conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
        return {str(row[0]) for row in rows}

    # -- comparing ----------------------------------------------------------------------------

    def _conflicts(self, table: _Table) -> list[Conflict]:
        """Rows PostgreSQL holds under the same key with other values (the first few)."""
        if not table.key:
            return []
        names = self._columns[table.name]
        differs = sql.SQL(", ").join(
            sql.SQL("CASE WHEN {} IS DISTINCT FROM {} THEN {} END").format(
                sql.Identifier("s", name), sql.Identifier("t", name), sql.Literal(name)
            )
            for name in names
        )
        rows = self._conn.execute(
            sql.SQL(
                "SELECT {keys}, array_remove(ARRAY[{differs}], NULL) FROM {staged} s "
                "JOIN {table} t ON {on} WHERE {s_row} IS DISTINCT FROM {t_row} "
                "ORDER BY s.copy_order LIMIT %s"
            ).format(
                keys=_columns("s", table.key),
                differs=differs,
                staged=sql.Identifier(f"copy_{table.name}"),
                table=sql.Identifier(table.name),
                on=_on_keys(table.key),
                s_row=_row("s", names),
                t_row=_row("t", names),
            ),
            (SHOWN_CONFLICTS,),
        ).fetchall()
        return [
            Conflict(
                table.name,
                " ".join(f"{k}={shorten(str(v))!r}" for k, v in zip(table.key, row, strict=False)),
                ", ".join(row[-1]) + (" differs" if len(row[-1]) == 1 else " differ"),
            )
            for row in rows
        ]

    def _active_session_conflicts(self) -> list[Conflict]:
        """Active sessions the copy would add beside another active session of the same
        user and project in PostgreSQL (at most one may be active)."""
        rows = self._conn.execute(
            "SELECT s.id, t.id FROM copy_sessions s JOIN sessions t "
            "ON t.user_id = s.user_id AND t.project_path = s.project_path "
            "WHERE s.ended_at IS NULL AND t.ended_at IS NULL AND t.id <> s.id "
            "ORDER BY s.copy_order LIMIT %s",
            (SHOWN_CONFLICTS,),
        ).fetchall()
        return [
            Conflict(
                "sessions",
                f"id={shorten(str(ours))!r}",
                f"its user's session {shorten(str(theirs))!r} in the same project is active "
                "in PostgreSQL",
            )
            for ours, theirs in rows
        ]

    def _conflict_error(self, conflicts: list[Conflict]) -> CopyError:
        shown = "; ".join(str(c) for c in conflicts[:SHOWN_CONFLICTS])
        return CopyError(
            f"PostgreSQL at {self._target.display} holds other data under the same keys as "
            f"{self._source.display}: {shown}. The two diverged (the SQLite deployment went "
            "on after an earlier copy, or PostgreSQL holds another deployment's data), and "
            "the copy cannot tell which is right; nothing was copied",
            kind="conflict",
            fix="copy into an empty database; or decide which rows are right, delete the "
            "others from PostgreSQL, and copy again",
            conflicts=tuple(conflicts),
        )

    # -- writing ------------------------------------------------------------------------------

    def _insert(self, table: _Table) -> int:
        names = self._columns[table.name]
        staged = sql.Identifier(f"copy_{table.name}")
        target = sql.Identifier(table.name)
        if table.key:
            statement = sql.SQL(
                "INSERT INTO {target} ({names}) SELECT {s_names} FROM {staged} s "
                "WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on}) ORDER BY s.copy_order"
            ).format(
                target=target,
                names=_ident(*names),
                s_names=_columns("s", names),
                staged=staged,
                on=_on_keys(table.key),
            )
        else:
            # The n-th copy of a row is added when PostgreSQL holds fewer than n of them.
            statement = sql.SQL(
                "INSERT INTO {target} ({names}) SELECT {w_names} FROM ("
                "SELECT {s_names}, s.copy_order, {s_print} AS print, row_number() OVER "
                "(PARTITION BY {s_print} ORDER BY s.copy_order) AS nth FROM {staged} s) w "
                "LEFT JOIN (SELECT {t_print} AS print, count(*) AS held FROM {target} t "
                "GROUP BY 1) h ON h.print = w.print "
                "WHERE w.nth > COALESCE(h.held, 0) ORDER BY w.copy_order"
            ).format(
                target=target,
                names=_ident(*names),
                w_names=_columns("w", names),
                s_names=_columns("s", names),
                s_print=_fingerprint("s", names),
                t_print=_fingerprint("t", names),
                staged=staged,
            )
        return int(self._conn.execute(statement).rowcount)

    def _log_revocations(self) -> int:
        """A log entry for every revocation PostgreSQL's log lacks (those copied now), and a
        notification, so running instances read them at once."""
        logged = self._conn.execute(
            "INSERT INTO revocation_log (token_key) SELECT s.token_key "
            "FROM copy_revoked_tokens s WHERE NOT EXISTS "
            "(SELECT 1 FROM revocation_log l WHERE l.token_key = s.token_key) "
            "ORDER BY s.copy_order"
        ).rowcount
        if logged:
            self._conn.execute("SELECT pg_notify(%s, '')", (REVOCATION_CHANNEL,))
        return int(logged)

    # -- verifying ----------------------------------------------------------------------------

    def _verify(self, logged: int) -> None:
        """Every SQLite row present and identical in PostgreSQL, and every revocation in
        its log; :class:`CopyError` (and nothing committed) otherwise."""
        short: list[str] = []
        for table in TABLES:
            names = self._columns[table.name]
            staged = sql.Identifier(f"copy_{table.name}")
            if table.key:
                query = sql.SQL(
                    "SELECT %s - count(*) FROM {staged} s JOIN {target} t ON {on} "
                    "WHERE {s_row} IS NOT DISTINCT FROM {t_row}"
                ).format(
                    staged=staged,
                    target=sql.Identifier(table.name),
                    on=_on_keys(table.key),
                    s_row=_row("s", names),
                    t_row=_row("t", names),
                )
                params: tuple[int, ...] = (self._in_source[table.name],)
            else:
                query = sql.SQL(
                    "SELECT count(*) FROM (SELECT {s_print} FROM {staged} s "
                    "EXCEPT ALL SELECT {t_print} FROM {target} t) missing"
                ).format(
                    s_print=_fingerprint("s", names),
                    t_print=_fingerprint("t", names),
                    staged=staged,
                    target=sql.Identifier(table.name),
                )
                params = ()
            row = self._conn.execute(query, params).fetchone()
            if row is None or int(row[0]):
                short.append(f"{table.name} ({0 if row is None else row[0]} rows)")
        unlogged = self._conn.execute(
            "SELECT count(*) FROM copy_revoked_tokens s WHERE NOT EXISTS "
            "(SELECT 1 FROM revocation_log l WHERE l.token_key = s.token_key)"
        ).fetchone()
        if unlogged is None or int(unlogged[0]):
            short.append("revocation_log")
        if short:
            self._conn.rollback()
            raise CopyError(
                f"after copying, PostgreSQL at {self._target.display} lacks rows of "
                f"{', '.join(short)}; nothing was committed",
                kind="verification",
                fix="run the copy again; if it fails the same way, report it",
            )

    def _target_counts(self) -> list[int]:
        counts = []
        for table in TABLES:
            row = self._conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))
            ).fetchone()
            counts.append(0 if row is None else int(row[0]))
        return counts


def _batches(cursor: Any) -> Iterator[tuple[Any, ...]]:
    while True:
        rows = cursor.fetchmany(BATCH_ROWS)
        if not rows:
            return
        yield from rows


__all__ = [
    "DERIVED",
    "TABLES",
    "Conflict",
    "CopyError",
    "CopyReport",
    "TableCopy",
    "copy_sqlite_to_postgres",
]
