"""The audit trail: decisions batched off the request path, identical ones folded, purged."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from session_buddy.auth import errors
from session_buddy.auth.principal import Principal
from session_buddy.auth.tokens import token_fingerprint
from session_buddy.auth.trail import AuditTrail, AuthDecision, Recorders, as_event
from session_buddy.config import load_settings
from session_buddy.mcp.auth import AuthConfig, JWTManager
from session_buddy.store import SqliteDatabase
from session_buddy.store.audit import AuditRepository
from testkit.clock import FixedClock
from testkit.environment import new_secret
from testkit.tokens import mint

ALICE = Principal(
    user_id="alice",
    authenticated=True,
    issuer="mahavishnu",
    claims={"user_id": "alice", "jti": "jti-1", "iss": "mahavishnu"},
)


T0 = time.time()  # recent: the trail purges rows older than the retention


@pytest.fixture
def repository(tmp_path: Path) -> AuditRepository:
    return AuditRepository(SqliteDatabase(tmp_path / "audit.db").open())


def allowed(now: float, tool: str = "end_session") -> AuthDecision:
    return AuthDecision.allowed(
        ALICE, action=tool, permission="write", source_ip="127.0.0.1", token="t", now=now
    )


def denied(now: float, token: str = "bad-token", client: str = "10.0.0.9") -> AuthDecision:
    return AuthDecision.denied(
        errors.InvalidSignatureError(),
        action="start_session",
        permission="write",
        source_ip=client,
        token=token,
        now=now,
    )


def test_an_allowed_decision_is_stored_with_the_mcp_common_fields(
    repository: AuditRepository,
) -> None:
    trail = AuditTrail(repository)
    trail.record(allowed(1_800_000_000.0))
    trail.flush()

    (event,) = [as_event(record) for record in repository.search()]
    assert {k: event[k] for k in ("service", "caller_service", "caller_id", "action")} == {
        "service": "session-buddy",
        "caller_service": "mahavishnu",
        "caller_id": "alice",
        "action": "end_session",
    }
    assert (event["permission"], event["result"], event["reason"]) == ("write", "allowed", None)
    assert (event["source_ip"], event["token_id"], event["count"]) == ("127.0.0.1", "jti-1", 1)
    assert event["timestamp"].startswith("2027-01-15T08:00:00")


def test_a_denial_names_the_reason_and_a_fingerprint_never_the_token(
    repository: AuditRepository,
) -> None:
    trail = AuditTrail(repository)
    trail.record(denied(1_800_000_000.0, token="eyJsecret.token.value"))
    trail.flush()

    (record,) = repository.search()
    assert (record.result, record.reason, record.caller_id) == ("denied", "bad_signature", None)
    assert record.token_id is not None and len(record.token_id) == 12
    assert "eyJ" not in str(as_event(record))


def test_a_thousand_identical_refusals_leave_one_row_with_their_count(
    repository: AuditRepository,
) -> None:
    trail = AuditTrail(repository)
    for n in range(1000):
        trail.record(denied(1_800_000_000.0 + n / 100))
        if n % 100 == 99:
            trail.flush()  # ten batches: folded in memory, then in the database
    trail.flush()

    (record,) = repository.search()
    assert record.count == 1000
    assert record.first_seen == 1_800_000_000.0
    assert record.last_seen == pytest.approx(1_800_000_009.99)


def test_refusals_from_different_clients_or_reasons_stay_apart(
    repository: AuditRepository,
) -> None:
    trail = AuditTrail(repository)
    trail.record(denied(T0, client="10.0.0.1"))
    trail.record(denied(T0, client="10.0.0.2"))
    trail.record(
        AuthDecision.denied(
            errors.ExpiredTokenError(),
            action="start_session",
            permission="write",
            source_ip="10.0.0.1",
            now=T0,
        )
    )
    trail.flush()

    assert repository.count() == 3


def test_refusals_more_than_a_minute_apart_start_a_new_row(
    repository: AuditRepository,
) -> None:
    trail = AuditTrail(repository)
    trail.record(denied(T0))
    trail.flush()
    trail.record(denied(T0 + 61))
    trail.flush()

    assert [r.count for r in repository.search()] == [1, 1]


def test_allowed_calls_of_different_tokens_or_tools_are_not_folded(
    repository: AuditRepository,
) -> None:
    trail = AuditTrail(repository)
    trail.record(allowed(T0, tool="start_session"))
    trail.record(allowed(T0 + 1, tool="end_session"))
    trail.flush()

    assert sorted(r.action for r in repository.search()) == ["end_session", "start_session"]


def test_a_full_batch_drops_and_counts_instead_of_growing(repository: AuditRepository) -> None:
    trail = AuditTrail(repository, max_pending=2)
    for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        trail.record(denied(T0, client=client))

    assert trail.dropped == 1
    trail.flush()
    assert repository.count() == 2


def test_old_rows_are_purged_after_the_retention(repository: AuditRepository) -> None:
    clock = FixedClock(1_800_000_000.0)
    repository.write([])
    trail = AuditTrail(repository, retention_days=30, clock=clock)
    trail.record(denied(clock.now - 31 * 86_400))
    trail.record(allowed(clock.now - 86_400))
    trail.flush()

    assert [r.result for r in repository.search()] == ["allowed"]


def test_a_closed_trail_has_written_everything(repository: AuditRepository) -> None:
    trail = AuditTrail(repository, flush_seconds=60)
    trail.start()
    trail.record(allowed(T0))
    trail.close()

    assert repository.count() == 1
    assert trail.pending == 0


# -- the record path -----------------------------------------------------------------------


class Collected:
    def __init__(self) -> None:
        self.decisions: list[AuthDecision] = []

    def record(self, decision: AuthDecision) -> None:
        self.decisions.append(decision)


def test_recorders_listen_once_one_is_added() -> None:
    recorders = Recorders()
    assert not recorders.listening
    recorders.add(Collected())
    assert recorders.listening


def test_no_decision_is_built_while_nobody_records_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = new_secret()
    recorders = Recorders()
    manager = JWTManager(
        AuthConfig(load_settings(secret=secret, data_dir=tmp_path)), decisions=recorders
    )

    def refuse(*args: object, **kwargs: object) -> AuthDecision:
        raise AssertionError("a decision was built for nobody")

    with monkeypatch.context() as patched:  # audit and metrics off
        patched.setattr(AuthDecision, "allowed", refuse)
        patched.setattr(AuthDecision, "denied", refuse)
        assert manager.authenticate(mint(secret, "alice"), tool="whoami").user_id == "alice"
        with pytest.raises(errors.AuthError):
            manager.authenticate("not-a-token", tool="whoami")

    collected = Collected()
    recorders.add(collected)  # a server started serving: every decision is recorded again
    manager.authenticate(mint(secret, "alice"), tool="whoami")
    with pytest.raises(errors.AuthError):
        manager.authenticate("not-a-token", tool="whoami")
    assert [d.result for d in collected.decisions] == ["allowed", "denied"]


def test_an_accepted_token_without_jti_is_named_by_its_fingerprint_every_time() -> None:
    principal = Principal.from_claims({"user_id": "alice", "exp": 2_000_000_000})
    token = mint(new_secret(), "alice")  # Mahavishnu's tokens carry no jti

    def token_id() -> str | None:
        return AuthDecision.allowed(
            principal, action="whoami", permission=None, source_ip="local", token=token
        ).token_id

    assert token_id() == token_id() == token_fingerprint(token)
    refused = AuthDecision.denied(
        errors.ExpiredTokenError(), action="whoami", permission=None, source_ip="x", token=token
    )
    assert refused.token_id == token_fingerprint(token)


def test_a_throttled_clients_refusals_fold_into_one_row_whatever_they_asked_for(
    repository: AuditRepository,
) -> None:
    trail = AuditTrail(repository)
    for n in range(50):
        trail.record(
            AuthDecision.denied(
                errors.ThrottledError(),
                action=f"tool-{n}",
                permission=None,
                source_ip="10.0.0.9",
                token=f"forged-{n}",
                now=T0 + n,
            )
        )
        if n % 10 == 9:
            trail.flush()  # five batches: folded in memory, then in the database

    (record,) = repository.search()
    assert (record.action, record.reason, record.count) == ("*", "throttled", 50)


def test_a_provider_caller_is_recorded_with_its_issuer_and_client() -> None:
    issuer = "https://idp.example"
    provider_alice = Principal(
        user_id="alice",
        authenticated=True,
        issuer=issuer,
        authority=issuer,
        claims={"sub": "alice", "iss": issuer, "client_id": "mahavishnu-svc", "jti": "j"},
    )
    for decision in (
        AuthDecision.allowed(provider_alice, action="whoami", permission=None, source_ip=None),
        AuthDecision.denied(
            errors.MissingScopeError("write"),
            action="start_session",
            permission="write",
            source_ip=None,
            principal=provider_alice,
        ),
    ):
        assert decision.caller_id == f"alice@{issuer}"
        assert decision.caller_service == "mahavishnu-svc"
    shared_alice = AuthDecision.allowed(ALICE, action="whoami", permission=None, source_ip=None)
    assert (shared_alice.caller_id, shared_alice.caller_service) == ("alice", "mahavishnu")
