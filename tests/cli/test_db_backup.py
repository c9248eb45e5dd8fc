"""``session-buddy db backup`` and ``db restore``, on a real deployment's database.

SQLite: the real command as a subprocess against a data dir the real server filled
(:mod:`testkit.populated`); a restore brings every table back row for row — sessions,
checkpoints, revocations and their log, envelope nonces, throttle counts and blocks, the
audit trail — and a server started on it serves the sessions and refuses the revoked token.
PostgreSQL: the ``pg_dump`` command ``db backup`` prints is run as printed (the real
``pg_dump``), and the ``pg_restore`` command ``db restore`` prints brings it back, into a
new database and in place.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from session_buddy.store import SqliteDatabase, migrations
from session_buddy.store.backup import backup_sqlite
from session_buddy.store.revocations import RevocationRepository
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.mcp import connected, ok, text_of
from testkit.populated import REVOKED, Populated, populate
from testkit.postgres import PostgresServer
from testkit.processes import run_python
from testkit.pytest_postgres import fresh_database
from testkit.server import launch_http_server
from testkit.store import contents, raw_query
from testkit.tokens import mint

pytestmark = pytest.mark.e2e

DATABASE = "session-buddy.db"
BACKUPS_WHILE_WRITING = 3


@dataclass
class Deployment:
    """A stopped deployment: its configuration and what the real server put in it."""

    env: dict[str, str]
    root: Path
    populated: Populated
    password: str | None = None  # PostgreSQL's

    @property
    def database(self) -> Path:
        return Path(self.env["SESSION_BUDDY_DATA_DIR"]) / DATABASE

    @property
    def location(self) -> str:
        return self.env.get("SESSION_BUDDY_DATABASE_URL") or str(self.database)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_python("-m", "session_buddy", *args, cwd=self.root, env=self.env)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A SQLite data dir with every kind of row, made once for the module."""
    root = tmp_path_factory.mktemp("filled")
    env = server_environment(root / "data", new_secret())
    return Deployment(env, root, populate(env, root))


@pytest.fixture
def deployment(filled: Deployment, tmp_path: Path) -> Deployment:
    """A copy of the filled data dir, this test's to change."""
    shutil.copytree(filled.database.parent, tmp_path / "data")
    env = server_environment(tmp_path / "data", filled.populated.secret)
    return Deployment(env, tmp_path, filled.populated)


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


def serves_the_sessions_and_refuses_the_revoked_token(deployment: Deployment) -> None:
    """A real server on the deployment: alice's sessions are there, the revoked token is
    refused, and a new revocation is logged after every one before it."""
    populated = deployment.populated
    log_before = raw_query(deployment.location, "SELECT MAX(seq) FROM revocation_log")[0][0]
    with (
        launch_http_server(deployment.env, deployment.root) as server,
        connected(server.url) as client,
    ):
        active = str(populated.active_project)
        status = ok(client.call("session_status", working_directory=active,
                                token=populated.alice))  # fmt: skip
        listed = ok(client.call("list_sessions", token=populated.alice))
        refused = client.call("whoami", token=populated.revoked)
    assert status["session"]["id"] == populated.active_session
    assert {s["id"] for s in listed["sessions"]} == {
        populated.active_session,
        populated.finished_session,
    }
    assert refused.is_error
    assert text_of(refused) == REVOKED
    assert deployment.cli("token", "revoke", populated.alice).returncode == 0
    log_after = raw_query(deployment.location, "SELECT MAX(seq) FROM revocation_log")[0][0]
    assert log_after > log_before


# -- SQLite --------------------------------------------------------------------------------


def test_a_backup_is_private_and_restoring_it_brings_every_table_back_row_for_row(
    deployment: Deployment, tmp_path: Path
) -> None:
    before = contents(str(deployment.database))
    backup = tmp_path / "backups" / "sb.db"
    backup.parent.mkdir()

    made = deployment.cli("db", "backup", str(backup))
    assert made.returncode == 0, made.stderr
    assert mode_of(backup) == 0o600
    assert contents(str(backup)) == before
    assert f"to {backup} (schema revision {migrations.HEAD}: 3 sessions, 3 checkpoints, " in (
        made.stdout
    )
    # What happens after the backup: a revocation, and lost checkpoints.
    assert deployment.cli("token", "revoke", deployment.populated.alice).returncode == 0
    with closing(sqlite3.connect(deployment.database)) as conn, conn:
        conn.execute("DELETE FROM checkpoints")
    changed = contents(str(deployment.database))

    refused = deployment.cli("db", "restore", str(backup))
    restored = deployment.cli("db", "restore", str(backup), "--force")

    assert refused.returncode == 1
    assert f"{deployment.database} holds data already (3 sessions, 2 revoked tokens" in (
        refused.stderr
    )
    assert "pass --force to replace it" in refused.stderr
    assert changed != before
    assert restored.returncode == 0, restored.stderr
    assert f"Restored {backup} into {deployment.database}" in restored.stdout
    assert contents(str(deployment.database)) == before
    serves_the_sessions_and_refuses_the_revoked_token(deployment)


def test_backups_taken_while_a_server_writes_are_each_one_consistent_moment(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    env = server_environment(tmp_path / "data", secret)
    project = str(make_git_repo(tmp_path / "project"))
    stop = threading.Event()
    failures: list[BaseException] = []

    def sessions(url: str) -> None:
        with connected(url) as client:
            n = 0
            while not stop.is_set():
                token = mint(secret, f"user-{n}")
                ok(client.call("start_session", working_directory=project, token=token))
                ok(client.call("checkpoint", working_directory=project, token=token))
                ok(client.call("end_session", working_directory=project, token=token))
                n += 1

    def revocations() -> None:  # a second writer: this process, as the CLI would
        database = SqliteDatabase(tmp_path / "data" / DATABASE).open()
        try:
            repository = RevocationRepository(database)
            n = 0
            while not stop.is_set():
                repository.record(f"jti:{n}", expires_at=time.time() + 3600, now=time.time())
                n += 1
                time.sleep(0.01)
        finally:
            database.close()

    def guarded(work: Callable[..., None], *args: object) -> None:
        try:
            work(*args)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    backups = [tmp_path / f"backup-{n}.db" for n in range(BACKUPS_WHILE_WRITING)]
    with launch_http_server(env, tmp_path) as server:
        writers = [
            threading.Thread(target=guarded, args=(sessions, server.url)),
            threading.Thread(target=guarded, args=(revocations,)),
        ]
        for writer in writers:
            writer.start()
        try:
            for backup in backups:
                made = run_python("-m", "session_buddy", "db", "backup", str(backup),
                                  cwd=tmp_path, env=env)  # fmt: skip
                assert made.returncode == 0, made.stderr
        finally:
            stop.set()
            for writer in writers:
                writer.join(60)
        final = tmp_path / "final.db"
        last = run_python("-m", "session_buddy", "db", "backup", str(final), cwd=tmp_path, env=env)
        assert last.returncode == 0, last.stderr
        live = contents(str(tmp_path / "data" / DATABASE))
        backed_up = contents(str(final))

    assert failures == []
    counts = []
    for backup in backups:
        with closing(sqlite3.connect(backup)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            revoked, logged, started = conn.execute(
                "SELECT (SELECT COUNT(*) FROM revoked_tokens), "
                "(SELECT COUNT(*) FROM revocation_log), (SELECT COUNT(*) FROM sessions)"
            ).fetchone()
        assert revoked == logged  # one transaction writes both: never half of it
        counts.append(started)
    assert counts == sorted(counts)
    assert counts[-1] > 0
    # What the writers wrote is all there (the audit trail may still be on its way).
    for table in ("sessions", "checkpoints", "revoked_tokens", "revocation_log"):
        assert backed_up[table] == live[table]


def test_restore_is_refused_while_a_server_has_the_database_open(
    deployment: Deployment, tmp_path: Path
) -> None:
    backup = tmp_path / "sb.db"
    backup_sqlite(deployment.database, backup)
    assert deployment.cli("token", "revoke", deployment.populated.alice).returncode == 0
    revoked = raw_query(str(deployment.database), "SELECT * FROM revoked_tokens")

    with launch_http_server(deployment.env, deployment.root):
        refused = deployment.cli("db", "restore", str(backup), "--force")
        still = raw_query(str(deployment.database), "SELECT * FROM revoked_tokens")
    after_stop = deployment.cli("db", "restore", str(backup), "--force")

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"❌ another process has {deployment.database} open (a running server?) — fix: stop "
        "every session-buddy process on this data dir (servers, Claude Code's and "
        "Mahavishnu's stdio servers), then run it again"
    ]
    assert still == revoked
    assert after_stop.returncode == 0, after_stop.stderr
    assert contents(str(deployment.database)) == contents(str(backup))


def test_a_restore_after_a_server_was_killed_ignores_its_leftover_journal(
    deployment: Deployment, tmp_path: Path
) -> None:
    backup = tmp_path / "sb.db"
    backup_sqlite(deployment.database, backup)
    with launch_http_server(deployment.env, deployment.root) as server:
        assert deployment.cli("token", "revoke", deployment.populated.alice).returncode == 0
        server.kill()
    leftovers = [p.name for p in deployment.database.parent.iterdir()]

    restored = deployment.cli("db", "restore", str(backup), "--force")

    assert f"{DATABASE}-shm" in leftovers
    assert restored.returncode == 0, restored.stderr
    assert contents(str(deployment.database)) == contents(str(backup))


def test_restore_refuses_a_backup_from_a_newer_version_and_changes_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    backup = tmp_path / "sb.db"
    backup_sqlite(deployment.database, backup)
    with closing(sqlite3.connect(backup)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    before = deployment.database.read_bytes()

    refused = deployment.cli("db", "restore", str(backup), "--force")

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"❌ database {backup} has schema revision 9999, newer than this session-buddy knows "
        f"(up to {migrations.HEAD}); upgrade session-buddy on this machine — fix: upgrade "
        "session-buddy to the version the other instances run"
    ]
    assert deployment.database.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a database at all\n" * 100, "is not a readable SQLite database"),
        (None, "is not a session-buddy database (it has no schema revision)"),
    ],
)
def test_restore_refuses_a_file_that_is_not_a_backup(
    deployment: Deployment, tmp_path: Path, content: bytes | None, problem: str
) -> None:
    other = tmp_path / "other.db"
    if content is None:
        with closing(sqlite3.connect(other)) as conn:
            conn.execute("CREATE TABLE notes (text TEXT)")
    else:
        other.write_bytes(content)
    before = deployment.database.read_bytes()

    refused = deployment.cli("db", "restore", str(other), "--force")

    assert refused.returncode == 1
    assert problem in refused.stderr
    assert "Traceback" not in refused.stderr
    assert deployment.database.read_bytes() == before


def test_a_restore_into_an_empty_data_dir_creates_a_private_database(
    deployment: Deployment, tmp_path: Path
) -> None:
    backup = tmp_path / "sb.db"
    backup_sqlite(deployment.database, backup)
    fresh = Deployment(
        server_environment(tmp_path / "new" / "data", deployment.populated.secret),
        tmp_path,
        deployment.populated,
    )

    restored = fresh.cli("db", "restore", str(backup))

    assert restored.returncode == 0, restored.stderr
    assert mode_of(fresh.database) == 0o600
    assert contents(str(fresh.database)) == contents(str(backup))


def test_backup_never_replaces_a_file_unless_forced(deployment: Deployment, tmp_path: Path) -> None:
    existing = tmp_path / "existing.db"
    existing.write_text("keep me")
    existing.chmod(0o644)

    refused = deployment.cli("db", "backup", str(existing))
    kept = existing.read_text()
    forced = deployment.cli("db", "backup", str(existing), "--force")

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"❌ {existing} exists already — fix: choose another path, or pass --force"
    ]
    assert kept == "keep me"
    assert forced.returncode == 0, forced.stderr
    assert mode_of(existing) == 0o600
    assert contents(str(existing)) == contents(str(deployment.database))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_a_backup_is_0600_whatever_the_umask(deployment: Deployment, tmp_path: Path) -> None:
    backup = tmp_path / "open-umask.db"
    command = shlex.join([sys.executable, "-m", "session_buddy", "db", "backup", str(backup)])

    made = subprocess.run(["sh", "-c", f"umask 000 && exec {command}"], env=deployment.env,
                          capture_output=True, text=True, check=False)  # fmt: skip

    assert made.returncode == 0, made.stderr
    assert mode_of(backup) == 0o600


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("missing-dir/sb.db", "directory {tmp}/missing-dir does not exist"),
        (".", "{tmp} is a directory"),
        ("data/session-buddy.db", "{tmp}/data/session-buddy.db is the database itself"),
    ],
)
def test_backup_refuses_a_destination_it_cannot_or_must_not_write(
    deployment: Deployment, tmp_path: Path, target: str, problem: str
) -> None:
    refused = deployment.cli("db", "backup", str(tmp_path / target))

    assert refused.returncode == 1
    assert problem.format(tmp=tmp_path) in refused.stderr
    assert "Traceback" not in refused.stderr


def test_backup_without_a_database_says_there_is_nothing_to_back_up(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", new_secret())

    result = run_python("-m", "session_buddy", "db", "backup", str(tmp_path / "sb.db"),
                        cwd=tmp_path, env=env)  # fmt: skip

    assert result.returncode == 1
    assert f"no database at {tmp_path / 'data' / DATABASE} (nothing to back up)" in result.stderr
    assert not (tmp_path / "data").exists()


# -- PostgreSQL ----------------------------------------------------------------------------


def postgres_tool(
    server: PostgresServer, printed: subprocess.CompletedProcess[str], password: str
) -> subprocess.CompletedProcess[str]:
    """Run the one command line ``printed`` on stdout, with the server's binaries."""
    [line] = printed.stdout.splitlines()
    command = shlex.split(line)
    command[0] = str(server.bin_dir / command[0])
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


@pytest.fixture
def on_postgresql(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Deployment]:
    with fresh_database(postgres_server) as pg:
        env = server_environment(tmp_path / "data", new_secret(), SESSION_BUDDY_DATABASE_URL=pg.url)
        yield Deployment(env, tmp_path, populate(env, tmp_path), pg.password)


def test_pg_dump_and_pg_restore_as_printed_bring_every_table_back_row_for_row(
    on_postgresql: Deployment, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    source = on_postgresql
    assert source.password is not None
    password = source.password
    before = contents(source.location)
    dump = tmp_path / "sb.dump"

    printed = source.cli("db", "backup", str(dump))
    dumped = postgres_tool(postgres_server, printed, password)

    assert printed.returncode == 1
    assert shlex.split(printed.stdout)[:4] == [
        "pg_dump", "--format=custom", "--no-owner", "--no-privileges"
    ]  # fmt: skip
    assert [arg for arg in shlex.split(printed.stdout) if arg.startswith("--table=")] == [
        f"--table={table}" for table in migrations.TABLES
    ]
    assert "back it up with PostgreSQL's pg_dump, the command above" in printed.stderr
    assert password not in printed.stdout + printed.stderr
    assert dumped.returncode == 0, dumped.stderr
    with fresh_database(postgres_server) as other:
        into_new = Deployment(
            server_environment(tmp_path / "new", source.populated.secret,
                               SESSION_BUDDY_DATABASE_URL=other.url),
            tmp_path,
            source.populated,
        )  # fmt: skip
        printed_restore = into_new.cli("db", "restore", str(dump))
        restored = postgres_tool(postgres_server, printed_restore, other.password)

        assert printed_restore.returncode == 1
        assert shlex.split(printed_restore.stdout)[0] == "pg_restore"
        assert "after stopping every instance" in printed_restore.stderr
        assert restored.returncode == 0, restored.stderr
        assert contents(other.url) == before
        serves_the_sessions_and_refuses_the_revoked_token(into_new)
    # In place, over what changed since the dump.
    assert source.cli("token", "revoke", source.populated.alice).returncode == 0
    with psycopg.connect(source.location) as conn:
        conn.execute("DELETE FROM checkpoints")
    in_place = postgres_tool(postgres_server, source.cli("db", "restore", str(dump)), password)
    assert in_place.returncode == 0, in_place.stderr
    assert contents(source.location) == before
