"""A database a newer session-buddy migrated: every entry point refuses it, saying so, and
leaves it untouched — ``serve`` (stdio and HTTP, as a real process) and the CLI commands
that open the database, on SQLite and on a real PostgreSQL. Never a silent downgrade, never
a write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.store import migrations
from session_buddy.store.revocations import RevocationRepository
from session_buddy.store.urls import describe_url
from testkit.cli import CliEnv
from testkit.environment import server_environment
from testkit.pytest_postgres import PostgresDatabase
from testkit.server import run_server
from testkit.store import contents, database_at, is_postgres_url
from testkit.tokens import mint

NEWER = "9999"
FIX = "fix: upgrade session-buddy to the version the other instances run"


@dataclass
class NewerDatabase:
    """A database at revision :data:`NEWER`, configured for the CLI (and a server)."""

    location: str
    settings: dict[str, str]
    before: dict[str, list[tuple[object, ...]]]
    file_before: bytes | None

    @property
    def refusal(self) -> str:
        """What every refusal says, whatever it adds around it."""
        where = describe_url(self.location) if is_postgres_url(self.location) else self.location
        return (
            f"database {where} has schema revision {NEWER}, newer than this session-buddy "
            f"knows (up to {migrations.HEAD}); upgrade session-buddy on this machine"
        )

    def untouched(self) -> bool:
        same_file = self.file_before is None or Path(self.location).read_bytes() == self.file_before
        return same_file and contents(self.location) == self.before


def migrated_by_a_newer_version(location: str) -> None:
    database = database_at(location).open()
    RevocationRepository(database).record("jti:kept", expires_at=9e9, now=1.0)
    with database.transaction() as conn:
        conn.execute(f"UPDATE {migrations.VERSION_TABLE} SET version_num = ?", (NEWER,))
    database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def newer(request: pytest.FixtureRequest, cli: CliEnv) -> Iterator[NewerDatabase]:
    if request.param == "postgresql":
        pg: PostgresDatabase = request.getfixturevalue("postgres_database")
        location = pg.url
        settings = {"SESSION_BUDDY_DATABASE_URL": location}
    else:
        location = str(cli.data_dir / "session-buddy.db")
        settings = {}
    migrated_by_a_newer_version(location)
    for name, value in settings.items():
        cli.set(name, value)
    file_before = None if is_postgres_url(location) else Path(location).read_bytes()
    yield NewerDatabase(location, settings, contents(location), file_before)


@pytest.mark.e2e
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_serve_refuses_to_start_on_a_newer_schema(
    newer: NewerDatabase, cli: CliEnv, tmp_path: Path, transport: str
) -> None:
    env = server_environment(cli.data_dir, cli.secret, **newer.settings)

    result = run_server(env, tmp_path, "--transport", transport, "--port", "1")

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"❌ {newer.refusal} — {FIX}"
    assert "Traceback" not in result.stderr
    assert newer.untouched()


@pytest.mark.parametrize(
    "command",
    [
        ["sessions", "list"],
        ["audit", "list"],
        ["auth", "status"],
        ["token", "revoke", "TOKEN"],
        ["envelope", "verify", "ENVELOPE"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_cli_commands_refuse_a_newer_schema(
    newer: NewerDatabase, cli: CliEnv, command: list[str]
) -> None:
    envelope = CrossProjectAuth(cli.secret).sign_envelope("mahavishnu", "session-buddy", {})
    values = {"TOKEN": mint(cli.secret, "alice"), "ENVELOPE": json.dumps(envelope)}

    result = cli.run(*(values.get(arg, arg) for arg in command))

    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert newer.refusal in last
    assert last.startswith("❌ ")
    assert last.endswith(FIX)
    assert newer.untouched()


def test_db_copy_refuses_a_sqlite_source_with_a_newer_schema(
    cli: CliEnv, postgres_database: PostgresDatabase
) -> None:
    source = str(cli.data_dir / "session-buddy.db")
    migrated_by_a_newer_version(source)
    before = contents(source)

    result = cli.run("db", "copy", "--to", postgres_database.url)

    assert result.exit_code == 1
    assert f"❌ database {source} has schema revision {NEWER}, newer" in result.stderr
    assert contents(source) == before
    assert contents(postgres_database.url) == {}


def test_db_copy_refuses_a_postgresql_target_with_a_newer_schema(
    cli: CliEnv, postgres_database: PostgresDatabase
) -> None:
    source = database_at(str(cli.data_dir / "session-buddy.db")).open()
    RevocationRepository(source).record("jti:to-copy", expires_at=9e9, now=1.0)
    source.close()
    migrated_by_a_newer_version(postgres_database.url)
    before = contents(postgres_database.url)

    result = cli.run("db", "copy", "--to", postgres_database.url)

    assert result.exit_code == 1
    where = describe_url(postgres_database.url)
    assert f"❌ database {where} has schema revision {NEWER}, newer" in result.stderr
    assert contents(postgres_database.url) == before
