"""Project identity: sessions of projects named by id, not by a directory on this server.

A session started with a working directory keeps its directory in ``project_path`` and
now also records the directory's project id (``project_id``, NULL when it has none). A
session started with a project id has ``project_path = ''`` (no directory here) and its
id in ``project_id``. One active session per user and directory, as before, and one per
user and project id among the sessions started with an id. Existing rows are directory
sessions without an id: they keep working unchanged.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_NAMED = "project_path <> '' OR project_id IS NOT NULL"
_INDEXES = [
    "DROP INDEX sessions_one_active_per_user_project",
    """CREATE UNIQUE INDEX sessions_one_active_per_user_directory
        ON sessions(user_id, project_path) WHERE ended_at IS NULL AND project_path <> ''""",
    """CREATE UNIQUE INDEX sessions_one_active_per_user_project_id
        ON sessions(user_id, project_id) WHERE ended_at IS NULL AND project_path = ''""",
    "CREATE INDEX sessions_by_project_id ON sessions(project_id, started_at)",
]
SQLITE = [
    # A column CHECK may name other columns in SQLite; the table's rows all pass it.
    f"ALTER TABLE sessions ADD COLUMN project_id TEXT CHECK ({_NAMED})",
    *_INDEXES,
]
POSTGRESQL = [
    "ALTER TABLE sessions ADD COLUMN project_id TEXT",
    f"ALTER TABLE sessions ADD CONSTRAINT sessions_project_named CHECK ({_NAMED})",
    *_INDEXES,
]


def upgrade() -> None:
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("session-buddy migrations only move forward")
