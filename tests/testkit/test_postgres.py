"""testkit.postgres: a real server, reached the way session-buddy will reach it.

These tests fail (they do not skip) when PostgreSQL is missing: CI installs it.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from testkit.postgres import PostgresNotInstalled, PostgresServer, find_bin_dir
from testkit.processes import alive
from testkit.pytest_postgres import PostgresDatabase


def test_the_session_server_accepts_the_superuser_password_over_tcp(
    postgres_server: PostgresServer,
) -> None:
    assert postgres_server.running
    assert postgres_server.url().startswith("postgresql://postgres:")

    with psycopg.connect(postgres_server.url(), connect_timeout=5) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int, inet_server_addr()")
        version, address = row.fetchone()  # type: ignore[misc]

    assert version >= 120000
    assert str(address) == "127.0.0.1"


def test_a_fresh_role_round_trips_a_row_in_its_own_database(
    postgres_database: PostgresDatabase,
) -> None:
    with psycopg.connect(postgres_database.url, connect_timeout=5) as conn:
        user, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()  # type: ignore[misc]
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (%s, %s)", (1, "héllo ✓"))
        conn.commit()
        body = conn.execute("SELECT body FROM notes WHERE id = 1").fetchone()

    assert (user, superuser) == (postgres_database.user, False)
    assert tables == (0,)
    assert body == ("héllo ✓",)


def test_a_wrong_password_is_refused(postgres_database: PostgresDatabase) -> None:
    server = postgres_database.server
    url = server.url(user=postgres_database.user, password="wrong", dbname=postgres_database.dbname)

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url, connect_timeout=5)


def test_a_missing_database_is_named(postgres_database: PostgresDatabase) -> None:
    server = postgres_database.server
    url = server.url(
        user=postgres_database.user, password=postgres_database.password, dbname="no_such_db"
    )

    with pytest.raises(psycopg.OperationalError, match='"no_such_db" does not exist'):
        psycopg.connect(url, connect_timeout=5)


def test_stopped_refuses_connections_and_started_again_keeps_the_data(
    postgres_database: PostgresDatabase,
) -> None:
    server = postgres_database.server
    with psycopg.connect(postgres_database.url, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    port = server.port

    server.stop()
    assert not server.running
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        psycopg.connect(postgres_database.url, connect_timeout=5)

    server.start()
    with psycopg.connect(postgres_database.url, connect_timeout=5) as conn:
        assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]
    assert server.port == port


def test_killed_postmaster_recovers_committed_rows_on_start(
    postgres_database: PostgresDatabase,
) -> None:
    server = postgres_database.server
    with psycopg.connect(postgres_database.url, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE crash (n int)")
        conn.execute("INSERT INTO crash VALUES (1)")
        conn.commit()
        conn.execute("INSERT INTO crash VALUES (2)")  # never committed
        pid = server.pid

        server.kill()

        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert pid is not None and not Path(f"/proc/{pid}").exists()

    server.restart()
    with psycopg.connect(postgres_database.url, connect_timeout=5) as conn:
        assert conn.execute("SELECT n FROM crash").fetchall() == [(1,)]


def test_admin_helpers_see_what_the_fixture_created(
    postgres_database: PostgresDatabase,
) -> None:
    server = postgres_database.server

    owner = server.psql(
        "SELECT pg_get_userbyid(datdba) FROM pg_database "
        f"WHERE datname = '{postgres_database.dbname}'"
    )
    assert owner.strip() == postgres_database.user
    assert server.execute("SELECT %s::int + 1", [41]) == [(42,)]


def test_url_escapes_awkward_user_names_and_passwords(postgres_database: PostgresDatabase) -> None:
    server = postgres_database.server
    user, password = "odd user@x", "p@ss:w/rd %?#"
    server.create_role(user, password)
    try:
        url = server.url(user=user, password=password, dbname=postgres_database.dbname)
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (user,)
    finally:
        server.drop_role(user)


def test_close_stops_the_server_and_removes_its_directory() -> None:
    server = PostgresServer()
    with server:
        base, pid = server.base_dir, server.pid
        assert base is not None and (base / "data" / "PG_VERSION").exists()
        assert pid is not None and Path(f"/proc/{pid}").exists()

    assert not base.exists()
    assert not alive(pid)
    server.close()  # idempotent


def test_missing_binaries_name_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TESTKIT_PG_BIN", raising=False)

    with pytest.raises(PostgresNotInstalled, match="apt-get install -y postgresql"):
        find_bin_dir(tmp_path)


def test_the_newest_installed_version_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TESTKIT_PG_BIN", raising=False)
    for version in ("9.6", "15", "13"):
        bin_dir = tmp_path / version / "bin"
        bin_dir.mkdir(parents=True)
        for tool in ("initdb", "postgres"):
            (bin_dir / tool).write_text("#!/bin/sh\n")
            (bin_dir / tool).chmod(0o755)

    assert find_bin_dir(tmp_path) == tmp_path / "15" / "bin"
