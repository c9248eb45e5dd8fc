"""Who may see and change which session: owners, other users, admins and orchestrators."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_buddy.auth.principal import ANONYMOUS, Principal
from session_buddy.sessions.errors import NoActiveSessionError, SessionNotFoundError
from session_buddy.sessions.service import SessionService


def test_two_users_get_separate_sessions_in_the_same_project(
    service: SessionService, alice: Principal, bob: Principal, project: Path
) -> None:
    mine = service.start(alice, str(project))
    theirs = service.start(bob, str(project))

    assert theirs.created is True
    assert theirs.id != mine.id


def test_a_user_does_not_see_another_users_active_session(
    service: SessionService, alice: Principal, bob: Principal, project: Path
) -> None:
    service.start(alice, str(project))

    assert service.status(bob, str(project)).active is False


def test_a_user_cannot_checkpoint_another_users_session(
    service: SessionService, alice: Principal, bob: Principal, project: Path
) -> None:
    service.start(alice, str(project))

    with pytest.raises(NoActiveSessionError):
        service.checkpoint(bob, str(project), "not mine")

    assert service.status(alice, str(project)).session.checkpoint_count == 0


def test_a_user_cannot_end_another_users_session(
    service: SessionService, alice: Principal, bob: Principal, project: Path
) -> None:
    service.start(alice, str(project))

    with pytest.raises(NoActiveSessionError):
        service.end(bob, str(project))

    assert service.status(alice, str(project)).active is True


def test_ending_my_session_leaves_another_users_session_active(
    service: SessionService, alice: Principal, bob: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    service.start(bob, str(project))

    service.end(bob, str(project))

    assert service.status(alice, str(project)).active is True


def test_a_user_lists_only_their_own_sessions(
    service: SessionService, alice: Principal, bob: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    service.start(bob, str(project))

    listed = service.list_sessions(alice)

    assert [info.user_id for info in listed.sessions] == ["alice"]
    assert listed.total == 1


def test_a_user_cannot_show_another_users_session_by_id(
    service: SessionService, alice: Principal, bob: Principal, project: Path
) -> None:
    session = service.start(alice, str(project))

    with pytest.raises(SessionNotFoundError):
        service.get_session(bob, session.id)


def test_showing_an_unknown_or_malformed_id_is_not_found(
    service: SessionService, alice: Principal
) -> None:
    with pytest.raises(SessionNotFoundError):
        service.get_session(alice, "0" * 32)
    with pytest.raises(SessionNotFoundError) as raised:
        service.get_session(alice, "'; DROP TABLE sessions; --" * 100)
    assert len(str(raised.value)) < 120


def test_anonymous_callers_share_one_identity(service: SessionService, project: Path) -> None:
    first = service.start(ANONYMOUS, str(project))

    assert service.start(ANONYMOUS, str(project)).id == first.id


@pytest.mark.parametrize("privileged", ["orchestrator", "admin"])
def test_privileged_status_falls_back_to_the_latest_active_session_of_any_user(
    request: pytest.FixtureRequest,
    service: SessionService,
    alice: Principal,
    bob: Principal,
    project: Path,
    clock,
    privileged: str,
) -> None:
    caller: Principal = request.getfixturevalue(privileged)
    service.start(alice, str(project))
    clock.advance(10)
    latest = service.start(bob, str(project))

    status = service.status(caller, str(project))

    assert status.active is True
    assert status.session is not None
    assert status.session.id == latest.id
    assert "bob" in status.message


def test_privileged_status_of_another_users_session_shows_its_checkpoints(
    service: SessionService, bob: Principal, orchestrator: Principal, project: Path
) -> None:
    service.start(bob, str(project))
    service.checkpoint(bob, str(project), "first")
    service.checkpoint(bob, str(project), "second")

    status = service.status(orchestrator, str(project))

    assert status.session is not None and status.last_checkpoint is not None
    assert status.session.checkpoint_count == 2
    assert (status.last_checkpoint.number, status.last_checkpoint.note) == (2, "second")


def test_privileged_caller_prefers_its_own_active_session(
    service: SessionService,
    alice: Principal,
    orchestrator: Principal,
    project: Path,
    clock,
) -> None:
    own = service.start(orchestrator, str(project))
    clock.advance(10)
    service.start(alice, str(project))

    assert service.status(orchestrator, str(project)).session.id == own.id
    assert service.checkpoint(orchestrator, str(project), "mine").session_id == own.id


def test_orchestrator_can_checkpoint_a_users_session(
    service: SessionService, alice: Principal, orchestrator: Principal, project: Path
) -> None:
    session = service.start(alice, str(project))

    checkpoint = service.checkpoint(orchestrator, str(project), "from mahavishnu")

    assert checkpoint.session_id == session.id
    assert service.status(alice, str(project)).last_checkpoint.note == "from mahavishnu"


def test_orchestrator_can_end_a_users_session_and_is_named_in_the_handoff(
    service: SessionService, alice: Principal, orchestrator: Principal, project: Path
) -> None:
    session = service.start(alice, str(project))

    handoff = service.end(orchestrator, str(project), "wrapped up")

    assert handoff.session.id == session.id
    assert handoff.session.user_id == "alice"
    assert handoff.ended_by == "mahavishnu"
    assert "**User:** alice" in handoff.markdown
    assert "**Ended by:** mahavishnu" in handoff.markdown
    assert service.status(alice, str(project)).active is False


def test_privileged_caller_with_no_active_session_anywhere_is_refused(
    service: SessionService, admin: Principal, project: Path
) -> None:
    with pytest.raises(NoActiveSessionError):
        service.checkpoint(admin, str(project))


def test_privileged_start_creates_its_own_session(
    service: SessionService, alice: Principal, admin: Principal, project: Path
) -> None:
    users = service.start(alice, str(project))

    own = service.start(admin, str(project))

    assert own.created is True
    assert own.id != users.id
    assert own.user_id == "root-admin"


def test_privileged_list_shows_every_users_sessions(
    service: SessionService,
    alice: Principal,
    bob: Principal,
    admin: Principal,
    project: Path,
) -> None:
    service.start(alice, str(project))
    service.start(bob, str(project))

    listed = service.list_sessions(admin)

    assert sorted(info.user_id for info in listed.sessions) == ["alice", "bob"]
    assert listed.total == 2


def test_privileged_caller_can_show_any_session(
    service: SessionService, alice: Principal, admin: Principal, project: Path
) -> None:
    session = service.start(alice, str(project))

    assert service.get_session(admin, session.id).session.user_id == "alice"


def test_list_all_shows_every_users_sessions(
    service: SessionService, alice: Principal, bob: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    service.start(bob, str(project))

    assert service.list_all().total == 2


def test_a_role_claim_that_merely_contains_admin_is_not_privileged(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    pretender = Principal(user_id="eve", authenticated=True, role="not-admin")

    assert service.status(pretender, str(project)).active is False


def test_the_same_name_under_another_issuer_is_another_owner(
    service: SessionService, alice: Principal, project: Path
) -> None:
    provider_alice = Principal(
        user_id="alice", authenticated=True, role="user", authority="https://idp.example"
    )
    mine = service.start(alice, str(project))
    theirs = service.start(provider_alice, str(project))

    assert theirs.created is True and theirs.id != mine.id
    assert [s.id for s in service.list_sessions(provider_alice).sessions] == [theirs.id]
    assert [s.id for s in service.list_sessions(alice).sessions] == [mine.id]
    with pytest.raises(SessionNotFoundError):
        service.get_session(provider_alice, mine.id)
    service.end(provider_alice, str(project))
    assert service.status(alice, str(project)).active is True
