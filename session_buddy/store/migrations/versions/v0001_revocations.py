"""Revoked tokens and the log other processes follow.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SQLITE = [
    """CREATE TABLE revoked_tokens (
        token_key  TEXT PRIMARY KEY,
        expires_at REAL NOT NULL,
        revoked_at REAL NOT NULL
    )""",
    "CREATE INDEX revoked_tokens_expires ON revoked_tokens(expires_at)",
    """CREATE TABLE revocation_log (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        token_key TEXT NOT NULL
    )""",
]
POSTGRESQL = [
    """CREATE TABLE revoked_tokens (
        token_key  TEXT PRIMARY KEY,
        expires_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX revoked_tokens_expires ON revoked_tokens(expires_at)",
    # logged_at: sequence values can commit out of order; readers also look back in time.
    """CREATE TABLE revocation_log (
        seq       BIGSERIAL PRIMARY KEY,
        token_key TEXT NOT NULL,
        logged_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX revocation_log_logged_at ON revocation_log(logged_at)",
]


def upgrade() -> None:
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("session-buddy migrations only move forward")
