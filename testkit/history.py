"""A long-running deployment's history, written straight into a session-buddy database.

:func:`fill` adds the rows a team's server accumulates over months — sessions of many users
(one active per user, the rest ended, with snapshots and hand-offs of the sizes the server
writes; each in one of the team's repositories, by project id, one in five a remote
caller's keyed by that id alone), their checkpoints, audit decisions, revocations in force
with their log entries — in one transaction per table, not through the server:
``executemany`` on SQLite, ``COPY`` on PostgreSQL (then ``VACUUM ANALYZE``, the state
autovacuum keeps a running database in).

Every row is dated at least :data:`HISTORY_ENDS_BEFORE` before ``now``, and every audit row
within the audit retention, so a server started on the database purges none of it and reads
of "the last hour" or "the last day" match none of it. :func:`fill_recent` adds the last
hours' activity, the same in every database: a database with both and one with the recent
rows alone differ only by what a query should not need to read. ``make bench`` (the growth
part) measures exactly that difference; the query-plan tests use a small history so
PostgreSQL's planner sees a table worth an index. The sessions written are counted as the
server counts its own (``SessionRepository.tally``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from session_buddy.store import Database
from session_buddy.store.sessions import SessionRepository

DAY = 86_400.0
HISTORY_ENDS_BEFORE = DAY  # nothing in the history is newer than a day
SESSIONS_SPAN = 90 * DAY  # sessions started over the last three months
AUDIT_SPAN = 28 * DAY  # within the 30-day default audit retention, so none is purged
PROJECTS_PER_USER = 5
# Every user works on PROJECTS_PER_USER of the team's repositories (project ids); one session
# in PROJECT_SESSION_EVERY is a remote caller's, keyed by the id alone (no directory).
TEAM_PROJECTS = 50
PROJECT_SESSION_EVERY = 5
TOOLS = ("session_status", "checkpoint", "start_session", "end_session", "list_sessions")
DENIALS = ("Token has expired", "Invalid token", "Token has been revoked")


@dataclass(frozen=True, slots=True)
class History:
    """How many rows of each kind (the defaults: the issue's "large database")."""

    users: int = 1_000
    sessions: int = 100_000
    checkpoints: int = 1_000_000
    audit: int = 1_000_000
    revoked: int = 100_000

    def scaled(self, fraction: float) -> History:
        """The same shape with ``fraction`` of every count (at least one user and session)."""
        return replace(
            self,
            users=max(1, round(self.users * fraction)),
            sessions=max(1, round(self.sessions * fraction)),
            checkpoints=round(self.checkpoints * fraction),
            audit=round(self.audit * fraction),
            revoked=round(self.revoked * fraction),
        )


SESSION_COLUMNS = (
    "id",
    "user_id",
    "project_path",
    "project_name",
    "started_at",
    "ended_at",
    "snapshot_json",
    "end_snapshot_json",
    "summary",
    "handoff",
    "project_id",
)
CHECKPOINT_COLUMNS = (
    "session_id",
    "created_at",
    "note",
    "snapshot_json",
    "commits_since_previous",
    "changed_files",
)
AUDIT_COLUMNS = (
    "first_seen",
    "last_seen",
    "count",
    "service",
    "caller_service",
    "caller_id",
    "action",
    "permission",
    "result",
    "reason",
    "source_ip",
    "token_id",
)
REVOKED_COLUMNS = ("token_key", "expires_at", "revoked_at")

_SNAPSHOT = (
    '{"path":"%s","name":"%s","name_source":"pyproject.toml","markers":{"readme":true,'
    '"tests":true,"ci":true,"lock_file":true,"docs":false,"license":true},"git":{'
    '"git_available":true,"is_git_repo":true,"branch":"main","commit":"%040x",'
    '"changed_files":%d,"note":null}}'
)
_HANDOFF = (
    "# Session hand-off: %s\n\n- **Project:** %s (`%s`)\n- **User:** %s\n"
    "- **Session:** `%s`\n- **Duration:** %d s\n\n## Summary\n\n%s\n\n"
    "## Checkpoints (%d)\n\n1. first checkpoint of the session\n\n## Git\n\n"
    "- **Start:** `main` @ `%012x`\n- **End:** `main` @ `%012x`\n"
    "- **Commits during session:** %d\n- **Uncommitted changes at end:** 0 files\n"
)


@dataclass(frozen=True, slots=True)
class _Session:
    id: str
    user: str
    path: str
    name: str
    started_at: float
    ended_at: float | None
    project_id: str | None = None


def team_project_id(number: int) -> str:
    """The project id of the team's repository ``number``."""
    return f"git.example.com/team/repo-{number % TEAM_PROJECTS:02d}"


def _sessions(history: History, now: float, rng: random.Random) -> list[_Session]:
    """Sessions round-robin over users, oldest first; each user's newest one active."""
    newest = now - HISTORY_ENDS_BEFORE
    sessions: list[_Session] = []
    for number in range(history.sessions):
        user = f"user-{number % history.users:05d}"
        project = rng.randrange(PROJECTS_PER_USER)
        name = f"project-{project}"
        started = newest - SESSIONS_SPAN * (1 - number / history.sessions) - 4 * 3600
        ended = started + rng.uniform(600, 4 * 3600)
        session_id = f"{rng.getrandbits(128):032x}"
        project_id = team_project_id(number % history.users + project)
        # A directory session keeps its directory; a project session's key is its id.
        remote = number % PROJECT_SESSION_EVERY == PROJECT_SESSION_EVERY - 1
        path = project_id if remote else f"/srv/work/{user}/{name}"
        sessions.append(_Session(session_id, user, path, name, started, ended, project_id))
    seen: set[str] = set()
    for index in range(len(sessions) - 1, -1, -1):  # the newest session of each user
        session = sessions[index]
        if session.user not in seen:
            seen.add(session.user)
            sessions[index] = replace(session, ended_at=None)
    return sessions


def _snapshot(session: _Session, rng: random.Random) -> str:
    return _SNAPSHOT % (session.path, session.name, rng.getrandbits(160), rng.randrange(20))


def session_rows(sessions: Sequence[_Session], rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for s in sessions:
        ended = s.ended_at is not None
        duration = int((s.ended_at or s.started_at) - s.started_at)
        summary = "did what was planned" if ended else None
        handoff = (
            _HANDOFF
            % (
                s.name,
                s.name,
                s.path,
                s.user,
                s.id,
                duration,
                summary,
                10,
                rng.getrandbits(48),
                rng.getrandbits(48),
                rng.randrange(10),
            )
            if ended
            else None
        )
        end_snapshot = _snapshot(s, rng) if ended else None
        yield (
            s.id,
            s.user,
            s.path,
            s.name,
            s.started_at,
            s.ended_at,
            _snapshot(s, rng),
            end_snapshot,
            summary,
            handoff,
            s.project_id,
        )


def checkpoint_rows(
    history: History, sessions: Sequence[_Session], rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """``history.checkpoints`` spread evenly over the sessions, in each session's time."""
    if not sessions:
        return
    for number in range(history.checkpoints):
        session = sessions[number * len(sessions) // history.checkpoints]
        end = session.ended_at or session.started_at + 3600
        yield (
            session.id,
            rng.uniform(session.started_at, end),
            "checkpoint note" if number % 3 else None,
            _snapshot(session, rng),
            rng.randrange(5),
            rng.randrange(20),
        )


def audit_rows(history: History, now: float, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """Decisions over :data:`AUDIT_SPAN` before the history's end, one in ten a refusal."""
    newest = now - HISTORY_ENDS_BEFORE
    for number in range(history.audit):
        last_seen = newest - AUDIT_SPAN * (1 - number / max(1, history.audit))
        user = f"user-{rng.randrange(max(1, history.users)):05d}"
        tool = TOOLS[number % len(TOOLS)]
        source = f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"
        if number % 10:
            yield (last_seen, last_seen, 1, "session-buddy", None, user, tool, "read",
                   "allowed", None, source, f"jti:{rng.getrandbits(64):016x}")  # fmt: skip
        else:
            reason = DENIALS[number // 10 % len(DENIALS)]
            yield (last_seen - 30, last_seen, rng.randrange(1, 5), "session-buddy", None,
                   None, tool, None, "denied", reason, source, None)  # fmt: skip


def revoked_rows(history: History, now: float, rng: random.Random) -> list[tuple[Any, ...]]:
    """Revocations of tokens that expire in one to seven days (in force throughout a run),
    revoked over the history's last month."""
    newest = now - HISTORY_ENDS_BEFORE
    return [
        (
            f"jti:revoked-{number:07d}-{rng.getrandbits(64):016x}",
            now + rng.uniform(DAY, 7 * DAY),
            newest - rng.uniform(0, 30 * DAY),
        )
        for number in range(history.revoked)
    ]


Tables = list[tuple[str, Sequence[str], Iterable[tuple[Any, ...]]]]


def fill(database: Database, history: History, *, now: float | None = None, seed: int = 17) -> None:
    """Write ``history`` into the opened ``database`` (see the module doc)."""
    now = time.time() if now is None else now
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    sessions = _sessions(history, now, rng)
    tables: Tables = [
        ("sessions", SESSION_COLUMNS, session_rows(sessions, rng)),
        ("checkpoints", CHECKPOINT_COLUMNS, checkpoint_rows(history, sessions, rng)),
        ("audit_events", AUDIT_COLUMNS, audit_rows(history, now, rng)),
    ]
    revoked = revoked_rows(history, now, rng)
    tables.append(("revoked_tokens", REVOKED_COLUMNS, revoked))
    if database.dialect.name == "postgresql":
        # logged_at as when each was revoked: the readers' 30 s look-back must not see them
        log = [(key, _timestamp(revoked_at)) for key, _, revoked_at in revoked]
        tables.append(("revocation_log", ("token_key", "logged_at"), log))
    else:
        tables.append(("revocation_log", ("token_key",), [(key,) for key, _, _ in revoked]))
    _write(database, tables)


RECENT_SESSIONS = 25
RECENT_CHECKPOINTS = 4  # per recent session
RECENT_AUDIT = 200


def fill_recent(database: Database, *, now: float, seed: int = 29) -> None:
    """The last hours of activity, the same in every database given the same ``now``:
    :data:`RECENT_SESSIONS` ended sessions of five other users (each with
    :data:`RECENT_CHECKPOINTS` checkpoints) started within the last two hours, and
    :data:`RECENT_AUDIT` decisions within the last half hour — enough for a page of every
    listing, so a database with history and one without list the same rows."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    sessions = []
    for number in range(RECENT_SESSIONS):
        user = f"recent-user-{number % 5}"
        started = now - 2 * 3600 + number * 240
        sessions.append(
            _Session(
                f"{rng.getrandbits(128):032x}",
                user,
                f"/srv/work/{user}/project-{number}",
                f"project-{number}",
                started,
                started + 200,
                team_project_id(number),
            )
        )
    shape = History(users=5, sessions=RECENT_SESSIONS, audit=RECENT_AUDIT, revoked=0)
    shape = replace(shape, checkpoints=RECENT_SESSIONS * RECENT_CHECKPOINTS)
    seen = [now - 60 - 1700 * n / RECENT_AUDIT for n in range(RECENT_AUDIT)]
    rows = audit_rows(shape, now, rng)
    audit = [(at, at, *row[2:]) for at, row in zip(seen, rows, strict=True)]
    _write(
        database,
        [
            ("sessions", SESSION_COLUMNS, session_rows(sessions, rng)),
            ("checkpoints", CHECKPOINT_COLUMNS, checkpoint_rows(shape, sessions, rng)),
            ("audit_events", AUDIT_COLUMNS, audit),
        ],
    )


def _write(database: Database, tables: Tables) -> None:
    """Every table's rows in a transaction of its own (``COPY`` on PostgreSQL), then the new
    sessions counted as the server counts its own (``SessionRepository.tally``)."""
    if database.dialect.name == "postgresql":
        _copy_into_postgres(database, tables)
    else:
        for table, columns, rows in tables:
            marks = ", ".join("?" for _ in columns)
            with database.transaction() as conn:
                conn.executemany(
                    f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                    rows,
                )
    SessionRepository(database).tally()
    if database.dialect.name == "postgresql":
        _analyze(database, [table for table, _, _ in tables])


def _copy_into_postgres(database: Database, tables: Tables) -> None:
    from psycopg import sql

    from session_buddy.store.postgres import PostgresDatabase

    assert isinstance(database, PostgresDatabase)
    with database.connect() as conn:
        for table, columns, rows in tables:
            with conn.transaction(), conn.cursor() as cursor:
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)


def _analyze(database: Database, tables: Sequence[str]) -> None:
    """``VACUUM ANALYZE``: the state autovacuum keeps a running database in."""
    from psycopg import sql

    from session_buddy.store.postgres import PostgresDatabase

    assert isinstance(database, PostgresDatabase)
    with database.connect(autocommit=True) as conn:
        for table in tables:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


def _timestamp(unix: float) -> Any:
    import datetime

    return datetime.datetime.fromtimestamp(unix, tz=datetime.UTC)
