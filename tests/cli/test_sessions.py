"""``session-buddy sessions list|show`` over sessions recorded by the session service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions import SessionService
from session_buddy.sessions.target import ReportedProject
from session_buddy.store import SqliteDatabase
from testkit.cli import CliEnv

ALICE = Principal(user_id="alice", authenticated=True)
BOB = Principal(user_id="bob", authenticated=True)


@pytest.fixture
def service(cli: CliEnv) -> SessionService:
    return SessionService(SqliteDatabase(cli.data_dir / "session-buddy.db"))


def project(cli: CliEnv, name: str) -> str:
    path = cli.cwd / name
    path.mkdir()
    return str(path)


def test_list_without_a_database_says_so_and_creates_nothing(cli: CliEnv) -> None:
    result = cli.run("sessions", "list")
    assert result.exit_code == 0
    assert "No sessions recorded yet" in result.stderr
    assert not cli.data_dir.exists()
    assert json.loads(cli.run("sessions", "list", "--json").stdout) == {
        "sessions": [],
        "total": 0,
    }


def test_list_shows_every_users_sessions_in_a_table(cli: CliEnv, service: SessionService) -> None:
    alpha = service.start(ALICE, project(cli, "alpha"))
    service.start(BOB, project(cli, "beta"))
    service.end(BOB, str(cli.cwd / "beta"))
    result = cli.run("sessions", "list")
    assert result.exit_code == 0
    assert alpha.id[:8] in result.stdout
    assert "alice" in result.stdout and "bob" in result.stdout
    assert "active" in result.stdout and "ended" in result.stdout


def test_list_filters_by_project(cli: CliEnv, service: SessionService) -> None:
    service.start(ALICE, project(cli, "alpha"))
    service.start(ALICE, project(cli, "beta"))
    result = cli.run("sessions", "list", "--project", "alpha", "--json")
    listed = json.loads(result.stdout)
    assert [s["project_name"] for s in listed["sessions"]] == ["alpha"]


def test_list_json_is_the_session_list_model(cli: CliEnv, service: SessionService) -> None:
    started = service.start(ALICE, project(cli, "alpha"))
    listed = json.loads(cli.run("sessions", "list", "--json").stdout)
    assert listed["total"] == 1
    assert listed["sessions"][0]["id"] == started.id
    assert listed["sessions"][0]["user_id"] == "alice"


def test_list_shows_the_20_most_recent_unless_all(cli: CliEnv, service: SessionService) -> None:
    for number in range(22):
        service.start(ALICE, project(cli, f"p{number}"))
    recent = cli.run("sessions", "list")
    assert "Showing 20 of 22 sessions (use --all for more)" in recent.stderr
    everything = json.loads(cli.run("sessions", "list", "--all", "--json").stdout)
    assert len(everything["sessions"]) == 22


def test_list_with_a_missing_project_directory_is_one_red_line(
    cli: CliEnv, service: SessionService
) -> None:
    service.start(ALICE, project(cli, "alpha"))
    result = cli.run("sessions", "list", "--project", "./nowhere")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_show_by_id_prefix_with_checkpoints_and_handoff(
    cli: CliEnv, service: SessionService
) -> None:
    path = project(cli, "alpha")
    started = service.start(ALICE, path)
    service.checkpoint(ALICE, path, note="wrote the [bold]parser[/bold]")
    service.end(ALICE, path, summary="parser done")
    result = cli.run("sessions", "show", started.id[:8])
    assert result.exit_code == 0
    assert started.id in result.stdout
    assert "wrote the [bold]parser[/bold]" in result.stdout  # shown, not interpreted
    assert "parser done" in result.stdout
    assert "Checkpoints" in result.stdout


def test_show_json(cli: CliEnv, service: SessionService) -> None:
    started = service.start(ALICE, project(cli, "alpha"))
    detail = json.loads(cli.run("sessions", "show", started.id, "--json").stdout)
    assert detail["session"]["id"] == started.id
    assert detail["checkpoints"] == []


def test_show_unknown_id_fails_with_the_fix(cli: CliEnv, service: SessionService) -> None:
    service.start(ALICE, project(cli, "alpha"))
    result = cli.run("sessions", "show", "ffffffff")
    assert result.exit_code == 1
    assert "No session ffffffff found" in result.stderr
    assert "sessions list" in result.stderr


def test_show_too_short_prefix_is_refused(cli: CliEnv, service: SessionService) -> None:
    started = service.start(ALICE, project(cli, "alpha"))
    prefix = started.id[:3]  # it matches, but three characters are too few to be sure
    result = cli.run("sessions", "show", prefix)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"❌ Session id {prefix!r} is too short — fix: give at least 4 characters\n"
    )


def test_sessions_commands_need_no_secret(cli: CliEnv, service: SessionService) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    started = service.start(ALICE, project(cli, "alpha"))
    listed = cli.run("sessions", "list")
    shown = cli.run("sessions", "show", started.id[:8])
    assert (listed.exit_code, listed.stderr) == (0, "")
    assert "Sessions (1)" in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if started.id[:8] in line)
    assert "alpha" in row and "alice" in row and "active" in row
    assert (shown.exit_code, shown.stderr) == (0, "")
    assert f"Session {started.id}" in shown.stdout


def test_project_option_accepts_absolute_paths(cli: CliEnv, service: SessionService) -> None:
    path = project(cli, "alpha")
    service.start(ALICE, path)
    listed = json.loads(cli.run("sessions", "list", "--project", path, "--json").stdout)
    assert Path(listed["sessions"][0]["project_path"]) == Path(path).resolve()


def test_list_filters_by_project_id_in_any_spelling(cli: CliEnv, service: SessionService) -> None:
    remote = service.start(ALICE, ReportedProject.parse("https://github.com/o/r.git"))
    service.start(BOB, project(cli, "alpha"))

    result = cli.run("sessions", "list", "--project", "git@github.com:o/r", "--json")
    table = cli.run("sessions", "list", "--project", "github.com/o/r")

    listed = json.loads(result.stdout)
    assert [(s["id"], s["project_path"], s["project_id"]) for s in listed["sessions"]] == [
        (remote.id, None, "github.com/o/r")
    ]
    assert remote.id[:8] in table.stdout and "github.com/o/r" in table.stdout


def test_a_name_that_is_no_directory_is_a_project_id(cli: CliEnv, service: SessionService) -> None:
    service.start(ALICE, project(cli, "alpha"))

    result = cli.run("sessions", "list", "--project", "nowhere")

    assert result.exit_code == 0
    assert "No sessions found for project id 'nowhere' (no directory 'nowhere' here either)." in (
        result.stderr
    )


def test_a_malformed_project_id_is_one_red_line(cli: CliEnv, service: SessionService) -> None:
    service.start(ALICE, project(cli, "alpha"))

    result = cli.run("sessions", "list", "--project", "ftp://host/o/r")

    assert result.exit_code == 1
    assert "project URL scheme 'ftp' is not supported" in result.stderr


def test_show_names_the_project_id(cli: CliEnv, service: SessionService) -> None:
    started = service.start(ALICE, ReportedProject.parse("git@github.com:o/r.git", "main"))

    result = cli.run("sessions", "show", started.id[:8])

    assert result.exit_code == 0
    assert "r (github.com/o/r)" in result.stdout
    assert "branch main (reported)" in result.stdout
