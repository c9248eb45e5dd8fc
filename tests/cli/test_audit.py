"""``session-buddy audit list|export``: the trail as a table, as JSON, as JSON lines."""

from __future__ import annotations

import json
import time

import pytest

from session_buddy.auth import errors
from session_buddy.auth.principal import Principal
from session_buddy.auth.trail import AuditTrail, AuthDecision
from session_buddy.store import SqliteDatabase
from session_buddy.store.audit import AuditRepository
from testkit.cli import CliEnv

NOW = time.time()
ALICE = Principal(
    user_id="alice", authenticated=True, issuer="mahavishnu", claims={"jti": "alice-jti"}
)
BOB = Principal(user_id="bob", authenticated=True, claims={"jti": "bob-jti"})


@pytest.fixture
def recorded(cli: CliEnv) -> None:
    """Alice ended a session an hour ago; Bob listed; a client was refused twice."""
    trail = AuditTrail(AuditRepository(SqliteDatabase(cli.data_dir / "session-buddy.db")))
    trail.record(
        AuthDecision.allowed(
            ALICE, action="end_session", permission="write", source_ip="stdio", now=NOW - 3600
        )
    )
    trail.record(
        AuthDecision.allowed(
            BOB, action="list_sessions", permission="read", source_ip="10.0.0.2", now=NOW - 60
        )
    )
    for offset in (30, 20):
        trail.record(
            AuthDecision.denied(
                errors.ExpiredTokenError(),
                action="start_session",
                permission="write",
                source_ip="10.0.0.9",
                token="eyJexpired.token.here",
                now=NOW - offset,
            )
        )
    trail.close()


def events(cli: CliEnv, *args: str) -> list[dict[str, object]]:
    result = cli.run("audit", "list", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.usefixtures("recorded")
def test_list_json_answers_who_ended_a_session(cli: CliEnv) -> None:
    (event,) = events(cli, "--tool", "end_session")
    assert (event["caller_id"], event["caller_service"], event["result"]) == (
        "alice",
        "mahavishnu",
        "allowed",
    )
    assert event["token_id"] == "alice-jti"
    assert event["source_ip"] == "stdio"


@pytest.mark.usefixtures("recorded")
def test_filters_combine_and_order_is_newest_first(cli: CliEnv) -> None:
    assert [e["action"] for e in events(cli)] == ["start_session", "list_sessions", "end_session"]
    assert [e["caller_id"] for e in events(cli, "--user", "bob")] == ["bob"]
    denied = events(cli, "--denied")
    assert [(e["reason"], e["count"]) for e in denied] == [("expired", 2)]
    assert [e["action"] for e in events(cli, "--since", "10m")] == [
        "start_session",
        "list_sessions",
    ]
    assert len(events(cli, "--limit", "1")) == 1


@pytest.mark.usefixtures("recorded")
def test_the_table_shows_every_row_and_never_a_token(cli: CliEnv) -> None:
    result = cli.run("audit", "list")
    assert result.exit_code == 0
    for text in ("end_session", "alice (mahavishnu)", "denied", "expired", "10.0.0.9"):
        assert text in result.stdout
    assert "eyJ" not in result.stdout + result.stderr


@pytest.mark.usefixtures("recorded")
def test_export_writes_json_lines_oldest_first_in_the_mcp_common_shape(cli: CliEnv) -> None:
    result = cli.run("audit", "export", "--since", "2h")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["action"] for line in lines] == ["end_session", "list_sessions", "start_session"]
    fields = {"event", "timestamp", "service", "caller_service", "caller_id", "action",
              "permission", "result", "reason", "source_ip", "token_id"}  # fmt: skip
    assert fields <= lines[0].keys()
    assert all(line["event"] == "auth_audit" for line in lines)
    assert [line["action"] for line in lines if line["timestamp"] >= lines[1]["timestamp"]] == [
        "list_sessions",
        "start_session",
    ]


def test_without_a_database_there_is_nothing_and_nothing_is_created(cli: CliEnv) -> None:
    result = cli.run("audit", "list")
    assert result.exit_code == 0
    assert "No audit events match." in result.stderr
    assert cli.run("audit", "export").stdout == ""
    assert not cli.data_dir.exists()


@pytest.mark.usefixtures("recorded")
def test_reading_the_trail_needs_no_secret(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    assert [e["caller_id"] for e in events(cli, "--user", "alice")] == ["alice"]


@pytest.mark.parametrize("since", ["yesterday", "1y", "-1h", ""])
def test_a_malformed_since_is_a_usage_error(cli: CliEnv, since: str) -> None:
    result = cli.run("audit", "list", "--since", since)
    assert result.exit_code == 2
    words = " ".join(result.output.replace("│", " ").split())
    assert "is not a duration like 90s, 15m, 1h, 2d or 1w" in words
