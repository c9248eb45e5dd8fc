"""``session-buddy db copy``: a SQLite deployment's data into a real PostgreSQL.

The source is a data dir the real server filled with every kind of row
(:mod:`testkit.populated`); the command runs as a subprocess, reading the URL from a file.
Every row arrives (checkpoints and audit rows renumbered by PostgreSQL, in their order), a
second run changes nothing and says so, a server on PostgreSQL serves the copied sessions
and refuses the copied revocation — one that was running before the copy too — and a target
holding other data under the same keys is refused with nothing written.
"""

from __future__ import annotations

import collections
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from session_buddy.store import migrations
from session_buddy.store.copy import DERIVED, TABLES
from testkit.clock import seconds_until
from testkit.damage import change_in_page, root_page
from testkit.environment import new_secret, server_environment
from testkit.mcp import connected, ok, text_of
from testkit.populated import REVOKED, Populated, populate
from testkit.processes import run_python
from testkit.pytest_postgres import PostgresDatabase
from testkit.server import launch_http_server
from testkit.store import contents, raw_query, table_names

pytestmark = pytest.mark.e2e

DATABASE = "session-buddy.db"
NOTICE_BOUND = 5.0  # a copied revocation reaches a running instance (NOTIFY; loaded machine)


@dataclass
class Move:
    """A SQLite deployment (stopped) and the PostgreSQL database it moves to."""

    data_dir: Path
    root: Path
    populated: Populated
    pg: PostgresDatabase
    url_file: Path

    @property
    def database(self) -> Path:
        return self.data_dir / DATABASE

    def copy(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``db copy`` with the URL from ``SESSION_BUDDY_DATABASE_URL_FILE`` (or ``args``)."""
        settings = {} if args else {"SESSION_BUDDY_DATABASE_URL_FILE": str(self.url_file)}
        env = server_environment(self.data_dir, self.populated.secret, **settings)
        result = run_python("-m", "session_buddy", "db", "copy", *args, cwd=self.root, env=env)
        assert self.pg.password not in result.stdout + result.stderr
        return result

    def on_postgresql(self, tmp: Path) -> dict[str, str]:
        """A server's environment on the PostgreSQL database (its own empty data dir)."""
        return server_environment(
            tmp / "pg-data", self.populated.secret, SESSION_BUDDY_DATABASE_URL=self.pg.url
        )


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Populated]:
    """A SQLite data dir with every kind of row, made once for the module."""
    root = tmp_path_factory.mktemp("filled")
    env = server_environment(root / "data", new_secret())
    return root / "data", populate(env, root)


@pytest.fixture
def move(
    filled: tuple[Path, Populated], postgres_database: PostgresDatabase, tmp_path: Path
) -> Move:
    data_dir, populated = filled
    shutil.copytree(data_dir, tmp_path / "data")
    url_file = tmp_path / "db-url"
    url_file.write_text(postgres_database.url + "\n")
    url_file.chmod(0o600)
    return Move(tmp_path / "data", tmp_path, populated, postgres_database, url_file)


def sqlite_rows(path: Path, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        listed = ", ".join(columns)
        return conn.execute(f"SELECT {listed} FROM {table} ORDER BY rowid").fetchall()


def postgres_rows(url: str, table: str, columns: list[str], order: str) -> list[tuple[Any, ...]]:
    listed = ", ".join(columns)
    return raw_query(url, f"SELECT {listed} FROM {table} ORDER BY {order}")


def copied_columns(
    path: Path, table: str, counter: str | None, bookkeeping: tuple[str, ...]
) -> list[str]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        names = [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]
    return [name for name in names if name != counter and name not in bookkeeping]


def table_lines(output: str) -> dict[str, list[int]]:
    """The report's rows: table → [in SQLite, copied, already there, in PostgreSQL]."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if len(cells) == 5 and cells[1].isdigit():
            rows[cells[0]] = [int(cell) for cell in cells[1:]]
    return rows


def test_every_table_of_the_schema_is_copied_or_derived() -> None:
    assert {table.name for table in TABLES} | set(DERIVED) == set(migrations.TABLES)


def test_copy_moves_every_row_and_a_second_run_changes_nothing(move: Move) -> None:
    first = move.copy()
    after_first = contents(move.pg.url)
    second = move.copy()

    assert first.returncode == 0, first.stderr
    copied = table_lines(first.stdout)
    for table in TABLES:
        columns = copied_columns(move.database, table.name, table.counter, table.bookkeeping)
        source = sqlite_rows(move.database, table.name, columns)
        target = postgres_rows(move.pg.url, table.name, columns, table.counter or "1")
        assert source, f"the populated deployment has no {table.name}"
        if table.counter:  # renumbered by PostgreSQL, in the SQLite order
            assert target == source, table.name
        else:
            assert collections.Counter(target) == collections.Counter(source), table.name
        assert copied[table.name] == [len(source), len(source), 0, len(source)], table.name
    revoked = {row[0] for row in sqlite_rows(move.database, "revoked_tokens", ["token_key"])}
    logged = {row[0] for row in raw_query(move.pg.url, "SELECT token_key FROM revocation_log")}
    assert logged == revoked
    # the copied sessions are counted: every user's total reads no uncounted row
    sessions = len(sqlite_rows(move.database, "sessions", ["id"]))
    assert raw_query(move.pg.url, "SELECT sessions FROM session_totals") == [(sessions,)]
    assert raw_query(move.pg.url, "SELECT COUNT(*) FROM sessions WHERE counted = 0") == [(0,)]
    assert "verified there; 1 revocation pushed to running instances." in first.stdout
    assert second.returncode == 0, second.stderr
    assert "Nothing to copy: PostgreSQL at " in second.stdout
    assert all(row[1:3] == [0, row[0]] for row in table_lines(second.stdout).values())
    assert contents(move.pg.url) == after_first


def test_a_server_on_postgresql_serves_the_copied_sessions_and_refuses_the_copied_revocation(
    move: Move, tmp_path: Path
) -> None:
    populated = move.populated
    with (
        launch_http_server(move.on_postgresql(tmp_path), tmp_path) as server,
        connected(server.url) as client,
    ):
        # Running before the copy: the token is still good here.
        ok(client.call("whoami", token=populated.revoked))
        copied = move.copy()
        seconds_until(
            lambda: text_of(client.call("whoami", token=populated.revoked)) == REVOKED,
            NOTICE_BOUND,
            0.05,
            what="the running server to refuse the copied revocation",
        )
        active = str(populated.active_project)
        status = ok(client.call("session_status", working_directory=active,
                                token=populated.alice))  # fmt: skip
        listed = ok(client.call("list_sessions", token=populated.alice))
        ended = ok(client.call("end_session", working_directory=active, summary="moved",
                               token=populated.alice))  # fmt: skip
    with (
        launch_http_server(move.on_postgresql(tmp_path), tmp_path) as restarted,
        connected(restarted.url) as client,
    ):
        refused_after_restart = client.call("whoami", token=populated.revoked)

    assert copied.returncode == 0, copied.stderr
    assert status["session"]["id"] == populated.active_session
    assert status["session"]["checkpoint_count"] == 1
    assert {s["id"] for s in listed["sessions"]} == {
        populated.active_session,
        populated.finished_session,
    }
    assert "## Checkpoints (1)" in ended["markdown"]
    assert text_of(refused_after_restart) == REVOKED


def test_a_target_holding_other_data_under_the_same_key_is_refused_and_left_as_it_was(
    move: Move,
) -> None:
    assert move.copy().returncode == 0
    with psycopg.connect(move.pg.url) as conn:
        conn.execute(
            "UPDATE sessions SET summary = 'edited in PostgreSQL' WHERE id = %s",
            (move.populated.finished_session,),
        )
    with closing(sqlite3.connect(move.database)) as conn, conn:
        conn.execute("INSERT INTO revoked_tokens VALUES ('jti:new-in-sqlite', 9e9, 1.0)")
    before = contents(move.pg.url)

    refused = move.copy()

    assert refused.returncode == 1
    assert f"sessions id='{move.populated.finished_session}' (summary differs)" in refused.stderr
    assert "nothing was copied — fix: copy into an empty database;" in refused.stderr
    assert contents(move.pg.url) == before  # not even the new revocation


def test_an_active_session_of_the_same_user_and_project_in_postgresql_is_a_conflict(
    move: Move, tmp_path: Path
) -> None:
    populated = move.populated
    with (
        launch_http_server(move.on_postgresql(tmp_path), tmp_path) as server,
        connected(server.url) as client,
    ):
        theirs = ok(client.call("start_session", working_directory=str(populated.active_project),
                                token=populated.alice))  # fmt: skip
    before = contents(move.pg.url)

    refused = move.copy()

    assert refused.returncode == 1
    assert (
        f"sessions id='{populated.active_session}' (its user's session '{theirs['id']}' in the "
        "same project is active in PostgreSQL)"
    ) in refused.stderr
    assert contents(move.pg.url) == before


def test_copy_is_refused_while_a_server_has_the_sqlite_file_open(move: Move) -> None:
    env = server_environment(move.data_dir, move.populated.secret)
    with launch_http_server(env, move.root):
        refused = move.copy()

    assert refused.returncode == 1
    assert f"another process has {move.database} open (a running server?)" in refused.stderr
    assert table_names(move.pg.url) == set()  # not even migrated


def test_a_damaged_sqlite_file_is_refused_before_anything_is_copied(move: Move) -> None:
    """The whole file is checked first: damage a start would not notice (an index that no
    longer matches its table) stops the copy, naming it, before PostgreSQL is touched."""
    index = root_page(move.database, "sessions_by_user")
    change_in_page(move.database, index, "bob", "bop")  # bob's session, indexed as bop's

    refused = move.copy()

    assert refused.returncode == 1
    assert f"database {move.database} failed its integrity check (row " in refused.stderr
    assert "missing from index sessions_by_user" in refused.stderr
    assert table_names(move.pg.url) == set()  # not even migrated


def test_the_url_on_the_command_line_works_with_a_warning(move: Move) -> None:
    copied = move.copy("--to", move.pg.url)

    assert copied.returncode == 0, copied.stderr
    assert copied.stderr.startswith(
        "⚠️ --to puts the database password on the command line: prefer --to-file."
    )


def test_the_url_from_a_file_named_on_the_command_line(move: Move) -> None:
    copied = move.copy("--to-file", str(move.url_file))

    assert copied.returncode == 0, copied.stderr
    assert "⚠️" not in copied.stderr


def test_without_a_postgresql_url_the_copy_says_how_to_give_one(move: Move) -> None:
    env = server_environment(move.data_dir, move.populated.secret)
    result = run_python("-m", "session_buddy", "db", "copy", cwd=move.root, env=env)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "❌ No PostgreSQL database to copy to — fix: pass --to-file FILE (or --to URL), or set "
        "SESSION_BUDDY_DATABASE_URL_FILE"
    ]


def test_without_a_sqlite_database_there_is_nothing_to_copy(move: Move, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = move.copy("--to-file", str(move.url_file), "--from", str(missing))

    assert result.returncode == 1
    assert f"no SQLite database at {missing} (nothing to copy)" in result.stderr
    assert not missing.exists()
