"""Refresh rotates, revocation persists and is shared by every process on a data dir."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from session_buddy.auth import errors
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.revocation import RETENTION_AFTER_EXPIRY, RevocationStore
from session_buddy.mcp import auth
from session_buddy.store import SqliteDatabase
from testkit.clock import seconds_until
from testkit.concurrency import run_in_threads
from testkit.processes import run_python
from testkit.tokens import assemble, mint


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_refresh_keeps_identity_and_custom_claims(auth_enabled: str) -> None:
    now = [time.time()]
    manager = JWTManager(clock=lambda: now[0])
    old = manager.create_token("alice", {"role": "admin", "team": "core"})
    now[0] += 120
    new = manager.refresh_token(old)
    before, after = claims_of(old), claims_of(new)
    assert after["user_id"] == "alice"
    assert after["role"] == "admin" and after["team"] == "core"
    assert after["jti"] != before["jti"]
    assert after["exp"] > before["exp"]
    assert after["refreshed_at"] == int(now[0])
    assert after["auth_time"] == before["iat"]


def test_refresh_revokes_the_old_token(auth_enabled: str) -> None:
    old = auth.generate_test_token("alice")
    new = auth.get_manager().refresh_token(old)
    assert auth.validate_token(new) is not None
    assert auth.validate_token(old) is None
    assert auth.get_auth_error() == "Token has been revoked"
    with pytest.raises(errors.RevokedTokenError):
        auth.get_manager().refresh_token(old)


def test_refresh_keeps_the_first_auth_time_across_generations(auth_enabled: str) -> None:
    now = [time.time()]
    manager = JWTManager(clock=lambda: now[0])
    first = manager.create_token("alice")
    token = first
    for _ in range(3):
        now[0] += 600
        token = manager.refresh_token(token)
    assert claims_of(token)["auth_time"] == claims_of(first)["iat"]


def test_refresh_is_refused_past_the_maximum_lifetime(
    monkeypatch: pytest.MonkeyPatch, auth_enabled: str
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_MAX_TOKEN_LIFETIME_HOURS", "1")
    now = [time.time()]
    manager = JWTManager(AuthConfig(), clock=lambda: now[0])
    token = manager.create_token("alice")
    now[0] += 50 * 60
    token = manager.refresh_token(token)
    assert claims_of(token)["exp"] <= claims_of(token)["auth_time"] + 3600
    now[0] += 10 * 60
    with pytest.raises(errors.ExpiredTokenError):  # exp was capped at the lifetime
        manager.refresh_token(token)


def test_long_lived_token_is_not_refreshed_past_the_maximum_lifetime(auth_enabled: str) -> None:
    now = time.time()
    token = mint(auth_enabled, iat=int(now) - 25 * 3600, exp=int(now) + 24 * 3600)
    assert auth.validate_token(token) is not None
    with pytest.raises(errors.TokenLifetimeExceededError):
        auth.get_manager().refresh_token(token)
    assert auth.validate_token(token) is not None  # a refused refresh revokes nothing


def test_refresh_requires_a_valid_token(auth_enabled: str) -> None:
    with pytest.raises(errors.ExpiredTokenError):
        auth.get_manager().refresh_token(mint(auth_enabled, exp=1000))
    with pytest.raises(errors.InvalidTokenError):
        auth.get_manager().refresh_token("junk")


def test_revoked_token_is_rejected_with_public_message(auth_enabled: str) -> None:
    token = auth.generate_test_token("alice")
    assert auth.validate_token(token) is not None
    assert auth.revoke_token(token) is True
    assert auth.validate_token(token) is None
    assert auth.get_auth_error() == "Token has been revoked"


def test_revoking_an_invalid_token_reports_why(auth_enabled: str) -> None:
    assert auth.revoke_token("junk") is False
    assert auth.get_auth_error() == "Invalid token"


def test_mahavishnu_token_without_jti_is_revoked_by_digest(auth_enabled: str) -> None:
    token = mint(auth_enabled)
    other = mint(auth_enabled, user_id="other")
    assert auth.revoke_token(token)
    assert auth.validate_token(token) is None
    assert auth.validate_token(other) is not None


def test_revocation_survives_a_restart(auth_enabled: str) -> None:
    token = auth.generate_test_token("alice")
    auth.revoke_token(token)
    auth.reload_auth_config()  # a fresh manager reads the store from disk
    assert auth.validate_token(token) is None
    assert auth.get_auth_error() == "Token has been revoked"


def test_revocation_by_another_process_is_honoured_within_a_second(
    auth_enabled: str, isolated_environment: Path
) -> None:
    token = auth.generate_test_token("alice")
    assert auth.validate_token(token) is not None  # now cached here
    script = (
        "import sys; from session_buddy.mcp.auth import revoke_token;"
        "sys.exit(0 if revoke_token(sys.argv[1]) else 1)"
    )
    revoked = run_python("-c", script, token)
    assert revoked.returncode == 0, revoked.stderr
    seconds_until(
        lambda: auth.validate_token(token) is None, 1.0, 0.05, what="the revocation to be seen"
    )
    assert auth.get_auth_error() == "Token has been revoked"


def test_expired_revocations_are_forgotten(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    store = RevocationStore(SqliteDatabase(tmp_path / "r.db"), clock=lambda: now[0])
    store.revoke("jti:a", expires_at=now[0] + 60)
    store.revoke("jti:b", expires_at=now[0] + 86_400)
    assert store.count() == 2
    now[0] += 60 + RETENTION_AFTER_EXPIRY + 1
    assert store.purge_expired() == 1
    assert store.count() == 1
    assert not store.is_revoked("jti:a")
    assert store.is_revoked("jti:b")


def test_empty_secret_file_fails_closed(
    monkeypatch: pytest.MonkeyPatch, isolated_environment: Path
) -> None:
    path = isolated_environment / "secret"
    path.write_text("\n")
    monkeypatch.setenv("SESSION_BUDDY_SECRET_FILE", str(path))
    auth.reload_auth_config()
    assert auth.is_authentication_enabled()
    assert auth.validate_token(mint("x" * 40)) is None
    with pytest.raises(ValueError, match="is empty"):
        _ = AuthConfig().secret


def test_a_token_can_be_refreshed_only_once_even_by_two_processes(auth_enabled: str) -> None:
    first, second = JWTManager(AuthConfig()), JWTManager(AuthConfig())
    token = first.create_token("alice")
    second.verify_token(token)  # the second process has seen it as valid
    assert first.refresh_token(token)
    with pytest.raises(errors.RevokedTokenError):
        second.refresh_token(token)  # its cache is stale, the database is not


def test_concurrent_refreshes_of_one_token_yield_one_new_token(auth_enabled: str) -> None:
    managers = [JWTManager(AuthConfig()) for _ in range(4)]
    token = managers[0].create_token("alice")
    results: list[str] = []
    refusals: list[errors.AuthError] = []

    def refresh(manager: JWTManager) -> None:
        try:
            results.append(manager.refresh_token(token))
        except errors.AuthError as exc:
            refusals.append(exc)

    run_in_threads(refresh, managers)
    assert len(results) == 1
    assert len(refusals) == 3


@pytest.mark.parametrize("auth_time", [float("inf"), "yesterday", True, 10**12])
def test_odd_or_future_auth_time_neither_crashes_nor_extends_the_lifetime(
    auth_enabled: str, auth_time: object
) -> None:
    now = time.time()
    claims = {"user_id": "alice", "iat": int(now) - 3600, "exp": int(now) + 600}
    token = assemble(
        {"alg": "HS256", "typ": "JWT"}, {**claims, "auth_time": auth_time}, auth_enabled
    )
    new = auth.get_manager().refresh_token(token)
    assert claims_of(new)["auth_time"] == int(now) - 3600  # falls back to iat


def test_revocation_committed_while_a_store_loads_is_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    writer = RevocationStore(SqliteDatabase(path))
    db = SqliteDatabase(path)
    real_query = db.query
    calls = []

    def query(sql: str, params: tuple = ()) -> list:
        result = real_query(sql, params)
        calls.append(sql)
        if len(calls) == 1:  # between the store's two startup reads
            writer.revoke("jti:late", expires_at=time.time() + 600)
        return result

    db.query = query  # type: ignore[method-assign]
    tick = [0.0]
    reader = RevocationStore(db, monotonic=lambda: tick[0])
    tick[0] += 1.0
    assert reader.is_revoked("jti:late")


def test_unreadable_revocation_store_fails_closed_after_a_grace_period(tmp_path: Path) -> None:
    from session_buddy.auth.revocation import MAX_STALE_SECONDS
    from session_buddy.store import StorageError

    db = SqliteDatabase(tmp_path / "r.db")
    tick = [0.0]
    store = RevocationStore(db, monotonic=lambda: tick[0])

    def broken(sql: str, params: tuple = ()) -> list:
        raise StorageError("database r.db: disk I/O error")

    db.query = broken  # type: ignore[method-assign]
    tick[0] += 1.0
    assert store.is_revoked("jti:x") is False  # a short outage keeps serving
    tick[0] += MAX_STALE_SECONDS + 1
    with pytest.raises(errors.RevocationUnavailableError):
        store.is_revoked("jti:x")


def test_a_check_during_another_threads_read_waits_for_it_after_an_idle_spell(
    tmp_path: Path,
) -> None:
    """A server idle for longer than the grace period wakes up to concurrent calls: the
    first re-reads the log; the others must wait for that read, not refuse every token
    as if the database were unreadable."""
    import threading

    from session_buddy.auth.revocation import MAX_STALE_SECONDS

    db = SqliteDatabase(tmp_path / "r.db")
    tick = [0.0]
    store = RevocationStore(db, monotonic=lambda: tick[0])
    real_query = db.query
    reading, release = threading.Event(), threading.Event()

    def slow(sql: str, params: tuple = ()) -> list:
        reading.set()
        assert release.wait(10)
        return real_query(sql, params)

    db.query = slow  # type: ignore[method-assign]
    tick[0] += MAX_STALE_SECONDS + 2  # idle: no call, so no read, for a while
    answers: dict[str, object] = {}

    def check(name: str) -> None:
        try:
            answers[name] = store.is_revoked("jti:x")
        except errors.AuthError as exc:
            answers[name] = exc

    first = threading.Thread(target=check, args=("first",))
    first.start()
    assert reading.wait(10)  # the first call is reading the log
    second = threading.Thread(target=check, args=("second",))
    second.start()
    second.join(0.2)  # it must wait for the read, not answer on the stale moment
    release.set()
    first.join(10)
    second.join(10)
    assert answers == {"first": False, "second": False}
