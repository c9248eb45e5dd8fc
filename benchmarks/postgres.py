"""A PostgreSQL server of the benchmark's own, with a fresh database per configuration.

The test kit's :class:`~testkit.postgres.PostgresServer` (a real PostgreSQL started as the
``postgres`` user in a temporary directory, its settings those of the test suite) with one
non-superuser login role; :meth:`BenchPostgres.database_url` creates a database owned by
that role and returns the ``postgresql://`` URL a server gets in
``SESSION_BUDDY_DATABASE_URL``, so each configuration starts on an empty schema as a
SQLite configuration starts on an empty data dir.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from testkit.postgres import PostgresServer

ROLE = "session_buddy_bench"


@dataclass
class BenchPostgres:
    server: PostgresServer
    password: str

    def database_url(self, name: str) -> str:
        """A new empty database ``name`` owned by the benchmark's role, as a URL."""
        self.server.create_database(name, owner=ROLE)
        return self.server.url(user=ROLE, password=self.password, dbname=name)


@contextlib.contextmanager
def bench_postgres() -> Iterator[BenchPostgres]:
    """Start PostgreSQL (``initdb`` included) and stop it, removing its files, afterwards."""
    with PostgresServer() as server:
        password = secrets.token_urlsafe(18)
        server.create_role(ROLE, password)
        yield BenchPostgres(server, password)
