"""PostgreSQL only: why a database cannot be used, each cause its own kind and message.

Every message names ``host:port/dbname`` and never the password — neither in ``str()``,
``repr()``, ``fix`` nor in a formatted traceback. The password used here has the characters
a URL must escape, so both its plain and its escaped spelling are looked for.
"""

from __future__ import annotations

import time
import traceback
from urllib.parse import quote

import pytest

from session_buddy.store import StorageError
from session_buddy.store.postgres import PostgresDatabase
from testkit.pytest_postgres import PostgresDatabase as PgFixture
from testkit.server import free_port
from testkit.store import table_names

NASTY_PASSWORD = "p@ss:w/rd?#%25 ü"


@pytest.fixture
def pg(postgres_database: PgFixture) -> PgFixture:
    """The test database, its role's password changed to one that needs escaping."""
    return postgres_database.with_password(NASTY_PASSWORD)


def refusal(url: str) -> StorageError:
    with pytest.raises(StorageError) as raised:
        PostgresDatabase(url).open()
    return raised.value


def assert_no_password(error: StorageError, password: str = NASTY_PASSWORD) -> None:
    shown = "\n".join([str(error), repr(error), error.fix, *traceback.format_exception(error)])
    assert password not in shown
    assert quote(password, safe="") not in shown


def where(pg: PgFixture, dbname: str | None = None) -> str:
    return f"PostgreSQL at {pg.server.host}:{pg.server.port}/{dbname or pg.dbname}"


def test_the_nasty_password_itself_is_accepted(pg: PgFixture) -> None:
    db = PostgresDatabase(pg.url).open()
    try:
        assert db.query("SELECT current_user")[0][0] == pg.user
        assert repr(db) == f"PostgresDatabase('{pg.server.host}:{pg.server.port}/{pg.dbname}')"
    finally:
        db.close()


def test_an_unreachable_server_is_named_by_host_port_and_database(pg: PgFixture) -> None:
    port = free_port()
    error = refusal(f"postgresql://{pg.user}:{quote(NASTY_PASSWORD, safe='')}@127.0.0.1:{port}/db")

    assert error.kind == "unreachable"
    assert str(error).startswith(f"PostgreSQL at 127.0.0.1:{port}/db: cannot connect (")
    assert "Connection refused" in str(error)
    assert error.fix == "check that PostgreSQL is running and reachable at that address"
    assert_no_password(error)


def test_a_wrong_password_is_refused_as_such(pg: PgFixture) -> None:
    wrong = NASTY_PASSWORD + "-wrong"
    error = refusal(pg.url_with(password=wrong))

    assert error.kind == "auth_failed"
    assert str(error) == (
        f"{where(pg)}: the password was refused "
        f'(password authentication failed for user "{pg.user}")'
    )
    assert error.fix == "check the user and password in SESSION_BUDDY_DATABASE_URL"
    assert_no_password(error, wrong)


def test_a_missing_database_is_named(pg: PgFixture) -> None:
    error = refusal(pg.url_with(dbname="no_such_db"))

    assert error.kind == "no_database"
    assert str(error) == (
        f"{where(pg, 'no_such_db')}: the database does not exist "
        '(database "no_such_db" does not exist)'
    )
    assert "createdb" in error.fix
    assert_no_password(error)


def test_a_role_without_connect_is_denied(pg: PgFixture) -> None:
    pg.forbid_connect()

    error = refusal(pg.url)

    assert error.kind == "permission_denied"
    assert str(error) == (
        f'{where(pg)}: permission denied (permission denied for database "{pg.dbname}")'
    )
    assert "GRANT CONNECT" in error.fix
    assert_no_password(error)


def test_a_role_that_cannot_create_tables_is_refused_before_anything_is_written(
    pg: PgFixture,
) -> None:
    pg.forbid_create()

    error = refusal(pg.url)

    assert error.kind == "permission_denied"
    assert str(error) == (
        f"{where(pg)}: permission denied creating the schema (permission denied for schema public)"
    )
    assert "GRANT CREATE ON SCHEMA public" in error.fix
    assert_no_password(error)
    assert table_names(pg.server.url(dbname=pg.dbname)) == set()  # one transaction: nothing


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            f"postgresql://u:{quote(NASTY_PASSWORD, safe='')}@db.internal:port/sb",
            "SESSION_BUDDY_DATABASE_URL is not a valid URL",
        ),
        (
            f"mysql://u:{quote(NASTY_PASSWORD, safe='')}@db.internal:5432/sb",
            "SESSION_BUDDY_DATABASE_URL must start with postgresql:// (got mysql scheme)",
        ),
        (
            f"//u:{quote(NASTY_PASSWORD, safe='')}@db.internal:5432/sb",
            "SESSION_BUDDY_DATABASE_URL must start with postgresql:// (got no scheme)",
        ),
    ],
    ids=["port", "scheme", "no-scheme"],
)
def test_a_malformed_url_is_refused_without_connecting(url: str, message: str) -> None:
    with pytest.raises(StorageError) as raised:
        PostgresDatabase(url)

    assert raised.value.kind == "bad_url"
    assert str(raised.value) == message
    assert "postgresql://user:password@host:port/dbname" in raised.value.fix
    assert_no_password(raised.value)


def test_a_query_while_the_server_is_down_is_refused_within_the_pool_timeout(
    pg: PgFixture,
) -> None:
    db = PostgresDatabase(pg.url, pool_timeout=0.5).open()
    try:
        pg.server.stop()
        started = time.monotonic()
        with pytest.raises(StorageError) as raised:
            db.query("SELECT 1")
        waited = time.monotonic() - started
    finally:
        db.close()
        pg.server.start()

    assert raised.value.kind == "unreachable"
    assert str(raised.value) == (
        f"{where(pg)}: no connection within 0.5 s (is the server down or unreachable?)"
    )
    assert waited < 0.5 + 2.0  # the pool's timeout, not libpq's or the OS's
    assert_no_password(raised.value)
