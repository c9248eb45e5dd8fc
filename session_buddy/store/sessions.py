"""Sessions and checkpoints: SQL only, no rules about who may see what. Both backends.

Every write runs in one transaction. The partial unique index
``sessions_one_active_per_user_project`` guarantees at most one active session per
(user, project) across every process and instance: creating a session that already exists
(``INSERT … ON CONFLICT DO NOTHING``) returns the existing one instead. A checkpoint locks
its session's row (PostgreSQL; SQLite serializes writers anyway), so a checkpoint and an
``end_session`` racing on two instances never leave a checkpoint in an ended session.

Sessions are never deleted. Each one created here is marked ``counted`` and added to
``session_totals`` in its own transaction; the total of every session is that row plus the
few not counted yet (inserted by an older version, a copy, a bulk load: :meth:`tally`
folds them in), so it never counts the whole table.
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
    "snapshot_json, end_snapshot_json, summary, handoff"
)
_ACTIVE_FOR_USER = (
    f"SELECT {_SESSION_COLUMNS} FROM sessions "
    "WHERE user_id = ? AND project_path = ? AND ended_at IS NULL"
)
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
_COUNT_ONE_MORE = "UPDATE session_totals SET sessions = sessions + 1"
# Every session: those counted, and those inserted otherwise (on ``sessions_uncounted``).
_TOTAL = "SELECT sessions + (SELECT COUNT(*) FROM sessions WHERE counted = 0) FROM session_totals"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One row of ``sessions``; ``ended_at`` None means the session is active."""

    id: str
    user_id: str
    project_path: str
    project_name: str
    started_at: float
    ended_at: float | None
    snapshot_json: str
    end_snapshot_json: str | None = None
    summary: str | None = None
    handoff: str | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @classmethod
    def from_row(cls, row: Row) -> SessionRecord:
        return cls(*tuple(row))


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
        """Insert ``record`` unless its user already has an active session in its project.

        Returns ``(session, created)``: the new row and True, or the existing active row
        and False.
        """
        values = (
            record.id,
            record.user_id,
            record.project_path,
            record.project_name,
            record.started_at,
            record.ended_at,
            record.snapshot_json,
            record.end_snapshot_json,
            record.summary,
            record.handoff,
        )
        with self._db.transaction() as conn:
            inserted = conn.execute(
                f"INSERT INTO sessions({_SESSION_COLUMNS}, counted) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT (user_id, project_path) WHERE ended_at IS NULL DO NOTHING",
                values,
            ).rowcount
            if inserted == 1:
                conn.execute(_COUNT_ONE_MORE)
                return record, True
            existing = self._active(conn, record.user_id, record.project_path)
        if existing is None:  # ended by another process between the two statements
            return self.create_or_get_active(record)
        return existing, False

    @staticmethod
    def _active(conn: Connection, user_id: str, project_path: str) -> SessionRecord | None:
        row = conn.execute(_ACTIVE_FOR_USER, (user_id, project_path)).fetchone()
        return None if row is None else SessionRecord.from_row(row)

    def get(self, session_id: str) -> SessionRecord | None:
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        )
        return SessionRecord.from_row(rows[0]) if rows else None

    def active_for_user(self, user_id: str, project_path: str) -> SessionRecord | None:
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
        """The most recently started active session of any user in the project."""
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions "
            "WHERE project_path = ? AND ended_at IS NULL "
            f"ORDER BY started_at DESC, {self._db.dialect.insertion_order} DESC LIMIT 1",
            (project_path,),
        )
        return SessionRecord.from_row(rows[0]) if rows else None

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
        limit: int = 20,
    ) -> tuple[list[SessionRecord], int]:
        """Sessions newest first, filtered by user and/or project; also the total matched."""
        where, params = where_clause(("user_id = ?", user_id), ("project_path = ?", project_path))
        rows = self._db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where} "
            f"ORDER BY started_at DESC, {self._db.dialect.insertion_order} DESC LIMIT ?",
            (*params, limit),
        )
        # A user's or a project's sessions are counted on their index; all of them, never.
        count = f"SELECT COUNT(*) FROM sessions {where}" if where else _TOTAL
        total = self._db.query(count, params)
        return [SessionRecord.from_row(row) for row in rows], int(total[0][0])

    def tally(self) -> int:
        """Add the sessions not counted yet to ``session_totals`` (see the module doc);
        returns how many. Anyone may run it at any time: the counter's row is locked
        first, so concurrent creations and tallies count every session once."""
        with self._db.transaction() as conn:
            conn.execute("SELECT sessions FROM session_totals" + self._db.dialect.lock_row)
            added = conn.execute("UPDATE sessions SET counted = 1 WHERE counted = 0").rowcount
            conn.execute("UPDATE session_totals SET sessions = sessions + ?", (added,))
        return int(added)

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
