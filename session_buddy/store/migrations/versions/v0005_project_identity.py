"""Project identity: sessions of projects named by id, not by a directory on this server.

A session started with a working directory keeps its directory in ``project_path`` and
now also records the directory's project id in ``project_id`` (NULL when it has none). A
session started with a project id stores that id in both columns: ``project_path`` is
every session's key, a directory (always absolute) or a project id (never a path), so the
existing unique index keeps one active session per user and key. Existing rows are
directory sessions without an id and keep working unchanged.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATEMENTS = [
    "ALTER TABLE sessions ADD COLUMN project_id TEXT",
    # Listing a project's sessions, and finding the directory sessions of an id.
    "CREATE INDEX sessions_by_project_id ON sessions(project_id, started_at)",
    # The active sessions started with a project id ("has this user any?"): a small index.
    """CREATE INDEX sessions_active_named_by_id ON sessions(user_id)
        WHERE ended_at IS NULL AND project_path = project_id""",
]


def upgrade() -> None:
    for statement in STATEMENTS:  # the same SQL on both dialects
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("session-buddy migrations only move forward")
