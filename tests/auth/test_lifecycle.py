"""Constructors build; ``open()`` acts: no I/O, no thread and no environment read while an
object is built, and hooks that every interested party can join."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from session_buddy.auth import config as library_config
from session_buddy.auth import errors
from session_buddy.auth import manager as library_manager
from session_buddy.auth.revocation import RevocationStore, shared_revocation_store
from session_buddy.config import load_settings
from session_buddy.mcp import auth as facade
from session_buddy.runtime import Runtime, forget_shared_state
from session_buddy.store import SqliteDatabase, StorageError, database_for, shared_database
from session_buddy.store.postgres import PostgresDatabase
from testkit.clock import seconds_until
from testkit.environment import new_secret

POLLER = "session-buddy-revocations"


def _pollers() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == POLLER)


def test_building_a_revocation_store_reads_nothing(tmp_path: Path) -> None:
    garbage = tmp_path / "not-a-database.db"
    garbage.write_bytes(b"this is no SQLite file " * 100)
    store = RevocationStore(SqliteDatabase(garbage))  # nothing read yet: no error
    assert not store.opened
    with pytest.raises(StorageError):
        store.open()
    assert not store.opened


def test_a_revocation_store_refuses_checks_before_it_is_opened(tmp_path: Path) -> None:
    store = RevocationStore(SqliteDatabase(tmp_path / "r.db"))
    with pytest.raises(RuntimeError, match="open"):
        store.is_revoked("jti:x")
    assert store.open().is_revoked("jti:x") is False


def test_building_a_revocation_store_starts_no_thread(postgres_url: str) -> None:
    database = PostgresDatabase(postgres_url)
    before = _pollers()
    store = RevocationStore(database)
    try:
        assert _pollers() == before
        store.open()
        assert _pollers() == before + 1
    finally:
        store.close()
        database.close()


def test_every_listener_learns_of_a_revocation_from_the_log(tmp_path: Path) -> None:
    """Two servers of one process on one database both keep their metrics: adding the
    second listener does not silence the first."""
    path = tmp_path / "r.db"
    tick = [0.0]
    reader = RevocationStore(SqliteDatabase(path), monotonic=lambda: tick[0]).open()
    first: list[float] = []
    second: list[float] = []
    reader.add_learned_listener(first.append)
    reader.add_learned_listener(second.append)
    RevocationStore(SqliteDatabase(path)).revoke("jti:elsewhere", time.time() + 3600)

    tick[0] += 1.0  # the poll interval is over: the next check reads the log
    assert reader.is_revoked("jti:elsewhere")
    assert (len(first), len(second)) == (1, 1)

    reader.remove_learned_listener(first.append)
    RevocationStore(SqliteDatabase(path)).revoke("jti:again", time.time() + 3600)
    tick[0] += 1.0
    assert reader.is_revoked("jti:again")
    assert (len(first), len(second)) == (1, 2)


# -- configuration comes in through the constructor ---------------------------------------


def test_library_constructors_take_their_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only an edge reads the environment: the library's AuthConfig and JWTManager are
    given theirs."""
    monkeypatch.setenv("SESSION_BUDDY_SECRET", new_secret())
    with pytest.raises(TypeError):
        library_config.AuthConfig()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        library_manager.JWTManager()  # type: ignore[call-arg]


def test_the_design_notes_constructors_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = new_secret()
    monkeypatch.setenv("SESSION_BUDDY_SECRET", secret)
    assert facade.AuthConfig().secret == secret
    assert facade.AuthConfig().enabled
    assert facade.JWTManager().config.secret == secret


def test_building_a_runtime_reads_no_file_and_opens_no_database(tmp_path: Path) -> None:
    """An unreadable secret file and a database that is no database: both are found out
    when used, not while the runtime is built."""
    secret_file = tmp_path / "missing-secret"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "session-buddy.db").write_bytes(b"no database " * 100)
    settings = load_settings(secret_file=secret_file, data_dir=tmp_path / "data")
    runtime = Runtime.build(settings)
    assert not runtime.revocations.opened
    assert runtime.manager.enabled  # a secret is configured, however unusable
    with pytest.raises(errors.SecretConfigError):
        runtime.manager.authenticate(None, optional=True)


# -- forgetting shared state never pulls a part from under a runtime ----------------------


def test_forgetting_shared_state_keeps_what_a_runtime_holds(tmp_path: Path) -> None:
    settings = load_settings(secret=new_secret(), data_dir=tmp_path / "data")
    runtime = Runtime.build(settings).open()
    unheld = SqliteDatabase(tmp_path / "other.db")
    assert shared_database(str(unheld.path)) is shared_database(str(unheld.path))
    forgotten = shared_database(str(unheld.path))

    forget_shared_state()
    assert database_for(settings) is runtime.database  # still shared, still open
    assert shared_revocation_store(runtime.database) is runtime.revocations
    assert shared_database(str(unheld.path)) is not forgotten  # nobody held that one

    runtime.close()
    forget_shared_state()
    assert database_for(settings) is not runtime.database


def test_a_runtime_keeps_hearing_of_revocations_after_the_process_forgets(
    postgres_url: str,
) -> None:
    """On PostgreSQL a revocation reaches the runtime by notification: forgetting shared
    state used to close the database (its listener) and the store (its poller) of a live
    runtime, which then missed every revocation until it refused all tokens."""
    runtime = Runtime.build(load_settings(secret=new_secret(), database_url=postgres_url))
    elsewhere = PostgresDatabase(postgres_url)
    try:
        token = runtime.open().manager.create_token("alice")
        runtime.manager.verify_token(token)
        forget_shared_state()

        jti = runtime.manager.verify_token(token)["jti"]
        RevocationStore(elsewhere.open(), push=False).revoke(f"jti:{jti}", time.time() + 3600)
        seconds_until(lambda: runtime.revocations.is_revoked(f"jti:{jti}"), 3.0)
    finally:
        runtime.close()
        forget_shared_state()
        elsewhere.close()


def test_a_forgotten_store_reopens_when_next_used(tmp_path: Path) -> None:
    """A manager built outside any runtime holds nothing: forgetting closes its store, and
    its next check reads the log afresh."""
    settings = load_settings(secret=new_secret(), data_dir=tmp_path / "d")
    manager = facade.JWTManager(facade.AuthConfig(settings))
    token = manager.create_token("alice")
    manager.verify_token(token)
    store = manager.verification.open_revocations()
    assert store is not None and store.opened
    forget_shared_state()
    assert not store.opened
    manager.revoke_token(token)
    with pytest.raises(errors.RevokedTokenError):
        manager.verify_token(token)
