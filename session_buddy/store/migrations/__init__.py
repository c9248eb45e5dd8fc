"""The schema of both backends: one versioned history, run by Alembic.

Each revision in ``versions/`` moves SQLite and PostgreSQL alike (raw SQL per dialect, so
the SQLite statements of revisions 0001 and 0002 are exactly those of the embedded
databases created before Alembic). Opening a database reads its revision with the
backend's own driver first; only a database behind :data:`HEAD` imports Alembic (and
SQLAlchemy, which only Alembic uses) and is upgraded:

* PostgreSQL: one transaction under an advisory lock, so several instances starting at
  once on an empty database migrate it exactly once;
* SQLite: one ``BEGIN EXCLUSIVE`` transaction, for the same reason across processes;
  a file from before Alembic (a ``schema_version`` table) is adopted at its version.

A database at a revision this version of session-buddy does not know was migrated by a
newer one: :func:`check_revision` refuses it rather than guess.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from session_buddy.store.errors import StorageError

REVISIONS = ("0001", "0002", "0003", "0004", "0005")
HEAD = REVISIONS[-1]
VERSION_TABLE = "alembic_version"
# Every table of the schema at HEAD, each after the tables it references (backups and
# copies list them; a test holds this to what the migrations create on both backends).
TABLES = (
    VERSION_TABLE,
    "revoked_tokens",
    "revocation_log",
    "sessions",
    "checkpoints",
    "envelope_nonces",
    "auth_failures",
    "auth_blocks",
    "audit_events",
)
# pg_advisory_xact_lock key: any constant shared by every session-buddy version.
MIGRATION_LOCK_KEY = 0x5E55_10B0_DD1E
logger = logging.getLogger(__name__)
SCRIPT_LOCATION = Path(__file__).parent
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# Alembic's `context` and `op` are process-wide proxies: one upgrade at a time per process.
_UPGRADE_LOCK = threading.Lock()


def needs_upgrade(revision: str | None, where: str) -> bool:
    """Whether a database at ``revision`` (None: no Alembic table yet) must be upgraded.

    :class:`StorageError` (kind ``newer_schema``) for a revision this version does not
    know: a newer session-buddy migrated it, and this one must not write to it.
    """
    if revision == HEAD:
        return False
    if revision is None or revision in REVISIONS:
        return True
    raise StorageError(
        f"database {where} has schema revision {revision}, newer than this session-buddy "
        f"knows (up to {HEAD}); upgrade session-buddy on this machine",
        kind="newer_schema",
        fix="upgrade session-buddy to the version the other instances run",
    )


def upgrade(url: str, *, creator: Callable[[], Any] | None = None, revision: str = HEAD) -> None:
    """Bring the database at SQLAlchemy ``url`` to :data:`HEAD` (see the module doc), or
    to an earlier ``revision`` (tests build databases as older versions left them)."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    logger.info("migrating the database schema to revision %s", revision)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, **_engine_options(url, creator))
    if engine.dialect.name == "sqlite":
        _begin_exclusive(engine)
    try:
        with _UPGRADE_LOCK, engine.connect() as connection:
            config = Config()
            config.set_main_option("script_location", str(SCRIPT_LOCATION))
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _engine_options(url: str, creator: Callable[[], Any] | None) -> dict[str, Any]:
    if creator is not None:
        return {"creator": creator}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
    return {}


def _begin_exclusive(engine: Any) -> None:
    """Make SQLAlchemy's pysqlite transactions real ``BEGIN EXCLUSIVE`` ones."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _exclusive(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
