"""``session-buddy db check``, and where a damaged page is reported on a real deployment.

A server's start reads only what costs the same at any size, so a page damaged deep in a
table does not stop it: the request that reads that page is refused with the storage
error naming the file (the others are served), and ``db check`` — every page and index,
while servers run — names the damaged table and exits 1. After the machine went down with
the file open, the start itself checks every page and refuses. Nothing is written to the
file by any of it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from session_buddy.store import SqliteDatabase, migrations
from session_buddy.store.sqlite import boot_time
from testkit.damage import change_in_page, damage_page, leave_log, page_holding, root_page
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.history import History, fill
from testkit.mcp import connected, ok, text_of
from testkit.processes import run_python
from testkit.server import launch_http_server, run_server
from testkit.store import raw_query
from testkit.tokens import mint

pytestmark = pytest.mark.e2e

HISTORY = History(users=5, sessions=50, checkpoints=2_000, audit=100, revoked=10)
MARKER = "the checkpoint on the damaged page"
MALFORMED = "database disk image is malformed"


def db_check(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    result = run_python("-m", "session_buddy", "db", "check", cwd=cwd, env=env, timeout=120)
    return result.returncode, result.stdout, result.stderr


def folded(path: Path) -> None:
    """Open and close the file: the last connection folds the log a server left into it."""
    SqliteDatabase(path).open().close()
    assert not path.with_name(path.name + "-wal").exists()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """A database with history, and a user whose session's last checkpoint (written by the
    real server) sits on a page of its own at the end of the table: (file, project,
    secret, token), made once for the module."""
    root = tmp_path_factory.mktemp("template")
    secret = new_secret()
    env = server_environment(root / "data", secret)
    database = root / "data" / "session-buddy.db"
    db = SqliteDatabase(database).open()
    fill(db, HISTORY)
    db.close()
    repo = make_git_repo(root / "project", "checked")
    token = mint(secret, "alice")
    with (
        launch_http_server(env, root, log_path=root / "server.log") as server,
        connected(server.url) as client,
    ):
        ok(client.call("start_session", working_directory=str(repo), token=token))
        ok(client.call("checkpoint", working_directory=str(repo), note=MARKER, token=token))
    folded(database)
    return database, repo, secret, token


@pytest.fixture
def deployment(
    template: tuple[Path, Path, str, str], tmp_path: Path
) -> tuple[dict[str, str], Path, Path, str]:
    """A stopped deployment of its own, a copy of the template: (env, file, project, token)."""
    source, repo, secret, token = template
    database = tmp_path / "data" / "session-buddy.db"
    database.parent.mkdir(mode=0o700)
    shutil.copyfile(source, database)
    return server_environment(database.parent, secret), database, repo, token


def test_a_damaged_page_refuses_only_the_request_that_reads_it_and_db_check_names_it(
    deployment: tuple[dict[str, str], Path, Path, str], tmp_path: Path
) -> None:
    env, database, repo, token = deployment
    page = page_holding(database, MARKER)
    assert page != root_page(database, "checkpoints")
    damage_page(database, page)

    with (
        launch_http_server(env, tmp_path, log_path=tmp_path / "second.log") as server,
        connected(server.url) as client,
    ):
        status = client.call("session_status", working_directory=str(repo), token=token)
        assert status.is_error
        assert text_of(status) == (
            f"❌ Storage unavailable: database {database} is corrupted or is not a "
            f"session-buddy database ({MALFORMED})"
        )
        assert ok(client.call("whoami", token=token))["user_id"] == "alice"
        assert ok(client.call("list_sessions", token=token))["total"] == 1
        code, stdout, stderr = db_check(env, tmp_path)  # while the server runs

    assert (code, stdout) == (1, "")
    assert (
        f"❌ database {database} failed its integrity check (table checkpoints: {MALFORMED})"
        in stderr
    )
    assert "session-buddy db restore PATH" in stderr
    # every other table is whole: the damage is the disk's, nothing was lost to the checks
    sessions = raw_query(str(database), "SELECT COUNT(*) FROM sessions")
    assert sessions == [(HISTORY.sessions + 1,)]


def test_after_the_machine_went_down_the_server_checks_every_page_before_serving(
    deployment: tuple[dict[str, str], Path, Path, str], tmp_path: Path
) -> None:
    env, database, _, _ = deployment
    damaged = damage_page(database, page_holding(database, MARKER))
    leave_log(database, boot_time() - 600)

    result = run_server(env, tmp_path)

    assert result.returncode == 1
    assert (
        f"database {database} failed its integrity check (table checkpoints: {MALFORMED})"
        in result.stderr
    )
    assert f"database {database} was open when this machine last went down" in result.stderr
    assert "Traceback" not in result.stderr
    assert database.read_bytes() == damaged


def test_db_check_on_a_sound_database_says_so(
    deployment: tuple[dict[str, str], Path, Path, str], tmp_path: Path
) -> None:
    env, database, _, _ = deployment
    before = database.read_bytes()

    code, stdout, stderr = db_check(env, tmp_path)

    assert code == 0, stderr
    assert f"✅ {database}: every page and index is sound (PRAGMA integrity_check)." in stdout
    assert database.read_bytes() == before


def test_db_check_finds_an_index_that_no_longer_matches_its_table(
    deployment: tuple[dict[str, str], Path, Path, str], tmp_path: Path
) -> None:
    env, database, _, _ = deployment
    change_in_page(database, root_page(database, "sessions_by_user"), "user-00004", "user-00009")

    code, _, stderr = db_check(env, tmp_path)

    assert code == 1
    assert f"❌ database {database} failed its integrity check (row " in stderr
    assert "missing from index sessions_by_user" in stderr


def test_db_check_without_a_database_says_there_is_nothing_to_check(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", new_secret())

    code, _, stderr = db_check(env, tmp_path)

    assert code == 1
    assert f"No database at {tmp_path / 'data' / 'session-buddy.db'} (nothing to check)" in stderr
    assert not (tmp_path / "data" / "session-buddy.db").exists()


def test_db_check_on_postgresql_checks_it_is_reachable_at_a_known_schema(
    postgres_url: str, tmp_path: Path
) -> None:
    env = server_environment(
        tmp_path / "data", new_secret(), SESSION_BUDDY_DATABASE_URL=postgres_url
    )

    code, stdout, stderr = db_check(env, tmp_path)

    assert code == 0, stderr
    assert f"reachable, schema at revision {migrations.HEAD}" in stdout
    assert "pg_amcheck" in stdout
    assert postgres_url.split("@")[0] not in stdout + stderr  # no password shown
