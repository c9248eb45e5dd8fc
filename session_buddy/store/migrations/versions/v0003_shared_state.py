"""State several instances share: envelope nonces and authentication-failure counters.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    real = "REAL" if op.get_bind().dialect.name == "sqlite" else "DOUBLE PRECISION"
    for statement in [
        # An accepted envelope's nonce (or signature), until the envelope would be stale.
        f"""CREATE TABLE envelope_nonces (
            nonce_key  TEXT PRIMARY KEY,
            expires_at {real} NOT NULL
        )""",
        "CREATE INDEX envelope_nonces_expires ON envelope_nonces(expires_at)",
        # Refused credentials per client address and 10-second bucket, summed by every
        # instance; and the blocks one of them decided.
        """CREATE TABLE auth_failures (
            client   TEXT NOT NULL,
            bucket   BIGINT NOT NULL,
            failures INTEGER NOT NULL,
            PRIMARY KEY (client, bucket)
        )""",
        f"""CREATE TABLE auth_blocks (
            client        TEXT PRIMARY KEY,
            blocked_until {real} NOT NULL
        )""",
    ]:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("session-buddy migrations only move forward")
