"""ServerMetrics as a decision recorder: one series per result and reason, counted exactly."""

from __future__ import annotations

import inspect

import anyio
from mcp_types import CallToolResult

from session_buddy.auth import errors
from session_buddy.auth.principal import Principal
from session_buddy.auth.trail import AuthDecision
from session_buddy.mcp.metrics import ServerMetrics
from session_buddy.mcp.results import error_result

ALICE = Principal(user_id="alice", authenticated=True)


def allowed() -> AuthDecision:
    return AuthDecision.allowed(ALICE, action="whoami", permission=None, source_ip="local")


def denied(error: errors.AuthError) -> AuthDecision:
    return AuthDecision.denied(error, action="whoami", permission=None, source_ip="10.0.0.9")


def count(metrics: ServerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_decisions_are_counted_by_result_and_reason_however_often_they_repeat() -> None:
    metrics = ServerMetrics()
    for _ in range(3):
        metrics.record(allowed())
    for _ in range(2):
        metrics.record(denied(errors.InvalidSignatureError()))
    metrics.record(denied(errors.ExpiredTokenError()))

    decisions = "session_buddy_auth_decisions_total"
    assert count(metrics, decisions, result="allowed", reason="none") == 3
    assert count(metrics, decisions, result="denied", reason="bad_signature") == 2
    assert count(metrics, decisions, result="denied", reason="expired") == 1
    assert count(metrics, "session_buddy_throttled_requests_total") == 0


def test_a_throttled_request_is_a_denial_and_a_throttled_request() -> None:
    metrics = ServerMetrics()
    metrics.record(denied(errors.ThrottledError()))
    metrics.record(denied(errors.ThrottledError()))

    reason = errors.ThrottledError.reason
    assert count(metrics, "session_buddy_auth_decisions_total", result="denied", reason=reason) == 2
    assert count(metrics, "session_buddy_throttled_requests_total") == 2


def test_two_servers_never_share_a_count() -> None:
    first, second = ServerMetrics(), ServerMetrics()
    first.record(allowed())
    decisions = "session_buddy_auth_decisions_total"
    assert count(first, decisions, result="allowed", reason="none") == 1
    assert count(second, decisions, result="allowed", reason="none") is None


def test_sync_and_async_tools_are_counted_by_outcome_and_timed() -> None:
    metrics = ServerMetrics()
    ok = CallToolResult(content=[])
    failed = error_result("No active session", kind="session", reason="no_active_session")

    def sync_tool(result: CallToolResult) -> CallToolResult:
        return result

    async def async_tool(result: CallToolResult) -> CallToolResult:
        return result

    timed_sync = metrics.measured("status", sync_tool)
    timed_async = metrics.measured("end", async_tool)
    assert not inspect.iscoroutinefunction(timed_sync)
    assert inspect.iscoroutinefunction(timed_async)
    assert timed_sync(ok) is ok
    assert anyio.run(timed_async, failed) is failed
    assert anyio.run(timed_async, ok) is ok

    calls = "session_buddy_tool_calls_total"
    assert count(metrics, calls, tool="status", outcome="ok") == 1
    assert count(metrics, calls, tool="end", outcome="session") == 1
    assert count(metrics, calls, tool="end", outcome="ok") == 1
    latency = "session_buddy_tool_call_duration_seconds_count"
    assert count(metrics, latency, tool="status") == 1
    assert count(metrics, latency, tool="end") == 2
