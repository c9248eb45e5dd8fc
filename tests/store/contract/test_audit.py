"""The audit trail on both backends: whatever a request carried, the writer keeps writing.

A value the database cannot store (a lone surrogate anywhere, a NUL on PostgreSQL) is a
``bad_value`` :class:`StorageError`; the trail drops such a row alone and counts it, while
a storage outage keeps the whole batch for the next round. Attacker-chosen text never gets
that far: the decision escapes and bounds it first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from psycopg import sql

from session_buddy.auth import errors
from session_buddy.auth.trail import AuditTrail, AuthDecision
from session_buddy.store import Database, StorageError
from session_buddy.store.audit import AuditRecord, AuditRepository

HOSTILE = {
    "surrogate": "\ud800",
    "nul": "start\x00session",
    "escape": "\x1b[31mred\x07",
    "reversed": "\u202eevil",
}
T0 = time.time()


@pytest.fixture
def repository(database: Database) -> AuditRepository:
    return AuditRepository(database)


def refusal(action: str, client: str = "10.0.0.9") -> AuthDecision:
    """A refusal as the bearer middleware makes it: the action comes from the request."""
    return AuthDecision.denied(
        errors.MalformedTokenError(), action=action, permission=None, source_ip=client, now=T0
    )


def unchecked(action: str) -> AuthDecision:
    """A decision built without the factories' escaping, as a careless caller could."""
    return AuthDecision(timestamp=T0, action=action, result="denied", reason="malformed")


def allowed(user: str) -> AuthDecision:
    return AuthDecision(
        timestamp=T0, action="whoami", result="allowed", caller_id=user, source_ip="127.0.0.1"
    )


def record(action: str) -> AuditRecord:
    return AuditRecord(T0, T0, 1, "session-buddy", None, None, action, None, "denied",
                       "malformed", "10.0.0.9", None)  # fmt: skip


def test_a_lone_surrogate_is_a_bad_value_not_an_outage(repository: AuditRepository) -> None:
    with pytest.raises(StorageError) as raised:
        repository.write([record(HOSTILE["surrogate"])])

    assert raised.value.kind == "bad_value"
    assert repository.count() == 0


def test_a_nul_is_stored_by_sqlite_and_a_bad_value_for_postgresql(
    database: Database, repository: AuditRepository
) -> None:
    if database.dialect.name == "postgresql":
        with pytest.raises(StorageError) as raised:
            repository.write([record(HOSTILE["nul"])])
        assert raised.value.kind == "bad_value"
    else:
        repository.write([record(HOSTILE["nul"])])
        assert repository.count() == 1


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_from_a_request_is_stored_escaped(
    repository: AuditRepository, name: str
) -> None:
    trail = AuditTrail(repository)
    trail.record(refusal(HOSTILE[name]))
    trail.flush()

    (stored,) = repository.search()
    assert stored.action.isprintable()
    assert stored.action == HOSTILE[name].encode("unicode_escape").decode("ascii")
    assert trail.dropped == 0


def test_hostile_text_is_bounded(repository: AuditRepository) -> None:
    trail = AuditTrail(repository)
    trail.record(refusal("x" * 100_000, client="\x00" * 10_000))
    trail.flush()

    (stored,) = repository.search()
    assert len(stored.action) <= 200
    assert stored.source_ip is not None and len(stored.source_ip) <= 200


def test_rows_the_database_refuses_are_dropped_alone_and_counted(
    database: Database, repository: AuditRepository
) -> None:
    trail = AuditTrail(repository)
    trail.record(allowed("alice"))
    trail.record(unchecked(HOSTILE["surrogate"]))
    trail.record(unchecked(HOSTILE["surrogate"]))  # folded with the first: one row of 2
    trail.record(unchecked(HOSTILE["nul"]))
    trail.record(allowed("bob"))
    trail.flush()

    refused = 3 if database.dialect.name == "postgresql" else 2
    assert trail.dropped == refused
    assert trail.written == 5 - refused
    assert {r.caller_id for r in repository.search() if r.result == "allowed"} == {"alice", "bob"}
    assert trail.pending == 0


def test_the_writer_thread_outlives_a_row_the_database_refuses(
    repository: AuditRepository,
) -> None:
    trail = AuditTrail(repository, flush_seconds=0.01)
    trail.start()
    try:
        trail.record(unchecked(HOSTILE["surrogate"]))
        trail.record(allowed("alice"))
        wait_until(lambda: trail.written >= 1 and trail.dropped >= 1)
        assert trail.alive
        trail.record(allowed("carol"))  # a later batch: the writer is still there
        wait_until(lambda: trail.written >= 2)
        assert trail.alive
    finally:
        trail.close()

    assert {r.caller_id for r in repository.search()} >= {"alice", "carol"}
    assert trail.dropped == 1


@pytest.fixture
def outage(database: Database, request: pytest.FixtureRequest) -> Iterator[Callable[[bool], None]]:
    """``outage(True)``: writes to the audit table fail as in an outage (not a bad row);
    ``outage(False)``: they work again. SQLite: the connection turns read-only;
    PostgreSQL: the role loses INSERT and UPDATE on the table."""

    def sqlite(on: bool) -> None:
        database.query(f"PRAGMA query_only = {'ON' if on else 'OFF'}")

    def postgres(on: bool) -> None:
        db = request.getfixturevalue("postgres_database")
        verb = "REVOKE {} ON audit_events FROM {}" if on else "GRANT {} ON audit_events TO {}"
        statement = sql.SQL(verb).format(sql.SQL("INSERT, UPDATE"), sql.Identifier(db.user))
        db.server.execute(statement, dbname=db.dbname)

    switch = postgres if database.dialect.name == "postgresql" else sqlite
    yield switch
    switch(False)


def test_an_outage_keeps_the_batch_for_the_next_round(
    repository: AuditRepository, outage: Callable[[bool], None]
) -> None:
    trail = AuditTrail(repository)
    trail.record(allowed("alice"))
    trail.record(refusal("whoami"))
    outage(True)

    with pytest.raises(StorageError) as raised:
        trail.flush()
    assert raised.value.kind not in ("bad_value", "constraint")
    assert (trail.pending, trail.dropped, repository.count()) == (2, 0, 0)

    outage(False)
    trail.flush()
    assert (trail.pending, trail.dropped, trail.written, repository.count()) == (0, 0, 2, 2)


def test_what_an_outage_keeps_unwritten_at_shutdown_is_counted_dropped(
    repository: AuditRepository, outage: Callable[[bool], None]
) -> None:
    trail = AuditTrail(repository)
    trail.record(allowed("alice"))
    trail.record(refusal("whoami"))
    trail.record(refusal("whoami"))
    outage(True)

    trail.close()  # logs the loss; never raises

    assert (trail.dropped, trail.pending, trail.written) == (3, 0, 0)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
