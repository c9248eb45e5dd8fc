"""Start, checkpoint, status, end and list for one user."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions.errors import InputTooLargeError, NoActiveSessionError
from session_buddy.sessions.service import MAX_TEXT_CHARS, SessionService
from session_buddy.store import SqliteDatabase


def test_start_creates_an_active_session_for_the_resolved_project(
    service: SessionService, alice: Principal, project: Path
) -> None:
    info = service.start(alice, str(project))

    assert info.created is True
    assert info.active is True
    assert info.user_id == "alice"
    assert info.project_path == str(project.resolve())
    assert info.project_name == "demo"
    assert len(info.id) == 32
    assert info.started_at == "2025-06-15T15:06:40+00:00"
    assert info.ended_at is None
    assert info.checkpoint_count == 0
    assert info.snapshot.git.branch == "main"


def test_second_start_returns_the_active_session(
    service: SessionService, alice: Principal, project: Path, clock
) -> None:
    first = service.start(alice, str(project))
    clock.advance(60)

    second = service.start(alice, str(project))

    assert second.created is False
    assert second.id == first.id
    assert second.started_at == first.started_at
    assert service.list_sessions(alice).total == 1


def test_start_with_a_trailing_slash_or_dot_segments_is_the_same_project(
    service: SessionService, alice: Principal, project: Path
) -> None:
    first = service.start(alice, str(project))

    again = service.start(alice, f"{project}/./")

    assert again.id == first.id


def test_start_after_end_creates_a_new_session(
    service: SessionService, alice: Principal, project: Path
) -> None:
    first = service.start(alice, str(project))
    service.end(alice, str(project))

    second = service.start(alice, str(project))

    assert second.created is True
    assert second.id != first.id


def test_status_without_a_session_says_so_and_how_to_start(
    service: SessionService, alice: Principal, project: Path
) -> None:
    status = service.status(alice, str(project))

    assert status.active is False
    assert status.session is None
    assert "start_session" in status.message
    assert str(project) in status.summary_text()


def test_status_reports_the_active_session_and_its_last_checkpoint(
    service: SessionService, alice: Principal, project: Path, clock
) -> None:
    started = service.start(alice, str(project))
    clock.advance(90)
    service.checkpoint(alice, str(project), "wrote the parser")

    status = service.status(alice, str(project))

    assert status.active is True
    assert status.session is not None
    assert status.session.id == started.id
    assert status.session.checkpoint_count == 1
    assert status.session.duration_seconds == 90
    assert status.last_checkpoint is not None
    assert status.last_checkpoint.note == "wrote the parser"


def test_status_counts_only_the_active_sessions_checkpoints(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    service.checkpoint(alice, str(project), "in an earlier session")
    service.end(alice, str(project))
    service.start(alice, str(project))
    for note in ("one", "two", "three"):
        service.checkpoint(alice, str(project), note)

    status = service.status(alice, str(project))

    assert status.session is not None and status.last_checkpoint is not None
    assert status.session.checkpoint_count == 3
    assert (status.last_checkpoint.number, status.last_checkpoint.note) == (3, "three")


def test_checkpoint_records_note_elapsed_time_and_number(
    service: SessionService, alice: Principal, project: Path, clock
) -> None:
    started = service.start(alice, str(project))
    clock.advance(125)
    first = service.checkpoint(alice, str(project), "first")
    clock.advance(60)
    second = service.checkpoint(alice, str(project))

    assert (first.session_id, first.number, first.note) == (started.id, 1, "first")
    assert first.elapsed_seconds == 125
    assert first.created_at == "2025-06-15T15:08:45+00:00"
    assert (second.number, second.note, second.elapsed_seconds) == (2, None, 185)


def test_checkpoint_without_an_active_session_is_refused(
    service: SessionService, alice: Principal, project: Path
) -> None:
    with pytest.raises(NoActiveSessionError, match="start_session"):
        service.checkpoint(alice, str(project), "note")


def test_blank_note_is_stored_as_no_note(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))

    assert service.checkpoint(alice, str(project), "   \n").note is None


def test_note_of_exactly_the_limit_is_accepted(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))

    info = service.checkpoint(alice, str(project), "x" * MAX_TEXT_CHARS)

    assert info.note is not None
    assert len(info.note) == MAX_TEXT_CHARS


def test_huge_note_is_rejected_and_nothing_is_lost(
    service: SessionService, alice: Principal, project: Path
) -> None:
    started = service.start(alice, str(project))
    service.checkpoint(alice, str(project), "kept")
    huge = "y" * 1_000_000

    with pytest.raises(InputTooLargeError) as raised:
        service.checkpoint(alice, str(project), huge)

    message = str(raised.value)
    assert "1,000,000" in message
    assert "10,000" in message
    assert len(message) < 200
    status = service.status(alice, str(project))
    assert status.session is not None
    assert status.session.id == started.id
    assert status.session.checkpoint_count == 1
    assert status.last_checkpoint is not None
    assert status.last_checkpoint.note == "kept"


def test_huge_summary_is_rejected_and_the_session_stays_active(
    service: SessionService, alice: Principal, project: Path
) -> None:
    started = service.start(alice, str(project))

    with pytest.raises(InputTooLargeError, match="summary"):
        service.end(alice, str(project), "z" * (MAX_TEXT_CHARS + 1))

    status = service.status(alice, str(project))
    assert status.active is True
    assert status.session is not None
    assert status.session.id == started.id


def test_end_closes_the_session_and_stores_the_handoff(
    service: SessionService, alice: Principal, project: Path, clock
) -> None:
    started = service.start(alice, str(project))
    clock.advance(3900)

    handoff = service.end(alice, str(project), "parser done")

    assert handoff.session.id == started.id
    assert handoff.session.active is False
    assert handoff.session.ended_at == "2025-06-15T16:11:40+00:00"
    assert handoff.session.duration_seconds == 3900
    assert handoff.summary == "parser done"
    assert service.status(alice, str(project)).active is False
    detail = service.get_session(alice, started.id)
    assert detail.handoff_markdown == handoff.markdown
    assert detail.summary == "parser done"


def test_end_without_an_active_session_is_refused(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    service.end(alice, str(project))

    with pytest.raises(NoActiveSessionError):
        service.end(alice, str(project))


def test_checkpoint_after_end_is_refused(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    service.end(alice, str(project))

    with pytest.raises(NoActiveSessionError):
        service.checkpoint(alice, str(project), "late")


def test_sessions_in_different_projects_are_independent(
    service: SessionService, alice: Principal, project: Path, plain_dir: Path
) -> None:
    one = service.start(alice, str(project))
    two = service.start(alice, str(plain_dir))
    service.end(alice, str(plain_dir))

    assert one.id != two.id
    assert service.status(alice, str(project)).active is True
    assert service.status(alice, str(plain_dir)).active is False


def test_list_sessions_is_newest_first_with_total_and_limit(
    service: SessionService, alice: Principal, project: Path, clock
) -> None:
    ids = []
    for _ in range(3):
        ids.append(service.start(alice, str(project)).id)
        clock.advance(10)
        service.end(alice, str(project))
        clock.advance(10)

    listed = service.list_sessions(alice, limit=2)

    assert listed.total == 3
    assert [info.id for info in listed.sessions] == [ids[2], ids[1]]
    assert "2 of 3 sessions" in listed.summary_text()


@pytest.mark.parametrize(("limit", "expected"), [(0, 1), (-5, 1), (1, 1), (10_000, 500)])
def test_list_limit_is_clamped_to_1_through_500(
    service: SessionService,
    alice: Principal,
    project: Path,
    db: SqliteDatabase,
    clock,
    limit: int,
    expected: int,
) -> None:
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO sessions(id, user_id, project_path, project_name, started_at, "
            "ended_at, snapshot_json) VALUES (?, 'alice', ?, 'demo', ?, ?, ?)",
            [
                (f"{n:032x}", str(project), clock.now + n, clock.now + n + 1, "{}")
                for n in range(501)
            ],
        )

    listed = service.list_sessions(alice, limit=limit)

    assert listed.total == 501
    assert len(listed.sessions) == expected


def test_list_sessions_can_be_filtered_by_project(
    service: SessionService, alice: Principal, project: Path, plain_dir: Path
) -> None:
    service.start(alice, str(project))
    service.start(alice, str(plain_dir))

    listed = service.list_sessions(alice, str(plain_dir))

    assert [info.project_path for info in listed.sessions] == [str(plain_dir)]
    assert listed.total == 1


def test_list_shows_checkpoint_counts(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    service.checkpoint(alice, str(project), "a")
    service.checkpoint(alice, str(project), "b")

    assert service.list_sessions(alice).sessions[0].checkpoint_count == 2


def test_summary_texts_are_readable_paragraphs(
    service: SessionService, alice: Principal, project: Path, clock
) -> None:
    started = service.start(alice, str(project))
    clock.advance(300)
    checkpoint = service.checkpoint(alice, str(project), "tests pass")
    handoff = service.end(alice, str(project), "done")

    assert started.summary_text().startswith(f"Started session {started.id}")
    assert "'demo'" in started.summary_text()
    assert "5 min into the session: tests pass" in checkpoint.summary_text()
    assert "after 5 min with 1 checkpoint" in handoff.summary_text()
    for text in (started.summary_text(), checkpoint.summary_text(), handoff.summary_text()):
        assert "\n" not in text


def test_a_long_note_is_shortened_in_the_summary_text_but_stored_whole(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    note = "n" * 5_000

    checkpoint = service.checkpoint(alice, str(project), note)

    assert checkpoint.note == note
    assert len(checkpoint.summary_text()) < 500
