"""PostgreSQL URLs as a user writes them, against a real server: a password with an
unescaped ``@``, ``sslmode=require`` against a server without SSL, Unix-socket URLs, a
superuser. Each gets the right words and the right fix, and no part of a password is ever
shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from session_buddy.store import StorageError
from session_buddy.store.urls import check_url, describe_url, password_of, user_of
from testkit.cli import CliEnv, flat
from testkit.cli import table_row as row
from testkit.environment import new_secret, server_environment
from testkit.postgres import PostgresServer
from testkit.pytest_postgres import PostgresDatabase as PgFixture
from testkit.pytest_postgres import fresh_database
from testkit.server import run_server

HEAD, TAIL = "Zq7xKp", "Vb9wMt"  # the password "Zq7xKp@Vb9wMt", cut where libpq cuts it


@pytest.fixture
def at_password(postgres_database: PgFixture) -> PgFixture:
    return postgres_database.with_password(f"{HEAD}@{TAIL}")


def raw_url(pg: PgFixture, password: str) -> str:
    return f"postgresql://{pg.user}:{password}@{pg.server.host}:{pg.server.port}/{pg.dbname}"


def socket_target(pg: PgFixture) -> str:
    return f"Unix socket {pg.server.socket_dir}/.s.PGSQL.{pg.server.port}, database {pg.dbname}"


# -- a password with an unescaped @ ---------------------------------------------------------


def test_an_unescaped_at_in_the_password_is_refused_before_connecting(
    cli: CliEnv, at_password: PgFixture
) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", raw_url(at_password, f"{HEAD}@{TAIL}"))
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    assert "has an '@' that is not the one before the host" in result.stderr
    assert "@ as %40" in result.stderr
    assert HEAD not in result.output and TAIL not in result.output


def test_serve_refuses_an_unescaped_at_without_showing_any_of_the_password(
    tmp_path: Path, at_password: PgFixture
) -> None:
    env = server_environment(
        tmp_path / "data",
        new_secret(),
        SESSION_BUDDY_DATABASE_URL=raw_url(at_password, f"{HEAD}@{TAIL}"),
    )
    result = run_server(env, tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "%40" in line
    assert HEAD not in line and TAIL not in line


def test_the_percent_encoded_password_connects(cli: CliEnv, at_password: PgFixture) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", raw_url(at_password, quote(f"{HEAD}@{TAIL}", safe="")))
    result = cli.run("auth", "status")
    assert result.exit_code == 0, result.output
    assert row(result.stdout, "Revoked tokens") == "0"


@pytest.mark.parametrize(
    "password",
    ["Zq7x/Vb9w@", "4312/Vb9w@", "4312?Vb9w@", "Zq7x%zzVb9w@", "Zq7x@Vb9w@Mt4r@"],
    ids=["slash", "port", "query", "percent", "two @"],
)
def test_a_password_that_libpq_would_split_is_refused_without_quoting_it(password: str) -> None:
    url = f"postgresql://user:{password}host:5432/db"
    with pytest.raises(StorageError) as info:
        check_url(url)
    assert info.value.kind == "bad_url"
    shown = f"{info.value} {info.value.fix} {describe_url(url)}"
    for piece in password.replace("@", " ").replace("/", " ").replace("?", " ").split():
        assert piece not in shown


def test_what_libpq_reads_is_what_is_shown_and_redacted() -> None:
    url = "postgresql://sb:pa#ss:w@db.internal:6543/sessions?sslmode=require"
    assert describe_url(url) == "db.internal:6543/sessions"
    assert (user_of(url), password_of(url)) == ("sb", "pa#ss:w")


# -- sslmode=require against a server without SSL ---------------------------------------------


def test_sslmode_require_against_a_server_without_ssl_names_the_right_fix(
    cli: CliEnv, postgres_database: PgFixture
) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", postgres_database.url + "?sslmode=require")
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "the server does not accept SSL connections" in line
    assert "ssl = on" in line and "sslmode=prefer" in line
    assert "check that PostgreSQL is running" not in line


# -- Unix-socket URLs -------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["query", "encoded host"])
def test_a_unix_socket_url_shows_the_socket_path(
    cli: CliEnv, postgres_database: PgFixture, spelling: str
) -> None:
    pg = postgres_database
    socket_dir, port = str(pg.server.socket_dir), pg.server.port
    if spelling == "query":
        url = f"postgresql:///{pg.dbname}?host={socket_dir}&port={port}&user={pg.user}"
    else:
        url = f"postgresql://{pg.user}@{quote(socket_dir, safe='')}:{port}/{pg.dbname}"
    cli.set("SESSION_BUDDY_DATABASE_URL", url)
    result = cli.run("auth", "status")
    assert result.exit_code == 0, result.output
    shown = f"PostgreSQL at {socket_target(pg)} (user {pg.user})"
    assert shown.replace(" ", "") in flat(result.stdout)
    assert "localhost" not in result.stdout


def test_token_revoke_names_the_socket_it_wrote_to(
    cli: CliEnv, postgres_database: PgFixture
) -> None:
    pg = postgres_database
    url = f"postgresql:///{pg.dbname}?host={pg.server.socket_dir}&port={pg.server.port}"
    cli.set("SESSION_BUDDY_DATABASE_URL", url + f"&user={pg.user}")
    token = cli.run("token", "create", "alice").stdout.strip()
    result = cli.run("token", "revoke", token)
    assert result.exit_code == 0, result.output
    assert socket_target(pg) in result.output.replace("\n", " ")


# -- a superuser ------------------------------------------------------------------------------


def test_a_superuser_is_warned_about_in_auth_status(
    cli: CliEnv, postgres_database: PgFixture
) -> None:
    cli.set(
        "SESSION_BUDDY_DATABASE_URL", postgres_database.server.url(dbname=postgres_database.dbname)
    )
    result = cli.run("auth", "status")
    assert result.exit_code == 0, result.output
    assert "SUPERUSER" in flat(result.stdout)
    assert "connected as a superuser" in result.stderr
    assert "CREATE ROLE" in result.stderr


def test_serve_warns_once_at_start_when_connected_as_a_superuser(
    tmp_path: Path, postgres_database: PgFixture
) -> None:
    superuser_url = postgres_database.server.url(dbname=postgres_database.dbname)
    env = server_environment(
        tmp_path / "data", new_secret(), SESSION_BUDDY_DATABASE_URL=superuser_url
    )
    result = run_server(env, tmp_path, input="")
    assert result.stderr.count("connected as a superuser") == 1, result.stderr
    assert postgres_database.server.superuser_password not in result.stderr


def test_the_owning_role_gets_no_superuser_warning(
    cli: CliEnv, postgres_database: PgFixture
) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", postgres_database.url)
    result = cli.run("auth", "status")
    assert result.exit_code == 0 and "superuser" not in result.output.lower()


# -- a server that accepts only SSL -----------------------------------------------------------


@pytest.fixture(scope="module")
def ssl_server() -> Iterator[PostgresServer]:
    with PostgresServer(ssl=True) as server:
        yield server


@pytest.fixture
def ssl_database(ssl_server: PostgresServer) -> Iterator[PgFixture]:
    with fresh_database(ssl_server) as database:
        yield database


@pytest.mark.parametrize(
    ("options", "exit_code"),
    [("sslmode=require", 0), ("sslmode=verify-full&sslrootcert={ca}", 0)],
    ids=["require", "verify-full"],
)
def test_an_ssl_only_server_accepts_ssl(
    cli: CliEnv, ssl_database: PgFixture, options: str, exit_code: int
) -> None:
    ca = ssl_database.server.ca_path
    cli.set("SESSION_BUDDY_DATABASE_URL", f"{ssl_database.url}?{options.format(ca=ca)}")
    result = cli.run("auth", "status")
    assert result.exit_code == exit_code, result.output


def test_no_ssl_against_an_ssl_only_server_says_to_ask_for_it(
    cli: CliEnv, ssl_database: PgFixture
) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", ssl_database.url + "?sslmode=disable")
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "has no entry for this address, user and database" in line
    assert "add sslmode=require to the URL" in line


def test_an_unverifiable_certificate_says_to_name_the_ca(
    cli: CliEnv, ssl_database: PgFixture, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(b"")  # no CA at all: nothing can be verified
    url = f"{ssl_database.url}?sslmode=verify-full&sslrootcert={other_ca}"
    cli.set("SESSION_BUDDY_DATABASE_URL", url)
    result = cli.run("auth", "status")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "certificate could not be verified" in line and "sslrootcert=" in line
