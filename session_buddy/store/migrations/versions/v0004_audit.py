"""The audit trail: every authorization decision of a tool call, aggregated.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    real = "REAL" if sqlite else "DOUBLE PRECISION"
    key = "INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "BIGSERIAL PRIMARY KEY"
    for statement in [
        # One row per decision, or per run of identical decisions (count, first/last seen).
        f"""CREATE TABLE audit_events (
            id             {key},
            first_seen     {real} NOT NULL,
            last_seen      {real} NOT NULL,
            count          INTEGER NOT NULL,
            service        TEXT NOT NULL,
            caller_service TEXT,
            caller_id      TEXT,
            action         TEXT NOT NULL,
            permission     TEXT,
            result         TEXT NOT NULL,
            reason         TEXT,
            source_ip      TEXT,
            token_id       TEXT
        )""",
        "CREATE INDEX audit_events_last_seen ON audit_events(last_seen)",
        "CREATE INDEX audit_events_caller ON audit_events(caller_id, last_seen)",
        "CREATE INDEX audit_events_action ON audit_events(action, last_seen)",
        "CREATE INDEX audit_events_denials ON audit_events(source_ip, reason, last_seen)",
    ]:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("session-buddy migrations only move forward")
