"""``session-buddy serve`` on a PostgreSQL it cannot use: exit 1, one line, no password.

Each fault is the real command as a subprocess against the session's PostgreSQL server (or
a port where nothing listens), one per way a start can fail: connecting, migrating,
building the runtime, reading the URL. The one line names ``host:port/dbname`` and says
what is wrong and what to do; before it, only the log lines of what the server was doing
(a migration announces itself); no traceback, and the password — plain or URL-escaped —
appears nowhere in the output.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from session_buddy.store.migrations import HEAD
from testkit.environment import new_secret, server_environment
from testkit.postgres import PostgresServer
from testkit.pytest_postgres import PostgresDatabase as PgFixture
from testkit.pytest_postgres import fresh_database
from testkit.server import SERVE, STARTUP_TIMEOUT, free_port

pytestmark = pytest.mark.e2e

NASTY_PASSWORD = "p@ss:w/rd?#%25 ü"
URL_FIX = "set SESSION_BUDDY_DATABASE_URL to postgresql://user:password@host:port/dbname"
URL_FILE_FIX = "make the file readable and put the postgresql:// URL in it"


@dataclass(frozen=True)
class Fault:
    """A configuration that cannot work, the one line ``serve`` must answer, and the log
    lines (``LEVEL logger: message``) it may write first, at the default level."""

    settings: dict[str, str]
    line: str
    logged: tuple[str, ...] = ()


def unreachable(pg: PgFixture, tmp_path: Path) -> Fault:
    port = free_port()
    url = f"postgresql://{pg.user}:{quote(pg.password, safe='')}@127.0.0.1:{port}/{pg.dbname}"
    return Fault(
        {"SESSION_BUDDY_DATABASE_URL": url},
        f"❌ PostgreSQL at 127.0.0.1:{port}/{pg.dbname}: cannot connect (connection failed: "
        f'connection to server at "127.0.0.1", port {port} failed: Connection refused) — '
        "fix: check that PostgreSQL is running and reachable at that address",
    )


def wrong_password(pg: PgFixture, tmp_path: Path) -> Fault:
    return Fault(
        {"SESSION_BUDDY_DATABASE_URL": pg.url_with(password=pg.password + "-wrong")},
        f"❌ {where(pg)}: the password was refused (password authentication failed for user "
        f'"{pg.user}") — fix: check the user and password in SESSION_BUDDY_DATABASE_URL',
    )


def no_create(pg: PgFixture, tmp_path: Path) -> Fault:
    pg.forbid_create()
    return Fault(
        {"SESSION_BUDDY_DATABASE_URL": pg.url},
        f"❌ {where(pg)}: permission denied creating the schema (permission denied for schema "
        "public) — fix: GRANT CREATE ON SCHEMA public (or make the URL's user own the "
        "database) so session-buddy can create its tables",
        (f"INFO session_buddy.store.migrations: migrating the database schema to revision {HEAD}",),
    )


def malformed_url(pg: PgFixture, tmp_path: Path) -> Fault:
    url = f"postgresql://{pg.user}:{quote(pg.password, safe='')}@{pg.server.host}:port/db"
    return Fault(
        {"SESSION_BUDDY_DATABASE_URL": url},
        f"❌ SESSION_BUDDY_DATABASE_URL is not a valid URL — fix: {URL_FIX}",
    )


def unreadable_url_file(pg: PgFixture, tmp_path: Path) -> Fault:
    directory = tmp_path / "db-url"
    directory.mkdir()
    return Fault(
        {"SESSION_BUDDY_DATABASE_URL_FILE": str(directory)},
        f"❌ SESSION_BUDDY_DATABASE_URL_FILE {directory} cannot be read: Is a directory — "
        f"fix: {URL_FILE_FIX}",
    )


def where(pg: PgFixture, dbname: str | None = None) -> str:
    return f"PostgreSQL at {pg.server.host}:{pg.server.port}/{dbname or pg.dbname}"


FAULTS: list[Callable[[PgFixture, Path], Fault]] = [
    unreachable,  # connecting fails (so do a refused password, a missing database, no CONNECT:
    wrong_password,  # tests/store/test_postgres_faults pins each of their messages)
    no_create,  # migrating fails
    malformed_url,  # the runtime cannot even be built
    unreadable_url_file,  # nor can the settings give a URL (an empty file: tests/cli)
]
# Logging everything there is to log: still the fault's line last, and no password anywhere.
DEBUG_FAULTS = [wrong_password, no_create]


@dataclass(frozen=True)
class Startup:
    """What one ``serve`` did with one fault."""

    fault: Fault
    directory: Path
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def startups(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Startup]]:
    """Every fault's ``serve`` (and a few again at DEBUG), all started at once, each with its
    own database and directory: interpreter start-ups in parallel, not one after another."""
    with contextlib.ExitStack() as stack:
        launched: dict[str, tuple[Fault, Path, subprocess.Popen[str]]] = {}
        try:
            runs = [(make, ()) for make in FAULTS]
            runs += [(make, ("--log-level", "DEBUG")) for make in DEBUG_FAULTS]
            for make, args in runs:
                name = make.__name__ + ("@DEBUG" if args else "")
                pg = stack.enter_context(fresh_database(postgres_server))
                directory = tmp_path_factory.mktemp(name)
                fault = make(pg.with_password(NASTY_PASSWORD), directory)
                env = server_environment(directory / "data", new_secret(), **fault.settings)
                process = subprocess.Popen(
                    [*SERVE, "--transport", "http", "--port", str(free_port()), *args],
                    env=env,
                    cwd=directory,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                launched[name] = (fault, directory, process)
            results = {}
            for name, (fault, directory, process) in launched.items():
                stdout, stderr = process.communicate(timeout=STARTUP_TIMEOUT)
                results[name] = Startup(fault, directory, process.returncode, stdout, stderr)
        finally:
            for _, _, process in launched.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
        yield results


@pytest.mark.parametrize("fault", [f.__name__ for f in FAULTS])
def test_serve_stops_with_a_line_naming_the_database_and_never_the_password(
    fault: str, startups: dict[str, Startup]
) -> None:
    startup = startups[fault]

    *logged, last = startup.stderr.splitlines()

    assert startup.returncode == 1
    assert last == startup.fault.line
    assert [line.split(" ", 2)[2] for line in logged] == list(startup.fault.logged)
    assert startup.stdout == ""
    for spelling in (NASTY_PASSWORD, quote(NASTY_PASSWORD, safe="")):
        assert spelling not in startup.stderr
    assert not (startup.directory / "data").exists()  # no SQLite instead: the URL was meant


@pytest.mark.parametrize("fault", [f.__name__ for f in DEBUG_FAULTS])
def test_at_debug_level_the_log_ends_with_the_line_and_never_shows_the_password(
    fault: str, startups: dict[str, Startup]
) -> None:
    startup = startups[f"{fault}@DEBUG"]

    assert startup.returncode == 1
    assert startup.stderr.splitlines()[-1] == startup.fault.line
    assert "Traceback" not in startup.stderr
    for spelling in (NASTY_PASSWORD, quote(NASTY_PASSWORD, safe="")):
        assert spelling not in startup.stderr
