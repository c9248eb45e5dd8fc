"""The CLI on a configured database URL: it names the backend, says what is wrong in one
line, and never shows the password — plain or URL-escaped, in any output, ``--json`` too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from session_buddy.store.postgres import PostgresDatabase
from testkit.cli import CliEnv
from testkit.cli import table_row as row
from testkit.pytest_postgres import PostgresDatabase as PgFixture
from testkit.tokens import mint

NASTY_PASSWORD = "p@ss:w/rd?#%25 ü"
MALFORMED = f"postgresql://sb:{quote(NASTY_PASSWORD, safe='')}@db.internal:port/sb"
URL_FIX = "set SESSION_BUDDY_DATABASE_URL to postgresql://user:password@host:port/dbname"


def assert_no_password(*outputs: str) -> None:
    for output in outputs:
        assert NASTY_PASSWORD not in output
        assert quote(NASTY_PASSWORD, safe="") not in output


@pytest.fixture
def pg(postgres_database: PgFixture) -> Iterator[PgFixture]:
    """The test database with a password that needs escaping, its schema created."""
    pg = postgres_database.with_password(NASTY_PASSWORD)
    PostgresDatabase(pg.url).open().close()
    yield pg


def test_auth_status_names_postgresql_by_host_port_database_and_user(
    cli: CliEnv, pg: PgFixture
) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", pg.url)

    result = cli.run("auth", "status")

    assert result.exit_code == 0, result.output
    assert row(result.stdout, "Database") == (
        f"PostgreSQL at {pg.server.host}:{pg.server.port}/{pg.dbname} (user {pg.user})"
    )
    assert row(result.stdout, "Revoked tokens") == "0"
    assert_no_password(result.stdout, result.stderr)


def test_auth_status_names_the_sqlite_file_without_a_url(cli: CliEnv) -> None:
    result = cli.run("auth", "status")

    assert result.exit_code == 0, result.output
    assert re.sub(r"\s*│\s*", "", row(result.stdout, "Database")).startswith("SQLite file ")
    assert "session-buddy.db" in re.sub(r"[\s│]+", "", result.stdout)


def test_auth_status_with_a_refused_password_fails_with_the_cause_and_its_fix(
    cli: CliEnv, pg: PgFixture
) -> None:
    wrong = NASTY_PASSWORD + "-old"
    cli.set("SESSION_BUDDY_DATABASE_URL", pg.url_with(password=wrong))

    result = cli.run("auth", "status")

    assert result.exit_code == 1
    assert row(result.stdout, "Revoked tokens") == "unknown"
    assert result.stderr.splitlines() == [
        f"❌ PostgreSQL at {pg.server.host}:{pg.server.port}/{pg.dbname}: the password was "
        f'refused (password authentication failed for user "{pg.user}") (revocations cannot '
        "be checked, so every token is refused) — fix: check the user and password in "
        "SESSION_BUDDY_DATABASE_URL"
    ]
    for output in (result.stdout, result.stderr):
        assert wrong not in output and quote(wrong, safe="") not in output


def test_json_outputs_on_postgresql_never_show_the_password(cli: CliEnv, pg: PgFixture) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", pg.url)
    token = mint(cli.secret, "alice", unique=True)

    outputs = [
        cli.run("sessions", "list", "--json"),
        cli.run("token", "verify", "--json", token),
        cli.run("token", "revoke", token),
        cli.run("token", "verify", "--json", token),
    ]

    assert [result.exit_code for result in outputs] == [0, 0, 0, 1]
    assert '"total":0' in outputs[0].stdout.replace(" ", "")
    assert_no_password(*(r.stdout for r in outputs), *(r.stderr for r in outputs))


@pytest.mark.parametrize(
    "command",
    [
        ["token", "create", "alice"],
        ["token", "verify", "TOKEN"],
        ["token", "revoke", "TOKEN"],
        ["token", "refresh", "TOKEN"],
        ["envelope", "verify", "{}"],
        ["sessions", "list", "--json"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_malformed_url_is_one_line_for_every_command(cli: CliEnv, command: list[str]) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", MALFORMED)
    token = mint(cli.secret, "alice")

    result = cli.run(*[token if part == "TOKEN" else part for part in command])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not a traceback
    assert result.stderr.splitlines() == [
        f"❌ SESSION_BUDDY_DATABASE_URL is not a valid URL — fix: {URL_FIX}"
    ]
    assert_no_password(result.stdout, result.stderr)


def test_auth_status_shows_a_malformed_url_with_the_url_fix(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", MALFORMED)

    result = cli.run("auth", "status")

    assert result.exit_code == 1
    assert row(result.stdout, "Database") == "unusable"
    assert result.stderr.splitlines() == [
        f"❌ SESSION_BUDDY_DATABASE_URL is not a valid URL — fix: {URL_FIX}"
    ]
    assert_no_password(result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("content", "problem"),
    [("\n", "is empty"), (None, "cannot be read: No such file or directory")],
    ids=["empty", "missing"],
)
def test_auth_status_shows_a_url_file_that_gives_no_url(
    cli: CliEnv, content: str | None, problem: str
) -> None:
    url_file = cli.cwd / "db-url"
    if content is not None:
        url_file.write_text(content)
    cli.set("SESSION_BUDDY_DATABASE_URL_FILE", str(url_file))

    result = cli.run("auth", "status")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"❌ SESSION_BUDDY_DATABASE_URL_FILE {url_file} {problem} — fix: make the file "
        "readable and put the postgresql:// URL in it"
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["token", "verify", "TOKEN"],
        ["token", "revoke", "TOKEN"],
        ["sessions", "list"],
        ["sessions", "show", "abcdef12"],
        ["envelope", "verify", "{}"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_database_that_is_down_is_named_with_the_fix_for_it(
    cli: CliEnv, pg: PgFixture, command: list[str]
) -> None:
    cli.set("SESSION_BUDDY_DATABASE_URL", pg.url)
    token = mint(cli.secret, "alice", unique=True)
    pg.server.stop()  # the fixture starts it again

    result = cli.run(*[token if part == "TOKEN" else part for part in command])

    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert f"PostgreSQL at {pg.server.host}:{pg.server.port}/{pg.dbname}: " in line
    assert line.endswith("— fix: check that PostgreSQL is running and reachable at that address"), (
        line
    )
    assert_no_password(result.stdout, result.stderr)
