"""The PostgreSQL pool hands out no broken connection, and checks a sound one for free."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from session_buddy.store.postgres import PostgresDatabase, check_idle_connection
from testkit import pytest_postgres
from testkit.clock import seconds_until


@pytest.fixture
def database(postgres_database: pytest_postgres.PostgresDatabase) -> Iterator[PostgresDatabase]:
    db = PostgresDatabase(postgres_database.url).open()
    yield db
    db.close()


def backend_pid(db: PostgresDatabase) -> int:
    return int(db.query("SELECT pg_backend_pid()")[0][0])


def terminate(postgres_database: pytest_postgres.PostgresDatabase, pid: int | None = None) -> None:
    """End one backend (every one on the database when ``pid`` is None) as an administrator
    would, and wait until they are gone (the pool may open new ones meanwhile)."""
    server = postgres_database.server
    rows = server.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s", [postgres_database.dbname]
    )
    pids = [int(row[0]) for row in rows if pid is None or row[0] == pid]
    assert pids, "no backend to end"
    server.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
    seconds_until(
        lambda: not server.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]),
        10,
        what="the backends to end",
    )


def test_a_sound_idle_connection_passes_without_a_round_trip(
    postgres_database: pytest_postgres.PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(postgres_database.url, autocommit=True) as conn:
        conn.execute("SELECT 1").fetchall()
        sent: list[Any] = []
        monkeypatch.setattr(conn, "execute", lambda *args, **kwargs: sent.append(args))

        check_idle_connection(conn)

        assert sent == []


def test_a_connection_ended_by_the_server_fails_the_check(
    postgres_database: pytest_postgres.PostgresDatabase,
) -> None:
    with psycopg.connect(postgres_database.url, autocommit=True) as conn:
        terminate(postgres_database, conn.info.backend_pid)

        with pytest.raises(psycopg.OperationalError):
            check_idle_connection(conn)


def test_a_closed_connection_fails_the_check(
    postgres_database: pytest_postgres.PostgresDatabase,
) -> None:
    conn = psycopg.connect(postgres_database.url, autocommit=True)
    conn.close()

    with pytest.raises(psycopg.OperationalError):
        check_idle_connection(conn)


def test_a_query_after_every_pooled_connection_was_ended_runs_on_a_new_one(
    database: PostgresDatabase, postgres_database: pytest_postgres.PostgresDatabase
) -> None:
    before = backend_pid(database)
    terminate(postgres_database)

    assert backend_pid(database) != before


def test_the_first_query_after_a_server_restart_succeeds(
    database: PostgresDatabase, postgres_database: pytest_postgres.PostgresDatabase
) -> None:
    assert database.query("SELECT 1") == [(1,)]
    postgres_database.server.restart()

    assert database.query("SELECT 1") == [(1,)]
