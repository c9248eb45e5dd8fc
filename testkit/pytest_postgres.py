"""Pytest fixtures for a real PostgreSQL server (register with ``pytest_plugins``).

- ``postgres_server`` (session): one ``PostgresServer`` for the whole run; missing PostgreSQL
  is an error, not a skip.
- ``postgres_database`` (function): a fresh empty database owned by a fresh non-superuser login
  role with a password; dropped (with its connections) afterwards.
- ``postgres_url`` (function): that database's ``postgresql://`` URL.

A test that stops or kills the server need not restart it: the next database fixture does.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[PostgresDatabase]:
    postgres_server.start()  # no-op unless an earlier test left it stopped
    suffix = secrets.token_hex(4)
    database = PostgresDatabase(
        server=postgres_server,
        dbname=f"test_{suffix}",
        user=f"test_role_{suffix}",
        password=secrets.token_urlsafe(18),
    )
    postgres_server.create_role(database.user, database.password)
    postgres_server.create_database(database.dbname, owner=database.user)
    yield database
    postgres_server.start()
    postgres_server.drop_database(database.dbname)
    postgres_server.drop_role(database.user)


@pytest.fixture
def postgres_url(postgres_database: PostgresDatabase) -> str:
    return postgres_database.url
