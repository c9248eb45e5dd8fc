"""``GET /metrics``: Prometheus text format, through ``prometheus-client``.

What an operator needs to see, and nothing that identifies anyone: no label carries a
token, a secret or a user id (they would also explode the number of series).

* ``session_buddy_auth_decisions_total{result, reason}`` — every authorization decision;
* ``session_buddy_tool_calls_total{tool, outcome}`` and
  ``session_buddy_tool_call_duration_seconds{tool}`` — outcome ``ok``, ``authentication``,
  ``authorization``, ``session`` or ``storage``;
* ``session_buddy_throttled_requests_total`` and ``session_buddy_throttled_clients``;
* ``session_buddy_revoked_tokens`` — revocations the process knows (its in-memory set);
* ``session_buddy_revocation_propagation_seconds`` — from another instance's revocation to
  this process knowing it (PostgreSQL's push; on SQLite, the polling delay);
* ``session_buddy_audit_events_dropped`` — decisions the audit trail could not keep: its
  batch was full (an outage longer than the batch holds), the database refused a row (each
  refused row's count, the other rows written), or they were pending when a server could not
  write them at shutdown. A gauge read from the trail at scrape time; it only grows. While
  a server runs, every decision is in the trail, pending in its batch, or counted here.

Each server has its own registry, so tests and several servers in one process never mix.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, cast

from mcp_types import CallToolResult
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from session_buddy.auth.errors import ThrottledError
from session_buddy.auth.trail import AuthDecision
from session_buddy.mcp.error_meta import error_data

P = ParamSpec("P")
METRICS_PATH = "/metrics"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = LATENCY_BUCKETS  # the same scale: a millisecond to seconds


class ServerMetrics:
    """The metrics of one server; also a ``DecisionRecorder`` for the audit fan-out."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "session_buddy_auth_decisions",
            "Authorization decisions of tool calls, by result and reason.",
            ["result", "reason"],
            registry=self.registry,
        )
        self._decision_counters: dict[tuple[str, str], Counter] = {}
        self.tool_calls = Counter(
            "session_buddy_tool_calls",
            "Tool calls, by tool and outcome.",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.tool_latency = Histogram(
            "session_buddy_tool_call_duration_seconds",
            "Time to answer a tool call, by tool.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.throttled = Counter(
            "session_buddy_throttled_requests",
            "Requests answered 429 because their client failed too often.",
            registry=self.registry,
        )
        self.throttled_clients = Gauge(
            "session_buddy_throttled_clients",
            "Client addresses blocked right now.",
            registry=self.registry,
        )
        self.revoked_tokens = Gauge(
            "session_buddy_revoked_tokens",
            "Revoked tokens this process knows of (its in-memory set).",
            registry=self.registry,
        )
        self.propagation = Histogram(
            "session_buddy_revocation_propagation_seconds",
            "Delay between another process revoking a token and this one knowing it.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.audit_dropped = Gauge(
            "session_buddy_audit_events_dropped",
            "Decisions the audit trail could not store: batch full during an outage, or "
            "rows the database refused (a counter).",
            registry=self.registry,
        )

    # -- sources ---------------------------------------------------------------------------

    def record(self, decision: AuthDecision) -> None:
        key = (decision.result, decision.reason or "none")
        counter = self._decision_counters.get(key)
        if counter is None:  # a few results x reasons: labels() (a lock, checks) once each
            counter = self._decision_counters[key] = self.decisions.labels(*key)
        counter.inc()
        if decision.reason == ThrottledError.reason:
            self.throttled.inc()

    def watch(
        self,
        *,
        throttled_clients: Callable[[], int],
        revoked_tokens: Callable[[], int],
        audit_dropped: Callable[[], int],
    ) -> None:
        """Read these gauges from their owners whenever ``/metrics`` is scraped."""
        self.throttled_clients.set_function(lambda: float(throttled_clients()))
        self.revoked_tokens.set_function(lambda: float(revoked_tokens()))
        self.audit_dropped.set_function(lambda: float(audit_dropped()))

    def observe_propagation(self, seconds: float) -> None:
        self.propagation.observe(seconds)

    def measured(self, tool: str, func: Callable[P, CallToolResult]) -> Callable[P, CallToolResult]:
        """``func`` (a tool, errors already turned into results) timed and counted."""
        calls = {outcome: self.tool_calls.labels(tool, outcome) for outcome in _OUTCOMES}
        latency = self.tool_latency.labels(tool)

        def count(result: CallToolResult, started: float) -> CallToolResult:
            latency.observe(time.perf_counter() - started)
            calls[_outcome(result)].inc()
            return result

        if inspect.iscoroutinefunction(func):
            coroutine = cast(Callable[..., Awaitable[CallToolResult]], func)

            @functools.wraps(func)
            async def async_measured(*args: Any, **kwargs: Any) -> CallToolResult:
                started = time.perf_counter()
                return count(await coroutine(*args, **kwargs), started)

            return cast(Callable[P, CallToolResult], async_measured)

        @functools.wraps(func)
        def measured(*args: P.args, **kwargs: P.kwargs) -> CallToolResult:
            started = time.perf_counter()
            return count(func(*args, **kwargs), started)

        return measured

    # -- the endpoint ------------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


_OUTCOMES = ("ok", "authentication", "authorization", "session", "storage", "error")


def _outcome(result: CallToolResult) -> str:
    if not result.is_error:
        return "ok"
    error = error_data(result)
    kind = error.get("kind") if error is not None else None
    return kind if kind in _OUTCOMES else "error"
