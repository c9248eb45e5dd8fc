"""Sessions and checkpoints: SQL only, no rules about who may see what. Both backends.

A session is a *directory session* (started with a working directory: ``project_path``
is that directory, ``project_id`` its project id or NULL) or a *project session* (started
with a project id: the table holds the id in ``project_path`` too — a
:class:`SessionRecord` shows None there). ``project_path`` is thus every session's key: a
directory is always an absolute path and a project id never is one, so keys of the two
kinds never meet, and a project session is exactly a row whose ``project_path`` equals
its ``project_id``.

Every write runs in one transaction. The partial unique index
``sessions_one_active_per_user_project`` guarantees, across every process and instance,
at most one active session per (user, key). Creating a session returns the active one the
user already has instead (see :meth:`SessionRepository.create_or_get_active`), under a
lock on (user, project id) on PostgreSQL — SQLite serializes writers anyway — so two
instances starting a directory and its id at once agree on one session. A checkpoint
locks its session's row (PostgreSQL; SQLite serializes writers anyway), so a checkpoint
and an ``end_session`` racing on two instances never leave a checkpoint in an ended
session.
"""

# Queries are assembled only from the constant column lists and clauses below; every value
# is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from session_buddy.store.base import Connection, Database, Row, where_clause

_SESSION_COLUMNS = (
    "id, user_id, project_path, project_name, started_at, ended_at, "
    "snapshot_json, end_snapshot_json, summary, handoff, project_id"
)
_ACTIVE_FOR_USER = (
    f"SELECT {_SESSION_COLUMNS} FROM sessions "
    "WHERE user_id = ? AND project_path = ? AND ended_at IS NULL"
)
# A project session (see the module doc). No index predicate compares project_path with a
# constant: SQLite would then re-prepare every query binding project_path to a parameter.
_NAMED_BY_ID = "project_path = project_id"
_CHECKPOINT_COLUMNS = (
    "id, session_id, created_at, note, snapshot_json, commits_since_previous, changed_files"
)


def _qualified(columns: str, table: str) -> str:
    return ", ".join(f"{table}.{column.strip()}" for column in columns.split(","))


# The caller's active session, its last checkpoint (NULLs when none) and how many it has:
# what a status call needs, in one round trip.
_ACTIVE_WITH_LAST_CHECKPOINT = (
    f"SELECT {_qualified(_SESSION_COLUMNS, 's')}, {_qualified(_CHECKPOINT_COLUMNS, 'c')}, "
    "(SELECT COUNT(*) FROM checkpoints n WHERE n.session_id = s.id) "
    "FROM sessions s LEFT JOIN checkpoints c "
    "ON c.id = (SELECT MAX(m.id) FROM checkpoints m WHERE m.session_id = s.id) "
    "WHERE s.user_id = ? AND s.project_path = ? AND s.ended_at IS NULL"
)
_SESSION_WIDTH = len(_SESSION_COLUMNS.split(","))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One row of ``sessions``; ``ended_at`` None means the session is active.

    ``project_path`` None: a project session (no directory on this server), whose
    ``project_id`` is then set (and is its key in the table).
    """

    id: str
    user_id: str
    project_path: str | None
    project_name: str
    started_at: float
    ended_at: float | None
    snapshot_json: str
    end_snapshot_json: str | None = None
    summary: str | None = None
    handoff: str | None = None
    project_id: str | None = None

    def __post_init__(self) -> None:
        if self.project_path is None and self.project_id is None:
            raise ValueError("a session needs a project directory or a project id")

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @classmethod
    def from_row(cls, row: Row) -> SessionRecord:
        values = list(row)
        if values[2] == values[-1]:  # keyed by its project id: no directory
            values[2] = None
        return cls(*values)

    def values(self) -> tuple[Any, ...]:
        """The row's values, in the order of ``_SESSION_COLUMNS``."""
        return (
            self.id,
            self.user_id,
            self.project_path or self.project_id,
            self.project_name,
            self.started_at,
            self.ended_at,
            self.snapshot_json,
            self.end_snapshot_json,
            self.summary,
            self.handoff,
            self.project_id,
        )


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """One row of ``checkpoints``; ``number`` is its 1-based position in its session."""

    id: int
    session_id: str
    created_at: float
    note: str | None
    snapshot_json: str
    commits_since_previous: int | None
    changed_files: int | None
    number: int = 0


class SessionRepository:
    """Reads and writes ``sessions`` and ``checkpoints`` rows of one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- sessions -------------------------------------------------------------------

    def create_or_get_active(self, record: SessionRecord) -> tuple[SessionRecord, bool]:
        """Insert ``record`` unless its user already has an active session it belongs to.

        A directory session belongs to the user's active session in the same directory,
        else to the user's active project session of the directory's project id. A project
        session belongs to the user's active project session of that id, else to the most
        recently started of the user's active directory sessions with that id. Two
        directories never share a session. Returns ``(session, created)``: the new row and
        True, or the existing active row and False.
        """
        placeholders = ", ".join("?" for _ in record.values())
        with self._db.transaction() as conn:
            if record.project_id is not None and self._db.dialect.lock_key:
                # One key per (user, project id); a newline cannot occur in a project id.
                key = f"session:{record.project_id}\n{record.user_id}"
                conn.execute(self._db.dialect.lock_key, (key,))
            existing = self._belongs_to(conn, record)
            if existing is not None:
                return existing, False
            inserted = conn.execute(
                f"INSERT INTO sessions({_SESSION_COLUMNS}) VALUES ({placeholders}) "
                "ON CONFLICT (user_id, project_path) WHERE ended_at IS NULL DO NOTHING",
                record.values(),
            ).rowcount
            if inserted == 1:
                return record, True
            existing = self._belongs_to(conn, record)
        if existing is None:  # ended by another process between the two statements
            return self.create_or_get_active(record)
        return existing, False

    def _belongs_to(self, conn: Connection, record: SessionRecord) -> SessionRecord | None:
        """The active session ``record`` would belong to (see create_or_get_active)."""
        if record.project_path is not None:
            row = conn.execute(_ACTIVE_FOR_USER, (record.user_id, record.project_path)).fetchone()
            if row is None and record.project_id is not None:
                row = conn.execute(
                    f"{_ACTIVE_FOR_USER} AND {_NAMED_BY_ID}", (record.user_id, record.project_id)
                ).fetchone()
        else:
            row = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions "
                "WHERE user_id = ? AND project_id = ? AND ended_at IS NULL "
                f"ORDER BY {_NAMED_BY_ID} DESC, started_at DESC, "
                f"{self._db.dialect.insertion_order} DESC LIMIT 1",
                (record.user_id, record.project_id),
            ).fetchone()
        return None if row is None else SessionRecord.from_row(row)

    def get(self, session_id: str) -> SessionRecord | None:
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        )
        return SessionRecord.from_row(rows[0]) if rows else None

    def active_for_user(self, user_id: str, project_path: str) -> SessionRecord | None:
        """The user's active session in the directory ``project_path``."""
        rows = self._db.query(_ACTIVE_FOR_USER, (user_id, project_path))
        return SessionRecord.from_row(rows[0]) if rows else None

    def active_with_last_checkpoint(
        self, user_id: str, project_path: str
    ) -> tuple[SessionRecord, CheckpointRecord | None] | None:
        """:meth:`active_for_user` and that session's :meth:`last_checkpoint`, in one query
        (a status call on PostgreSQL then costs one round trip)."""
        rows = self._db.query(_ACTIVE_WITH_LAST_CHECKPOINT, (user_id, project_path))
        if not rows:
            return None
        row = tuple(rows[0])
        session = SessionRecord.from_row(row[:_SESSION_WIDTH])
        checkpoint = row[_SESSION_WIDTH:-1]
        if checkpoint[0] is None:
            return session, None
        return session, _checkpoint(checkpoint, int(row[-1]))

    def latest_active_for_project(self, project_path: str) -> SessionRecord | None:
        """The most recently started active session of any user in the directory."""
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions "
            "WHERE project_path = ? AND ended_at IS NULL "
            f"ORDER BY started_at DESC, {self._db.dialect.insertion_order} DESC LIMIT 1",
            (project_path,),
        )
        return SessionRecord.from_row(rows[0]) if rows else None

    def active_project_session(self, user_id: str | None, project_id: str) -> SessionRecord | None:
        """The user's active project session of ``project_id``; with ``user_id`` None, the
        most recently started one of any user."""
        where, params = where_clause(("project_path = ?", project_id), ("user_id = ?", user_id))
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where} "
            f"AND {_NAMED_BY_ID} AND ended_at IS NULL "
            f"ORDER BY started_at DESC, {self._db.dialect.insertion_order} DESC LIMIT 1",
            params,
        )
        return SessionRecord.from_row(rows[0]) if rows else None

    def active_with_project_id(
        self, user_id: str | None, project_id: str, limit: int = 20
    ) -> list[SessionRecord]:
        """Active sessions of either kind with ``project_id`` (the user's; with ``user_id``
        None, anyone's): project sessions first, then newest first."""
        where, params = where_clause(("project_id = ?", project_id), ("user_id = ?", user_id))
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where} AND ended_at IS NULL "
            f"ORDER BY {_NAMED_BY_ID} DESC, started_at DESC, "
            f"{self._db.dialect.insertion_order} DESC LIMIT ?",
            (*params, limit),
        )
        return [SessionRecord.from_row(row) for row in rows]

    def has_active_project_sessions(self, user_id: str | None) -> bool:
        """Whether the user (with None: anyone) has an active project session at all."""
        user = "" if user_id is None else "user_id = ? AND "
        rows = self._db.query(  # read from the small index sessions_active_named_by_id
            f"SELECT 1 FROM sessions WHERE {user}{_NAMED_BY_ID} AND ended_at IS NULL LIMIT 1",
            () if user_id is None else (user_id,),
        )
        return bool(rows)

    def end(
        self,
        session_id: str,
        *,
        ended_at: float,
        end_snapshot_json: str,
        summary: str | None,
        handoff: str,
    ) -> SessionRecord | None:
        """Close an active session; None when it does not exist or had already ended."""
        with self._db.transaction() as conn:
            changed = conn.execute(
                "UPDATE sessions SET ended_at = ?, end_snapshot_json = ?, summary = ?, "
                "handoff = ? WHERE id = ? AND ended_at IS NULL",
                (ended_at, end_snapshot_json, summary, handoff, session_id),
            ).rowcount
            if changed != 1:
                return None
            row = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        return SessionRecord.from_row(row)

    def list_sessions(
        self,
        *,
        user_id: str | None = None,
        project_path: str | None = None,
        project_id: str | None = None,
        limit: int = 20,
    ) -> tuple[list[SessionRecord], int]:
        """Sessions newest first, filtered by user, directory and/or project id (sessions of
        either kind with that id); also the total matched."""
        where, params = where_clause(
            ("user_id = ?", user_id),
            ("project_path = ?", project_path),
            ("project_id = ?", project_id),
        )
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where} "
            f"ORDER BY started_at DESC, {self._db.dialect.insertion_order} DESC LIMIT ?",
            (*params, limit),
        )
        total = self._db.query(f"SELECT COUNT(*) FROM sessions {where}", params)
        return [SessionRecord.from_row(row) for row in rows], int(total[0][0])

    # -- checkpoints ----------------------------------------------------------------

    def add_checkpoint(
        self,
        session_id: str,
        *,
        created_at: float,
        note: str | None,
        snapshot_json: str,
        commits_since_previous: int | None,
        changed_files: int | None,
    ) -> CheckpointRecord | None:
        """Record a checkpoint in an active session; None when the session is not active."""
        with self._db.transaction() as conn:
            active = conn.execute(
                "SELECT 1 FROM sessions WHERE id = ? AND ended_at IS NULL"
                + self._db.dialect.lock_row,
                (session_id,),
            ).fetchone()
            if active is None:
                return None
            inserted = conn.execute(
                "INSERT INTO checkpoints(session_id, created_at, note, snapshot_json, "
                "commits_since_previous, changed_files) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    session_id,
                    created_at,
                    note,
                    snapshot_json,
                    commits_since_previous,
                    changed_files,
                ),
            )
            checkpoint_id = inserted.fetchone()[0]
            number = conn.execute(
                "SELECT COUNT(*) FROM checkpoints WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
        return CheckpointRecord(
            id=int(checkpoint_id),
            session_id=session_id,
            created_at=created_at,
            note=note,
            snapshot_json=snapshot_json,
            commits_since_previous=commits_since_previous,
            changed_files=changed_files,
            number=int(number),
        )

    def checkpoints(self, session_id: str) -> list[CheckpointRecord]:
        """The session's checkpoints, oldest first, numbered from 1."""
        rows = self._db.query(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [_checkpoint(row, number) for number, row in enumerate(rows, start=1)]

    def last_checkpoint(self, session_id: str) -> CheckpointRecord | None:
        rows = self._db.query(
            f"SELECT {_CHECKPOINT_COLUMNS}, "
            "(SELECT COUNT(*) FROM checkpoints c WHERE c.session_id = checkpoints.session_id) "
            "FROM checkpoints WHERE session_id = ? ORDER BY id DESC LIMIT 1",
            (session_id,),
        )
        return _checkpoint(rows[0][:-1], int(rows[0][-1])) if rows else None

    def checkpoint_counts(self, session_ids: Sequence[str]) -> dict[str, int]:
        """Number of checkpoints per session id (sessions without any are absent)."""
        if not session_ids:
            return {}
        marks = ", ".join("?" for _ in session_ids)
        rows = self._db.query(
            f"SELECT session_id, COUNT(*) FROM checkpoints "
            f"WHERE session_id IN ({marks}) GROUP BY session_id",
            tuple(session_ids),
        )
        return {row[0]: int(row[1]) for row in rows}


def _checkpoint(row: Sequence[Any], number: int) -> CheckpointRecord:
    """A ``checkpoints`` row (columns as in ``_CHECKPOINT_COLUMNS``) with its position."""
    return CheckpointRecord(
        id=int(row[0]),
        session_id=str(row[1]),
        created_at=float(row[2]),
        note=row[3],
        snapshot_json=str(row[4]),
        commits_since_previous=row[5],
        changed_files=row[6],
        number=number,
    )
