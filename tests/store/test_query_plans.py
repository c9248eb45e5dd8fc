"""The reads that must not grow with the tables use their indexes, on both backends.

Each test runs a repository's call on a database holding a small history
(:mod:`testkit.history`), records the SQL the repository sent, and asks the database how
it would run it (SQLite ``EXPLAIN QUERY PLAN``; PostgreSQL ``EXPLAIN (FORMAT JSON)`` after
``VACUUM ANALYZE``, so its planner sees tables worth an index). Where PostgreSQL would
rightly scan a table this small, the test says so and turns sequential scans off
(``enable_seqscan = off``) to ask the honest question: *can* the index serve the query? A
condition no index can serve (a volatile function) is scanned whatever the settings. How
fast anything is, is measured by ``make bench`` (the growth part), never here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from session_buddy.store import Database, SqliteDatabase
from session_buddy.store.audit import AuditRepository
from session_buddy.store.base import Params, Row
from session_buddy.store.revocations import RevocationRepository
from session_buddy.store.sessions import SessionRepository
from testkit.history import History, fill, team_project_id
from testkit.postgres import PostgresServer
from testkit.pytest_postgres import fresh_database

HISTORY = History().scaled(0.01)  # 1,000 sessions, 10,000 checkpoints and audit rows, …
NOW = time.time()


class Recording:
    """A :class:`Database` that remembers every read a repository makes through it."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.reads: list[tuple[str, Params]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        self.reads.append((sql, tuple(params)))
        return self._database.query(sql, params)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A database with a small history, once per backend for the module."""
    if request.param == "sqlite":
        db: Database = SqliteDatabase(tmp_path_factory.mktemp("plans") / "session-buddy.db")
        yield _filled(db)
        db.close()
        return
    from session_buddy.store.postgres import PostgresDatabase

    server: PostgresServer = request.getfixturevalue("postgres_server")
    with fresh_database(server) as created:
        db = PostgresDatabase(created.url)
        yield _filled(db)
        db.close()


def _filled(db: Database) -> Database:
    db.open()
    fill(db, HISTORY, now=NOW)
    return db


def plan(database: Database, sql: str, params: Params, *, seqscan: bool = True) -> list[str]:
    """How the database would run ``sql``: SQLite's plan lines, or PostgreSQL's plan nodes
    as ``"<node type> on <table> using <index>"``."""
    if database.dialect.name == "sqlite":
        rows = database.query(f"EXPLAIN QUERY PLAN {sql}", params)
        return [str(row[3]) for row in rows]
    from session_buddy.store.postgres import PostgresDatabase

    assert isinstance(database, PostgresDatabase)
    with database.connect(autocommit=True) as conn:
        if not seqscan:
            conn.execute("SET enable_seqscan = off")
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql.replace('?', '%s')}", params).fetchone()
    assert row is not None
    return list(_nodes(row[0][0]["Plan"]))


def _nodes(node: dict[str, Any]) -> Iterator[str]:
    text = str(node["Node Type"])
    if node.get("Scan Direction") == "Backward":
        text += " Backward"
    if "Relation Name" in node:
        text += f" on {node['Relation Name']}"
    if "Index Name" in node:
        text += f" using {node['Index Name']}"
    yield text
    for child in node.get("Plans", []):
        yield from _nodes(child)


def only_read(recording: Recording, containing: str) -> tuple[str, Params]:
    (read,) = [read for read in recording.reads if containing in read[0]]
    return read


# -- sessions -----------------------------------------------------------------------------


def test_every_users_sessions_newest_first_are_read_from_the_start_index_unsorted(
    database: Database,
) -> None:
    recording = Recording(database)
    sessions, total = SessionRepository(recording).list_sessions(limit=20)
    assert (len(sessions), total) == (20, HISTORY.sessions)

    steps = plan(database, *only_read(recording, "ORDER BY"))

    if database.dialect.name == "sqlite":
        assert steps == ["SCAN sessions USING INDEX sessions_by_start"]
    else:
        assert steps == ["Limit", "Index Scan Backward on sessions using sessions_by_start"]


def test_every_users_total_reads_the_counter_and_the_uncounted_index_not_the_table(
    database: Database,
) -> None:
    recording = Recording(database)
    SessionRepository(recording).list_sessions(limit=1)

    steps = plan(database, *only_read(recording, "session_totals"), seqscan=False)

    if database.dialect.name == "sqlite":
        assert steps == [
            "SCAN session_totals",
            "SCALAR SUBQUERY 1",
            "SEARCH sessions USING COVERING INDEX sessions_uncounted (counted=?)",
        ]
    else:
        assert not [step for step in steps if "on sessions" in step and "Seq" in step], steps
        assert any("using sessions_uncounted" in step for step in steps), steps


def test_one_users_sessions_are_read_from_that_users_index(database: Database) -> None:
    recording = Recording(database)
    sessions, total = SessionRepository(recording).list_sessions(user_id="user-00003")
    assert sessions[0].user_id == "user-00003"
    assert total == HISTORY.sessions // HISTORY.users

    steps = plan(database, *only_read(recording, "ORDER BY"))

    if database.dialect.name == "sqlite":
        assert steps == ["SEARCH sessions USING INDEX sessions_by_user (user_id=?)"]
    else:  # the user's rows in start order; ties ordered by insertion among those alone
        assert "Index Scan Backward on sessions using sessions_by_user" in steps
        assert not [step for step in steps if step.startswith("Seq Scan")]


def test_a_status_reads_the_callers_session_and_its_checkpoints_by_index(
    database: Database,
) -> None:
    recording = Recording(database)
    found = SessionRepository(recording).active_with_last_checkpoint(
        "user-00003", "/srv/work/user-00003/project-0"
    )
    del found  # whichever session is active: the plan is what matters

    steps = plan(database, *recording.reads[0], seqscan=False)

    if database.dialect.name == "sqlite":
        assert not [step for step in steps if step.startswith("SCAN")], steps
        assert any("sessions_one_active_per_user_project" in step for step in steps)
        assert any("checkpoints_by_session" in step for step in steps)
    else:
        assert not [step for step in steps if step.startswith("Seq Scan")], steps


# Partial indexes of the active sessions alone: as small as the number of active sessions,
# whatever the history (sorting what they hold is sorting a handful of rows).
ACTIVE_ONLY = (
    "sessions_one_active_per_user_project",
    "sessions_active_by_project_id",
    "sessions_active_named_by_id",
)


def _no_scan_of_sessions(database: Database, steps: list[str]) -> None:
    if database.dialect.name == "sqlite":
        assert not [step for step in steps if step.startswith("SCAN")], steps
    else:
        assert not [step for step in steps if step.startswith("Seq Scan")], steps


def _reads_active_sessions_only(steps: list[str]) -> None:
    reads = [step for step in steps if "sessions USING" in step or "on sessions" in step]
    assert reads, steps
    assert all(any(index in step for index in ACTIVE_ONLY) for step in reads), steps


def test_a_projects_sessions_newest_first_are_read_from_the_project_id_index(
    database: Database,
) -> None:
    """``list_sessions`` by project id (a caller on another machine, or an admin's view of
    one repository): that id's entries of ``sessions_by_project_id``, in start order."""
    recording = Recording(database)
    project_id = team_project_id(7)
    sessions, total = SessionRepository(recording).list_sessions(project_id=project_id)
    assert sessions and {s.project_id for s in sessions} == {project_id}
    assert total > len(sessions)

    steps = plan(database, *only_read(recording, "ORDER BY"), seqscan=False)
    counting = plan(database, *only_read(recording, "COUNT(*)"), seqscan=False)

    if database.dialect.name == "sqlite":
        assert steps == ["SEARCH sessions USING INDEX sessions_by_project_id (project_id=?)"]
        assert counting == [
            "SEARCH sessions USING COVERING INDEX sessions_by_project_id (project_id=?)"
        ]
    else:
        assert any("using sessions_by_project_id" in step for step in steps), steps
        assert any("using sessions_by_project_id" in step for step in counting), counting
    _no_scan_of_sessions(database, steps)
    _no_scan_of_sessions(database, counting)


def test_a_callers_project_session_and_the_sessions_of_its_id_are_read_by_index(
    database: Database,
) -> None:
    """What ``start_session``/``session_status``/``checkpoint`` read for a project named by
    id: the caller's (or anyone's) active sessions of that id, and whether there is any
    active project session at all — from indexes of the active sessions alone, never every
    session of the id (the history's ended ones)."""
    recording = Recording(database)
    repository = SessionRepository(recording)
    project_id = team_project_id(3)
    repository.active_project_session("user-00003", project_id)
    repository.active_project_session(None, project_id)
    repository.active_with_project_id("user-00003", project_id)
    repository.active_with_project_id(None, project_id)
    repository.has_active_project_sessions("user-00003")
    repository.has_active_project_sessions(None)
    assert len(recording.reads) == 6

    for sql, params in recording.reads:
        _reads_active_sessions_only(plan(database, sql, params, seqscan=False))


def test_the_latest_active_session_of_a_directory_is_read_by_index(database: Database) -> None:
    recording = Recording(database)
    SessionRepository(recording).latest_active_for_project("/srv/work/user-00003/project-0")

    steps = plan(database, *recording.reads[0], seqscan=False)

    _no_scan_of_sessions(database, steps)


# -- revocations ----------------------------------------------------------------------------


def test_the_revocations_in_force_are_read_from_their_covering_index(database: Database) -> None:
    """What every process loads at start-up: one index read, no table row per revocation.
    PostgreSQL would rightly scan a table whose every row it wants; with sequential scans
    off it must read the index alone (an index-only scan)."""
    recording = Recording(database)
    loaded = RevocationRepository(recording).in_force(NOW)
    assert len(loaded) == HISTORY.revoked

    steps = plan(database, *recording.reads[0], seqscan=False)

    if database.dialect.name == "sqlite":
        assert steps == [
            "SEARCH revoked_tokens USING COVERING INDEX revoked_tokens_in_force (expires_at>?)"
        ]
    else:
        assert steps == ["Index Only Scan on revoked_tokens using revoked_tokens_in_force"]


def test_the_revocation_log_is_read_past_a_position_by_its_indexes(database: Database) -> None:
    """PostgreSQL also looks back 30 s in time (sequence values commit out of order): that
    condition must be one an index can serve, or every re-read scans the whole log."""
    recording = Recording(database)
    repository = RevocationRepository(recording)
    changes, position = repository.since(repository.log_position())
    assert (changes, position) == ([], HISTORY.revoked)

    steps = plan(database, *only_read(recording, "JOIN"), seqscan=False)

    if database.dialect.name == "sqlite":
        assert "SEARCH l USING INTEGER PRIMARY KEY (rowid>?)" in steps
        assert not [step for step in steps if step.startswith("SCAN")], steps
    else:
        assert not [step for step in steps if step.startswith("Seq Scan")], steps
        assert "Bitmap Index Scan using revocation_log_pkey" in steps
        assert "Bitmap Index Scan using revocation_log_logged_at" in steps


# -- audit ----------------------------------------------------------------------------------


def test_the_last_hour_of_the_audit_trail_is_read_from_its_time_index(database: Database) -> None:
    recording = Recording(database)
    assert AuditRepository(recording).search(since=NOW - 3600) == []

    steps = plan(database, *recording.reads[0], seqscan=False)

    if database.dialect.name == "sqlite":
        assert steps == ["SEARCH audit_events USING INDEX audit_events_last_seen (last_seen>?)"]
    else:
        assert "Index Scan Backward on audit_events using audit_events_last_seen" in steps
        assert not [step for step in steps if step.startswith("Seq Scan")], steps


def test_the_plans_are_asked_of_the_database_under_test(tmp_path: Path) -> None:
    """The recording database passes reads through unchanged (the plans are of real SQL)."""
    db = SqliteDatabase(tmp_path / "session-buddy.db").open()
    try:
        recording = Recording(db)
        assert recording.query("SELECT 1 + ?", (1,)) == [(2,)]
        assert recording.reads == [("SELECT 1 + ?", (1,))]
        assert recording.dialect is db.dialect
    finally:
        db.close()
