"""Who did what, end to end: the audit trail, ``/metrics`` and JSON logs of a real server.

Each scenario runs against a real ``session-buddy serve`` (HTTP and stdio) on both
backends — a SQLite file and a real PostgreSQL database — and reads the trail back with the
real ``session-buddy audit`` command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal
from mcp.shared.exceptions import MCPError
from prometheus_client.parser import text_string_to_metric_families

from session_buddy.mcp.step_up import FORBIDDEN
from testkit.environment import new_secret, server_environment
from testkit.mcp import (
    JSON_RPC_HEADERS,
    connect,
    http_transport,
    post_json_rpc,
    stdio_transport,
    tools_call,
)
from testkit.processes import run_python
from testkit.server import launch_http_server
from testkit.tokens import mint

pytestmark = pytest.mark.e2e

FLUSH_DEADLINE_SECONDS = 10.0  # the trail writes every 0.5 s; generous for a loaded machine


@dataclass
class Deployment:
    backend: str
    secret: str
    env: dict[str, str]
    url: str
    root: Path
    log: Path

    def audit(self, *args: str) -> list[dict[str, Any]]:
        result = run_python("-m", "session_buddy", "audit", "list", "--json", *args,
                            cwd=self.root, env=self.env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        events: list[dict[str, Any]] = json.loads(result.stdout)
        return events

    def wait_for(self, predicate: Any, *args: str) -> list[dict[str, Any]]:
        """The trail once ``predicate(events)`` holds (it is written in the background)."""
        deadline = time.monotonic() + FLUSH_DEADLINE_SECONDS
        while True:
            events = self.audit(*args)
            if predicate(events) or time.monotonic() > deadline:
                return events
            time.sleep(0.2)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = httpx.get(self.url.replace("/mcp", "/metrics"), timeout=10)
        assert response.status_code == 200
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    secret = new_secret()
    settings = {"SESSION_BUDDY_LOG_FORMAT": "json", "SESSION_BUDDY_LOG_LEVEL": "DEBUG"}
    if request.param == "postgresql":
        settings["SESSION_BUDDY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    env = server_environment(tmp_path / "data", secret, **settings)
    (tmp_path / "project").mkdir()
    log = tmp_path / "server.log"
    with launch_http_server(env, tmp_path, log_path=log) as server:
        yield Deployment(request.param, secret, env, server.url, tmp_path, log)


def call(url: str, portal: BlockingPortal, tool: str, *, bearer: str | None = None,
         **arguments: Any) -> Any:  # fmt: skip
    conn = connect(portal, http_transport(url, bearer=bearer))
    try:
        return conn.call(tool, **arguments)
    finally:
        conn.close()


def test_an_allowed_and_a_denied_call_are_in_the_trail_with_the_mcp_common_fields(
    deployment: Deployment, portal: BlockingPortal
) -> None:
    reader = mint(deployment.secret, "alice", iss="mahavishnu", scopes=["read"], jti="alice-r1")
    call(deployment.url, portal, "list_sessions", bearer=reader)
    project = str(deployment.root / "project")
    with pytest.raises(MCPError) as refused:  # the 403 step-up, before the tool runs
        call(deployment.url, portal, "start_session", bearer=reader, working_directory=project)
    assert refused.value.code == FORBIDDEN

    events = deployment.wait_for(lambda e: len(e) >= 2, "--user", "alice")
    by_action = {event["action"]: event for event in events}
    assert by_action["list_sessions"] | {"timestamp": "-", "last_seen": "-"} == {
        "event": "auth_audit",
        "timestamp": "-",
        "last_seen": "-",
        "service": "session-buddy",
        "caller_service": "mahavishnu",
        "caller_id": "alice",
        "action": "list_sessions",
        "permission": "read",
        "result": "allowed",
        "reason": None,
        "source_ip": "127.0.0.1",
        "token_id": "alice-r1",
        "count": 1,
    }
    denied = by_action["start_session"]
    assert (denied["result"], denied["reason"], denied["permission"]) == (
        "denied",
        "missing_scope",
        "write",
    )
    assert (denied["caller_id"], denied["token_id"]) == ("alice", "alice-r1")
    assert [e["action"] for e in deployment.audit("--denied")] == ["start_session"]


def test_stdio_calls_are_audited_with_stdio_as_the_source(
    deployment: Deployment, portal: BlockingPortal
) -> None:
    token = mint(deployment.secret, "bob", jti="bob-1")
    with (deployment.root / "stdio.log").open("w") as errlog:
        conn = connect(portal, stdio_transport(deployment.env, deployment.root, errlog))
        try:
            conn.call("whoami", token=token)
            conn.call("list_sessions", token="not-a-token")
        finally:
            conn.close()  # a clean shutdown writes the pending batch

    events = deployment.audit("--since", "1h")
    stdio = [e for e in events if e["source_ip"] == "stdio"]
    assert {(e["action"], e["result"], e["reason"]) for e in stdio} == {
        ("whoami", "allowed", None),
        ("list_sessions", "denied", "malformed"),
    }


def test_a_bad_bearer_header_and_a_throttled_request_are_audited(
    deployment: Deployment,
) -> None:
    endpoint = deployment.url
    request = tools_call("session_status", {"working_directory": "/tmp"})
    statuses = [
        post_json_rpc(endpoint, request, authorization="Bearer bad").status_code for _ in range(22)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429

    events = deployment.wait_for(
        lambda e: {x["reason"] for x in e} >= {"malformed", "throttled"}, "--denied"
    )
    reasons = {event["reason"]: event for event in events}
    assert reasons["malformed"]["action"] == "session_status"
    assert reasons["malformed"]["count"] == 20
    assert reasons["throttled"]["action"] == "*"  # whatever a throttled client asked for
    assert reasons["throttled"]["count"] == 2
    assert reasons["throttled"]["source_ip"] == "127.0.0.1"


def test_a_thousand_identical_bad_tokens_leave_a_bounded_number_of_rows(
    deployment: Deployment, portal: BlockingPortal
) -> None:
    bad = mint(new_secret(), "mallory")  # signed with another secret
    with (deployment.root / "flood.log").open("w") as errlog:
        conn = connect(portal, stdio_transport(deployment.env, deployment.root, errlog))
        try:
            for _ in range(1000):
                assert conn.call("whoami", token=bad).is_error
        finally:
            conn.close()

    events = deployment.audit("--denied", "--limit", "1000")
    assert sum(e["count"] for e in events) == 1000
    assert len(events) <= 3  # one row, or a few if a batch straddled the folding window


def test_metrics_move_with_calls_and_carry_no_identity(
    deployment: Deployment, portal: BlockingPortal
) -> None:
    token = mint(deployment.secret, "carol", scopes=["read"])
    before = deployment.metrics()
    call(deployment.url, portal, "list_sessions", bearer=token)
    with pytest.raises(MCPError):  # the 403 step-up: a decision, no tool call
        call(deployment.url, portal, "start_session", bearer=token, working_directory="/tmp")
    call(deployment.url, portal, "start_session", token=token, working_directory="/tmp")
    after = deployment.metrics()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("session_buddy_tool_calls_total", tool="list_sessions", outcome="ok") == 1
    assert delta("session_buddy_tool_calls_total", tool="start_session",
                 outcome="authorization") == 1  # fmt: skip
    assert delta("session_buddy_tool_call_duration_seconds_count", tool="list_sessions") == 1
    assert delta("session_buddy_auth_decisions_total", result="allowed", reason="none") == 1
    assert delta("session_buddy_auth_decisions_total", result="denied",
                 reason="missing_scope") == 2  # fmt: skip
    assert ("session_buddy_revoked_tokens", ()) in after
    labels = {value for _, pairs in after for _, value in pairs}
    assert "carol" not in labels and token not in str(after)


def test_json_logs_and_every_output_are_free_of_tokens_and_secrets(
    deployment: Deployment, portal: BlockingPortal
) -> None:
    token = mint(deployment.secret, "dave", jti="dave-1")
    forged = mint(new_secret(), "dave")
    call(deployment.url, portal, "whoami", bearer=token)
    call(deployment.url, portal, "whoami", token=forged)
    post_json_rpc(deployment.url, tools_call("whoami", {}), authorization=f"Bearer {forged}")
    deployment.wait_for(lambda e: sum(x["count"] for x in e) >= 3)
    export = run_python("-m", "session_buddy", "audit", "export", "--since", "1h",
                        cwd=deployment.root, env=deployment.env).stdout  # fmt: skip
    metrics = httpx.get(deployment.url.replace("/mcp", "/metrics"), timeout=10).text
    log = deployment.log.read_text()

    outputs = {"export": export, "metrics": metrics, "log": log,
               "list": json.dumps(deployment.audit("--since", "1h"))}  # fmt: skip
    secrets = [token, forged, deployment.secret, token.split(".")[2], forged.split(".")[2]]
    database_url = deployment.env.get("SESSION_BUDDY_DATABASE_URL")
    if database_url:
        secrets.append(database_url.split(":")[2].split("@")[0])  # the password
    for name, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"{name} leaks a secret"
    assert [json.loads(line)["event"] for line in export.splitlines()] == ["auth_audit"] * len(
        export.splitlines()
    )
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    failures = [line for line in lines if line.get("event") == "auth_failure"]
    assert failures and all(line["reason"] for line in failures)


def test_metrics_can_be_turned_off_and_are_off_by_default_beyond_loopback(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    off = server_environment(tmp_path / "off", secret, SESSION_BUDDY_METRICS="false")
    with launch_http_server(off, tmp_path) as server:
        assert httpx.get(server.url.replace("/mcp", "/metrics")).status_code == 404
    wide = server_environment(tmp_path / "wide", secret)
    with launch_http_server(wide, tmp_path, host="0.0.0.0", reach_at="127.0.0.1") as server:
        assert httpx.get(server.url.replace("/mcp", "/metrics")).status_code == 404
    forced = server_environment(tmp_path / "forced", secret, SESSION_BUDDY_METRICS="true")
    with launch_http_server(forced, tmp_path, host="0.0.0.0", reach_at="127.0.0.1") as server:
        assert httpx.get(server.url.replace("/mcp", "/metrics")).status_code == 200


def test_reading_the_trail_needs_no_secret(deployment: Deployment, portal: BlockingPortal) -> None:
    call(deployment.url, portal, "whoami", bearer=mint(deployment.secret, "erin"))
    deployment.wait_for(lambda e: any(x["caller_id"] == "erin" for x in e))
    env = {k: v for k, v in deployment.env.items() if k != "SESSION_BUDDY_SECRET"}
    result = run_python("-m", "session_buddy", "audit", "list", "--json", "--user", "erin",
                        cwd=deployment.root, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [e["action"] for e in json.loads(result.stdout)] == ["whoami"]


def test_an_audit_switched_off_writes_nothing(tmp_path: Path, portal: BlockingPortal) -> None:
    secret = new_secret()
    env = server_environment(tmp_path / "data", secret, SESSION_BUDDY_AUDIT="false")
    with launch_http_server(env, tmp_path) as server:
        call(server.url, portal, "whoami", bearer=mint(secret, "frank"))
        time.sleep(1.0)  # two flush intervals
        result = run_python("-m", "session_buddy", "audit", "list", "--json",
                            cwd=tmp_path, env=env)  # fmt: skip
    assert json.loads(result.stdout) == []


def test_another_process_revocation_shows_in_the_propagation_histogram(
    deployment: Deployment, portal: BlockingPortal
) -> None:
    token = mint(deployment.secret, "grace", jti="grace-1")
    call(deployment.url, portal, "whoami", bearer=token)  # the server knows the token
    key = ("session_buddy_revocation_propagation_seconds_count", ())
    before = deployment.metrics().get(key, 0.0)
    revoked = run_python("-m", "session_buddy", "token", "revoke", token,
                         cwd=deployment.root, env=deployment.env)  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr

    # PostgreSQL pushes it; SQLite is read when a check is due, so keep checking.
    deadline = time.monotonic() + FLUSH_DEADLINE_SECONDS
    while deployment.metrics().get(key, 0.0) <= before and time.monotonic() < deadline:
        post_json_rpc(deployment.url, tools_call("whoami", {}), authorization=f"Bearer {token}")
        time.sleep(0.1)
    after = deployment.metrics()
    assert after.get(key, 0.0) == before + 1
    assert after[("session_buddy_revocation_propagation_seconds_sum", ())] < 5.0


def post_raw(url: str, message: dict[str, Any], *, authorization: str) -> httpx.Response:
    """POST a JSON-RPC message as the bytes ``json.dumps`` makes (a lone surrogate travels
    as its ``\\ud800`` escape, which every JSON parser reads back as that surrogate)."""
    headers = {**JSON_RPC_HEADERS, "Content-Type": "application/json",
               "Authorization": authorization}  # fmt: skip
    return httpx.post(url, content=json.dumps(message).encode(), headers=headers, timeout=10)


def test_a_surrogate_or_nul_in_an_unauthenticated_request_never_stops_the_trail(
    deployment: Deployment, portal: BlockingPortal
) -> None:
    hostile = ["\ud800", "start\x00session", "\x1b]0;owned\x07", "x" * 70_000]
    for name in hostile:
        reply = post_raw(deployment.url, tools_call(name, {}), authorization="Bearer bad")
        assert reply.status_code == 401
    method = {"jsonrpc": "2.0", "id": 1, "method": "\ud800\x00", "params": {}}
    assert post_raw(deployment.url, method, authorization="Bearer bad").status_code == 401
    call(deployment.url, portal, "whoami", bearer=mint(deployment.secret, "heidi", jti="h-1"))

    events = deployment.wait_for(lambda e: any(x["caller_id"] == "heidi" for x in e))
    assert [(e["action"], e["result"]) for e in events if e["caller_id"] == "heidi"] == [
        ("whoami", "allowed")
    ]
    refusals = [e for e in events if e["reason"] == "malformed"]
    assert [(e["action"], e["count"]) for e in refusals] == [("unknown", len(hostile) + 1)]
    assert deployment.metrics()[("session_buddy_audit_events_dropped", ())] == 0


def test_a_flood_of_distinct_tool_names_grows_a_count_not_the_table(
    deployment: Deployment,
) -> None:
    flood = 300
    with httpx.Client(timeout=10) as client:
        statuses = [
            post_json_rpc(deployment.url, tools_call(f"tool-{n}", {}),
                          authorization="Bearer bad", client=client).status_code
            for n in range(flood)
        ]  # fmt: skip
    assert statuses.count(401) == 20 and statuses.count(429) == flood - 20

    events = deployment.wait_for(
        lambda e: sum(x["count"] for x in e) >= flood, "--denied", "--limit", "1000"
    )
    assert sum(e["count"] for e in events) == flood
    assert {(e["action"], e["reason"]) for e in events} == {
        ("unknown", "malformed"),
        ("*", "throttled"),
    }
    assert len(events) <= 4  # one row each, or two if a batch straddled a fold
