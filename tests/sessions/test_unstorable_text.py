"""A note or summary no database can store is refused as the caller's input, on both
backends, before anything is written: never a "storage unavailable" answer, and the
session keeps working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.config import load_settings
from session_buddy.sessions.errors import UnstorableTextError
from session_buddy.sessions.service import SessionService
from session_buddy.store import Database, SqliteDatabase, database_for
from testkit.git import make_git_repo

ALICE = Principal(user_id="alice", authenticated=True, role="user")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db: Database = SqliteDatabase(tmp_path / "sessions.db")
    else:
        url = request.getfixturevalue("postgres_url")
        db = database_for(load_settings(database_url=url, data_dir=tmp_path))
    db.open()
    try:
        yield db
    finally:
        db.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "done\x00ok",
            "note contains NUL (U+0000) at position 4, which cannot be stored; remove it",
        ),
        (
            "done \ud800",
            "note contains a lone surrogate (U+D800) at position 5, which cannot be stored; "
            "remove it",
        ),
    ],
)
def test_a_note_no_database_can_store_is_refused_as_input_and_the_session_goes_on(
    database: Database, tmp_path: Path, text: str, expected: str
) -> None:
    service = SessionService(database)
    project = str(make_git_repo(tmp_path / "demo"))
    service.start(ALICE, project)

    with pytest.raises(UnstorableTextError) as refused:
        service.checkpoint(ALICE, project, note=text)

    assert str(refused.value) == expected
    assert service.checkpoint(ALICE, project, note="escape \x1b[31m is stored").note == (
        "escape \x1b[31m is stored"
    )
    with pytest.raises(UnstorableTextError, match=r"^summary contains NUL"):
        service.end(ALICE, project, summary="\x00")
    assert service.end(ALICE, project, summary="fine").summary == "fine"
