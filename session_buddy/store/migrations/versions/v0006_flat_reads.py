"""Reads that stay flat as the tables grow: two indexes, and the number of sessions.

``sessions_by_start``: every user's sessions newest first (an orchestrator's or admin's
``list_sessions``, ``session-buddy sessions list``) reads the newest entries of an index
instead of sorting the whole table; it lists (started_at, insertion order), the order the
query asks for (SQLite's rowid is part of every index). ``sessions_active_by_project_id``:
the active sessions of a project id (see below) read a small index, not every session of
that id. ``revoked_tokens_in_force``
replaces ``revoked_tokens_expires`` with (expires_at, token_key), so loading the
revocations in force at start-up reads that index alone, not a table row per revocation.

``session_totals`` holds how many sessions are *counted*: every session this version
starts is marked ``counted`` and added to it in the same transaction; one inserted any
other way (by an older version, a copy, a bulk load) keeps the default 0 and is counted by
the small partial index ``sessions_uncounted`` until ``SessionRepository.tally()`` adds it.
So the total of every user's sessions reads one row and that index, never every session
(PostgreSQL visits each row of an index to count). Existing sessions start counted.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The active sessions of a project id, whoever started them and of either kind: what
# starting, checking or checkpointing a project named by id reads. Without it those reads
# walked every session of the id (sessions_by_project_id), ended ones included.
ACTIVE_BY_PROJECT_ID = (
    "CREATE INDEX sessions_active_by_project_id ON sessions(project_id, started_at) "
    "WHERE ended_at IS NULL"
)
SQLITE = [
    "CREATE INDEX sessions_by_start ON sessions(started_at)",
    "CREATE INDEX revoked_tokens_in_force ON revoked_tokens(expires_at, token_key)",
    "DROP INDEX revoked_tokens_expires",
    "ALTER TABLE sessions ADD COLUMN counted INTEGER NOT NULL DEFAULT 0",
    "UPDATE sessions SET counted = 1",
    """CREATE TABLE session_totals (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        sessions INTEGER NOT NULL
    )""",
    "INSERT INTO session_totals(id, sessions) SELECT 1, COUNT(*) FROM sessions",
    "CREATE INDEX sessions_uncounted ON sessions(counted) WHERE counted = 0",
    ACTIVE_BY_PROJECT_ID,
]
POSTGRESQL = [
    "CREATE INDEX sessions_by_start ON sessions(started_at, seq)",
    "CREATE INDEX revoked_tokens_in_force ON revoked_tokens(expires_at, token_key)",
    # Existing rows read the first default (no table rewrite); new ones get the second.
    "ALTER TABLE sessions ADD COLUMN counted SMALLINT NOT NULL DEFAULT 1",
    "ALTER TABLE sessions ALTER COLUMN counted SET DEFAULT 0",
    """CREATE TABLE session_totals (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        sessions BIGINT NOT NULL
    )""",
    "INSERT INTO session_totals(id, sessions) SELECT 1, COUNT(*) FROM sessions",
    "CREATE INDEX sessions_uncounted ON sessions(counted) WHERE counted = 0",
    ACTIVE_BY_PROJECT_ID,
    # Last: dropping it locks revoked_tokens against readers (instances of the previous
    # version among them) until the migration commits, just after.
    "DROP INDEX revoked_tokens_expires",
]


def upgrade() -> None:
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("session-buddy migrations only move forward")
