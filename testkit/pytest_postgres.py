"""Pytest fixtures for a real PostgreSQL server (register with ``pytest_plugins``).

- ``postgres_server`` (session): one ``PostgresServer`` for the whole run; missing PostgreSQL
  is an error, not a skip.
- ``postgres_database`` (function): a fresh empty database owned by a fresh non-superuser login
  role with a password; dropped (with its connections) afterwards. Its methods make the
  faults a deployment meets: another password, another database name, no CONNECT, no
  CREATE in the schema.
- ``postgres_url`` (function): that database's ``postgresql://`` URL.

A test that stops or kills the server need not restart it: the next database fixture does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from psycopg import sql

from testkit.postgres import PostgresServer


@dataclass(frozen=True)
class PostgresDatabase:
    """A database of ``server`` owned by ``user`` (not a superuser), who logs in with
    ``password``."""

    server: PostgresServer
    dbname: str
    user: str
    password: str

    @property
    def url(self) -> str:
        return self.server.url(user=self.user, password=self.password, dbname=self.dbname)

    def url_with(self, *, password: str | None = None, dbname: str | None = None) -> str:
        """This database's URL with another password or database name (faults)."""
        return self.server.url(
            user=self.user,
            password=self.password if password is None else password,
            dbname=self.dbname if dbname is None else dbname,
        )

    def with_password(self, password: str) -> PostgresDatabase:
        """The same database after ``ALTER ROLE … PASSWORD`` (any characters at all)."""
        self.server.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(self.user), sql.Literal(password)
            )
        )
        return dataclasses.replace(self, password=password)

    def forbid_connect(self) -> None:
        """Take CONNECT away from everyone, the owner included (superusers still may)."""
        self.server.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC, {}").format(
                sql.Identifier(self.dbname), sql.Identifier(self.user)
            )
        )

    def allow_connect(self) -> None:
        """Undo :meth:`forbid_connect`."""
        self.server.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC, {}").format(
                sql.Identifier(self.dbname), sql.Identifier(self.user)
            )
        )

    def terminate(self, application_name: str) -> list[int]:
        """``pg_terminate_backend`` every connection to this database with that
        ``application_name``; returns their pids once they are gone."""
        rows = self.server.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [self.dbname, application_name],
        )
        pids = [int(pid) for (pid,) in rows]
        for pid in pids:
            self.server.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.server.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]
        ):
            time.sleep(0.01)
        return pids

    def forbid_create(self) -> None:
        """Give the ``public`` schema to the superuser: the owner may connect and read,
        but not create tables."""
        self.server.execute("ALTER SCHEMA public OWNER TO postgres", dbname=self.dbname)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@contextlib.contextmanager
def fresh_database(server: PostgresServer) -> Iterator[PostgresDatabase]:
    """A new database owned by a new role (what ``postgres_database`` gives a test), dropped
    with its connections and its role when the block ends — for module-scoped setups."""
    server.start()  # no-op unless an earlier test left it stopped
    suffix = secrets.token_hex(4)
    database = PostgresDatabase(
        server=server,
        dbname=f"test_{suffix}",
        user=f"test_role_{suffix}",
        password=secrets.token_urlsafe(18),
    )
    server.create_role(database.user, database.password)
    server.create_database(database.dbname, owner=database.user)
    try:
        yield database
    finally:
        server.start()
        server.drop_database(database.dbname)
        server.drop_role(database.user)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[PostgresDatabase]:
    with fresh_database(postgres_server) as database:
        yield database


@pytest.fixture
def postgres_url(postgres_database: PostgresDatabase) -> str:
    return postgres_database.url
