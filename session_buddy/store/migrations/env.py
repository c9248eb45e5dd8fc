"""Alembic's entry point: migrate the connection :func:`upgrade` hands over, in one
transaction, under the lock that keeps concurrent instances from migrating twice."""

# SQL here is assembled only from constants and dialect keywords; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, inspect, text

from session_buddy.store.migrations import MIGRATION_LOCK_KEY, VERSION_TABLE


def _adopt_legacy_sqlite_schema(connection: Connection) -> None:
    """A SQLite file from before Alembic records its version in ``schema_version``
    (1: revocations, 2: sessions); start Alembic at the revision that matches it."""
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or "schema_version" not in tables:
        return
    version = connection.execute(text("SELECT MAX(version) FROM schema_version")).scalar()
    if not version:
        return
    connection.execute(
        text(
            f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
            f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
        )
    )
    connection.execute(
        text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:revision)"),
        {"revision": f"{int(version):04d}"},
    )


def run() -> None:
    connection: Connection = context.config.attributes["connection"]
    context.configure(
        connection=connection, transactional_ddl=True, transaction_per_migration=False
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        else:
            _adopt_legacy_sqlite_schema(connection)
        context.run_migrations()


run()
