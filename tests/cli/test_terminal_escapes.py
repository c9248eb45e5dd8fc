"""Text from outside reaches the terminal escaped, in every table and message of the CLI.

A caller chooses its tool name, user id and notes; a token's issuer chooses its claims; a
repository chooses its directory names. Written raw, such text could retitle the window
(OSC), clear the screen, ring the bell, hide or reorder what follows (bidi overrides), or
crash the output (a lone surrogate cannot be encoded). Each table below is filled with
real rows — written by the real store, the real session service, a real signed token —
and its output must hold only printable characters, the hostile ones shown as escapes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions import SessionService
from session_buddy.store import SqliteDatabase
from session_buddy.store.audit import AuditRecord, AuditRepository
from testkit.cli import CliEnv, flat
from testkit.tokens import mint

# an OSC window title ended by BEL, a screen clear, NUL, a right-to-left override and isolate
HOSTILE = "ok\x1b]0;pwned\x07\x1b[2J\x00\u202eevil\u2066x"
IN_NOTES = HOSTILE.replace("\x00", "\x01")  # a note cannot hold NUL (UnstorableTextError)
IN_NAMES = "repo\x1b[31m\u202ered"  # what a directory name or variable can hold (no NUL)
SURROGATE = "\ud800"  # only JSON can carry it (a token's claims)


def assert_terminal_safe(output: str) -> None:
    unsafe = sorted({f"U+{ord(ch):04X}" for ch in output if not ch.isprintable() and ch != "\n"})
    assert unsafe == [], f"raw characters reached the terminal: {unsafe}\n{output!r}"


def test_audit_list_escapes_what_callers_chose(cli: CliEnv) -> None:
    now = time.time()
    database = SqliteDatabase(cli.data_dir / "session-buddy.db").open()
    row = AuditRecord(
        first_seen=now,
        last_seen=now,
        count=1,
        service="session-buddy",
        caller_service=HOSTILE,
        caller_id=HOSTILE,
        action=HOSTILE,
        permission=HOSTILE,
        result="denied",
        reason=HOSTILE,
        source_ip="\u202e1.2.3.4",
        token_id=None,
    )
    AuditRepository(database).write([row])
    database.close()
    result = cli.run("audit", "list")
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result.output)
    assert "\\x1b]0;pwned\\x07" in flat(result.stdout)
    assert "\\u202e1.2.3.4" in flat(result.stdout)


@pytest.fixture
def hostile_session(cli: CliEnv) -> str:
    """A session of a user whose id, project directory, note and summary are hostile."""
    project = cli.cwd / IN_NAMES
    project.mkdir()
    database = SqliteDatabase(cli.data_dir / "session-buddy.db").open()
    service = SessionService(database)
    caller = Principal(user_id=HOSTILE, authenticated=True)
    session = service.start(caller, str(project))
    service.checkpoint(caller, str(project), IN_NOTES)
    service.end(caller, str(project), IN_NOTES)
    database.close()
    return session.id


def test_sessions_list_escapes_user_ids_and_directory_names(
    cli: CliEnv, hostile_session: str
) -> None:
    result = cli.run("sessions", "list")
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result.output)
    assert "\\u202ered" in flat(result.stdout)


def test_sessions_show_escapes_notes_summaries_and_the_handoff(
    cli: CliEnv, hostile_session: str
) -> None:
    result = cli.run("sessions", "show", hostile_session)
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result.output)
    assert "\\x07" in flat(result.stdout)


def test_token_verify_escapes_claims_even_lone_surrogates(cli: CliEnv) -> None:
    token = mint(cli.secret, HOSTILE + SURROGATE, team=HOSTILE, **{HOSTILE: SURROGATE})
    result = cli.run("token", "verify", token)
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result.output)
    assert "\\ud800" in flat(result.stdout)


def test_a_path_in_an_error_line_is_escaped(cli: CliEnv) -> None:
    result = cli.run("secret", "generate", "--env-file", str(cli.cwd / IN_NAMES / ".env"))
    assert result.exit_code == 1
    assert_terminal_safe(result.output)
    assert "\\x1b[31m" in result.stderr


def test_auth_status_escapes_settings_and_paths(cli: CliEnv, tmp_path: Path) -> None:
    cli.set("SESSION_BUDDY_ALLOWED_ISSUERS", IN_NAMES)
    cli.set("SESSION_BUDDY_AUDIENCE", IN_NAMES)
    cli.set("SESSION_BUDDY_DATA_DIR", str(tmp_path / IN_NAMES))
    result = cli.run("auth", "status")
    assert_terminal_safe(result.output)
    assert "\\x1b[31m\\u202ered" in flat(result.stdout)


def test_error_lines_escape_what_they_quote(cli: CliEnv) -> None:
    result = cli.run("sessions", "show", HOSTILE)
    assert result.exit_code == 1
    assert_terminal_safe(result.output)
