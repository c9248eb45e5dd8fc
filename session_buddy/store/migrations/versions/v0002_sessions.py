"""Coding sessions and their checkpoints; one active session per user and project.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE = [
    """CREATE TABLE sessions (
        id                TEXT PRIMARY KEY,
        user_id           TEXT NOT NULL,
        project_path      TEXT NOT NULL,
        project_name      TEXT NOT NULL,
        started_at        REAL NOT NULL,
        ended_at          REAL,
        snapshot_json     TEXT NOT NULL,
        end_snapshot_json TEXT,
        summary           TEXT,
        handoff           TEXT
    )""",
    """CREATE UNIQUE INDEX sessions_one_active_per_user_project
        ON sessions(user_id, project_path) WHERE ended_at IS NULL""",
    "CREATE INDEX sessions_by_user ON sessions(user_id, started_at)",
    "CREATE INDEX sessions_by_project ON sessions(project_path, started_at)",
    """CREATE TABLE checkpoints (
        id                     INTEGER PRIMARY KEY,
        session_id             TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        created_at             REAL NOT NULL,
        note                   TEXT,
        snapshot_json          TEXT NOT NULL,
        commits_since_previous INTEGER,
        changed_files          INTEGER
    )""",
    "CREATE INDEX checkpoints_by_session ON checkpoints(session_id, id)",
]
POSTGRESQL = [
    # seq: insertion order, for ties between sessions started at the same instant
    # (SQLite uses its rowid).
    """CREATE TABLE sessions (
        id                TEXT PRIMARY KEY,
        seq               BIGSERIAL NOT NULL,
        user_id           TEXT NOT NULL,
        project_path      TEXT NOT NULL,
        project_name      TEXT NOT NULL,
        started_at        DOUBLE PRECISION NOT NULL,
        ended_at          DOUBLE PRECISION,
        snapshot_json     TEXT NOT NULL,
        end_snapshot_json TEXT,
        summary           TEXT,
        handoff           TEXT
    )""",
    """CREATE UNIQUE INDEX sessions_one_active_per_user_project
        ON sessions(user_id, project_path) WHERE ended_at IS NULL""",
    "CREATE INDEX sessions_by_user ON sessions(user_id, started_at)",
    "CREATE INDEX sessions_by_project ON sessions(project_path, started_at)",
    """CREATE TABLE checkpoints (
        id                     BIGSERIAL PRIMARY KEY,
        session_id             TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        created_at             DOUBLE PRECISION NOT NULL,
        note                   TEXT,
        snapshot_json          TEXT NOT NULL,
        commits_since_previous INTEGER,
        changed_files          INTEGER
    )""",
    "CREATE INDEX checkpoints_by_session ON checkpoints(session_id, id)",
]


def upgrade() -> None:
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("session-buddy migrations only move forward")
