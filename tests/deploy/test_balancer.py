"""Three stateless instances behind the shipped HAProxy configuration, on one PostgreSQL.

The world is :mod:`testkit.balanced`: each instance, the balancer and one client in a
network namespace of their own, PostgreSQL in the root namespace, HAProxy running
``deploy/haproxy/haproxy.cfg`` itself — round robin, no stickiness, health checks on
``/healthz``. What a team relies on:

* the official Python client (both protocol generations) and the TypeScript client
  complete whole sessions with their requests landing on every instance (the counts are
  each instance's ``/metrics`` and the balancer's log, recorded as figures);
* ``kill -9`` of an instance fails at most the calls in flight on it: the health check
  takes it out and the following calls succeed on the others;
* a rolling restart (SIGTERM, wait, start, one instance after the other) fails no call,
  each instance exits 0 within its stated bound, and the audit trail has every call;
* behind the balancer the throttle and the audit trail see the real client
  (``SESSION_BUDDY_TRUSTED_PROXIES``), whatever ``X-Forwarded-For`` it sends.

Skipped, with the reason, where network namespaces are not permitted; PostgreSQL or
HAProxy missing is a failure (``.ci/run`` installs both).
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp.client import Client

from session_buddy.auth.throttle import FAILURE_LIMIT
from session_buddy.mcp.shutdown import STOP_WITHIN_SECONDS
from testkit.balanced import BalancedCluster, Instance, balanced_cluster
from testkit.environment import clean_environment, new_secret
from testkit.git import make_git_repo
from testkit.haproxy import SERVERS, Request, check_configuration, environment
from testkit.mcp import http_transport, tools_call
from testkit.netns import netns_unavailable_reason
from testkit.processes import run_python
from testkit.pytest_figures import Figures
from testkit.tokens import mint
from testkit.typescript import Http, bearer, call_tool, list_tools, run_typescript_client

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        netns_unavailable_reason() is not None, reason=f"{netns_unavailable_reason()}"
    ),
]

CALLERS = 4  # concurrent clients during the faults
SETTLE_CALLS = 5  # calls each caller makes before a fault
AFTER_FAULT = 1.5  # seconds of calls once the balancer has reacted
CALL_TIMEOUT = 30.0
AUDIT_CATCH_UP_SECONDS = 5.0  # for the running instances' audit writers (0.5 s batches)
SESSION_STEPS = ["initialize", "tools/list", "start_session", "checkpoint", "session_status",
                 "end_session"]  # fmt: skip


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as blocking_portal:
        yield blocking_portal


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BalancedCluster]:
    with balanced_cluster(tmp_path_factory.mktemp("balanced"), new_secret()) as world:
        yield world


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_git_repo(tmp_path / "project")


def servers_of(requests: list[Request]) -> dict[str, list[str]]:
    """Which instance answered each request, per client address."""
    by_client: dict[str, list[str]] = {}
    for request in requests:
        by_client.setdefault(request.client, []).append(request.server)
    return by_client


# -- the shipped configuration ---------------------------------------------------------------


def test_haproxy_accepts_the_shipped_configuration_with_its_defaults_and_with_addresses(
    tmp_path: Path,
) -> None:
    defaults = check_configuration(clean_environment())
    assert defaults.returncode == 0, defaults.stderr
    given = environment(
        "10.0.0.1:8678", ["10.0.0.11:8678", "10.0.0.12:8678", "10.0.0.13:8678"],
        tmp_path / "haproxy.sock", base=clean_environment(),
    )  # fmt: skip
    checked = check_configuration(given)
    assert checked.returncode == 0, checked.stderr


# -- whole sessions spread over the instances --------------------------------------------------


async def whole_session(
    url: str, token: str, project: Path, mode: str, source: str | None = None
) -> list[str]:
    """initialize, tools/list, start_session, checkpoint, session_status, end_session
    (from the address ``source``); the session's id as each step saw it."""
    where = {"working_directory": str(project)}
    async with Client(http_transport(url, bearer=token, source=source), mode=mode) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"start_session", "checkpoint", "session_status", "end_session"} <= tools
        ids = []
        for tool, extra in [
            ("start_session", {}),
            ("checkpoint", {"note": "behind the balancer"}),
            ("session_status", {}),
            ("end_session", {"summary": "done"}),
        ]:
            result = await client.call_tool(tool, {**where, **extra})
            assert not result.is_error, result.content
            content = result.structured_content or {}
            ids.append(content.get("session_id") or content.get("id") or content["session"]["id"])
    return ids


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_the_python_client_completes_whole_sessions_on_every_instance(
    cluster: BalancedCluster, portal: BlockingPortal, tmp_path: Path, figures: Figures, mode: str
) -> None:
    before, logged = cluster.tool_calls(), len(cluster.balancer.requests())
    sources = []
    for number in range(3):
        project = make_git_repo(tmp_path / f"project-{number}")
        token = mint(cluster.secret, f"py-{mode}-{number}")
        source = cluster.balancer_host.add_root_address()  # one client address per session
        ids = portal.call(whole_session, cluster.url, token, project, mode, source)
        assert len(set(ids)) == 1, ids  # one session, whichever instance answered
        sources.append(source)
    calls = cluster.tool_calls() - before
    by_client = servers_of(cluster.balancer.requests()[logged:])
    for name in SERVERS:
        figures.record(f"python {mode}: tool calls answered by {name}", calls[name])
    assert set(calls) == set(SERVERS), calls  # every instance answered some
    assert sum(calls.values()) == 3 * 4
    assert set(by_client) == set(sources)
    for sequence in by_client.values():  # every session's requests on every instance
        assert len(sequence) >= len(SESSION_STEPS)
        assert set(sequence) == set(SERVERS), sequence


def test_the_typescript_client_completes_a_whole_session_on_every_instance(
    cluster: BalancedCluster, project: Path, figures: Figures
) -> None:
    before, logged = cluster.tool_calls(), len(cluster.balancer.requests())
    where = {"working_directory": str(project)}
    run = run_typescript_client(
        Http(cluster.url, bearer(mint(cluster.secret, "ts"))),
        [
            list_tools(),
            call_tool("start_session", **where),
            call_tool("checkpoint", note="behind the balancer", **where),
            call_tool("session_status", **where),
            call_tool("end_session", summary="done", **where),
        ],
    )
    assert run.connect.value()["sessionId"] is None  # stateless: no MCP session to stick to
    tools, started, checkpoint, status, ended = run.outcomes
    assert len(tools.value()["tools"]) >= 4
    for outcome in (started, checkpoint, status, ended):
        assert not outcome.value().get("isError"), outcome
    session_id = started.value()["structuredContent"]["id"]
    assert status.value()["structuredContent"]["session"]["id"] == session_id
    assert ended.value()["structuredContent"]["session"]["id"] == session_id
    calls = cluster.tool_calls() - before
    answered_by = Counter(r.server for r in cluster.balancer.requests()[logged:])
    for name in SERVERS:
        figures.record(f"typescript: tool calls answered by {name}", calls[name])
        figures.record(f"typescript: requests the balancer sent to {name}", answered_by[name])
    assert sum(calls.values()) == 4
    assert set(answered_by) == set(SERVERS), answered_by


# -- faults -------------------------------------------------------------------------------


@dataclass
class Callers:
    """Concurrent official clients calling through the balancer until told to stop."""

    cluster: BalancedCluster
    projects: list[Path]
    tokens: list[str]
    users: list[str]
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # checkpoint notes
    calls: list[int] = field(default_factory=list)
    failed_started: list[float] = field(default_factory=list)  # when each failed call began

    async def run(self, stop: anyio.Event, settled: anyio.Event) -> None:
        self.calls = [0] * len(self.tokens)
        async with anyio.create_task_group() as group:
            for number in range(len(self.tokens)):
                group.start_soon(self._caller, number, stop)
            while min(self.calls) < SETTLE_CALLS:
                await anyio.sleep(0.02)
            settled.set()

    async def _caller(self, number: int, stop: anyio.Event) -> None:
        """Checkpoints until ``stop``. A call that does not return counts as failed; when
        it takes the client down with it (the Python client ends its connection on a
        transport error), the caller connects again, as an application would."""
        while not stop.is_set():
            in_flight: list[tuple[str, float]] = []
            try:
                await self._calls(number, stop, in_flight)
            except Exception as error:  # the client gave up on its connection
                if in_flight:
                    note, started = in_flight[0]
                    self._fail(note, started, f"{type(error).__name__}: {error}")
                    self.calls[number] += 1

    def _fail(self, note: str, started: float, why: str) -> None:
        self.failed.append(f"{note}: {why}"[:200])
        self.failed_started.append(started)

    async def _calls(
        self, number: int, stop: anyio.Event, in_flight: list[tuple[str, float]]
    ) -> None:
        where = {"working_directory": str(self.projects[number])}
        mode = "legacy" if number % 2 else "auto"
        transport = http_transport(self.cluster.url, bearer=self.tokens[number],
                                   timeout=CALL_TIMEOUT)  # fmt: skip
        async with Client(transport, mode=mode) as client:
            started = await client.call_tool("start_session", where)  # or the active one
            assert not started.is_error, started.content
            while not stop.is_set():
                note = f"{self.users[number]}-{self.calls[number]}"
                started = time.monotonic()
                in_flight[:] = [(note, started)]
                try:
                    result = await client.call_tool("checkpoint", {**where, "note": note})
                except Exception as error:  # the client's view of a failed call
                    self._fail(note, started, f"{type(error).__name__}: {error}")
                else:
                    if result.is_error:
                        self._fail(note, started, f"tool error: {result.content}")
                    else:
                        self.succeeded += 1
                        self.acknowledged.append(note)
                in_flight.clear()
                self.calls[number] += 1


def callers(cluster: BalancedCluster, tmp_path: Path, label: str) -> Callers:
    users = [f"{label}-{n}-{secrets.token_hex(3)}" for n in range(CALLERS)]
    projects = [make_git_repo(tmp_path / f"{label}-{n}") for n in range(CALLERS)]
    tokens = [mint(cluster.secret, user) for user in users]
    return Callers(cluster, projects, tokens, users)


def audited_checkpoints(cluster: BalancedCluster, load: Callers, tmp_path: Path) -> int:
    """How many allowed checkpoint decisions of the callers' users the audit trail holds."""
    audited = 0
    for user in load.users:
        result = run_python("-m", "session_buddy", "audit", "list", "--json", "--user", user,
                            "--tool", "checkpoint", "--limit", "1000",
                            cwd=tmp_path, env=cluster.cli_env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        audited += sum(e["count"] for e in json.loads(result.stdout) if e["result"] == "allowed")
    return audited


def stored_notes(cluster: BalancedCluster) -> set[str]:
    rows = cluster.postgres.execute(
        "SELECT note FROM checkpoints WHERE note IS NOT NULL", dbname="session_buddy_balanced"
    )
    return {str(row[0]) for row in rows}


def restart(cluster: BalancedCluster, instance: Instance) -> float:
    """Start ``instance`` again; seconds until the balancer sends it requests again."""
    started = time.monotonic()
    instance.start().wait_until_ready()
    cluster.balancer.wait_for(lambda states: states[instance.name] == "UP")
    return time.monotonic() - started


def test_kill_9_of_an_instance_fails_at_most_the_calls_in_flight_on_it(
    cluster: BalancedCluster, portal: BlockingPortal, tmp_path: Path, figures: Figures
) -> None:
    victim = cluster.instance("sb2")
    load = callers(cluster, tmp_path, "kill")
    before = cluster.balancer.stats()["sb2"]
    timeline: dict[str, float] = {}

    async def scenario() -> None:
        stop, settled = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(load.run, stop, settled)
            await settled.wait()
            assert victim.server is not None
            killed = time.monotonic()
            await anyio.to_thread.run_sync(victim.server.kill)
            await anyio.to_thread.run_sync(
                lambda: cluster.balancer.wait_for(lambda s: s["sb2"].startswith("DOWN"))
            )
            timeline["killed"] = killed
            timeline["taken_out"] = time.monotonic()
            await anyio.sleep(AFTER_FAULT)
            stop.set()

    portal.call(scenario)
    stats = cluster.balancer.stats()["sb2"]
    redispatched = int(stats["wredis"]) - int(before["wredis"])
    aborted = int(stats["srv_abrt"]) - int(before["srv_abrt"])
    back_in = restart(cluster, victim)
    figures.record("kill -9: calls made", load.succeeded + len(load.failed))
    figures.record("kill -9: failed calls", len(load.failed))
    figures.record("kill -9: requests the killed instance aborted (balancer stats)", aborted)
    figures.record("kill -9: requests redispatched to the others (balancer stats)", redispatched)
    figures.record(
        "kill -9: seconds until the health check took it out",
        timeline["taken_out"] - timeline["killed"],
    )
    figures.record("kill -9: seconds to restart and be back in", back_in)
    # Each caller has one call in flight at most: only calls running when the instance
    # died may fail, and every call begun after the balancer took it out succeeds.
    assert len(load.failed) <= CALLERS, load.failed
    assert all(started < timeline["taken_out"] for started in load.failed_started), load.failed
    assert load.succeeded > CALLERS * SETTLE_CALLS
    missing = set(load.acknowledged) - stored_notes(cluster)
    assert not missing, sorted(missing)[:5]


def test_a_rolling_restart_fails_no_call_and_every_instance_exits_0_in_time(
    cluster: BalancedCluster, portal: BlockingPortal, tmp_path: Path, figures: Figures
) -> None:
    load = callers(cluster, tmp_path, "rolling")
    stops: dict[str, tuple[int | None, float]] = {}

    def stop_and_start(instance: Instance) -> None:
        assert instance.server is not None
        signalled = time.monotonic()
        instance.server.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = instance.server.process.wait(STOP_WITHIN_SECONDS + 5)
        except subprocess.TimeoutExpired:
            code = None
        stops[instance.name] = (code, time.monotonic() - signalled)
        restart(cluster, instance)

    async def scenario() -> None:
        stop, settled = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(load.run, stop, settled)
            await settled.wait()
            for instance in cluster.instances:
                await anyio.to_thread.run_sync(stop_and_start, instance)
                await anyio.sleep(0.3)
            await anyio.sleep(AFTER_FAULT)
            stop.set()

    portal.call(scenario)
    for name, (_, seconds) in stops.items():
        figures.record(f"rolling restart: {name} exited after (s)", seconds)
    figures.record("rolling restart: calls made", load.succeeded + len(load.failed))
    figures.record("rolling restart: failed calls", len(load.failed))
    assert load.failed == []
    assert {name: code for name, (code, _) in stops.items()} == dict.fromkeys(SERVERS, 0)
    assert all(seconds < STOP_WITHIN_SECONDS for _, seconds in stops.values()), stops
    assert not set(load.acknowledged) - stored_notes(cluster)
    # every allowed checkpoint, answered by whichever instance, is in the audit trail: the
    # instances still serving write theirs in 0.5 s batches, so the last batch may follow
    deadline = time.monotonic() + AUDIT_CATCH_UP_SECONDS
    while (audited := audited_checkpoints(cluster, load, tmp_path)) != load.succeeded:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert audited == load.succeeded


# -- the real client, behind the balancer ----------------------------------------------------


def whoami(token: str, *, forwarded_for: str | None = None) -> dict[str, Any]:
    headers = {"Accept": "application/json, text/event-stream",
               "Authorization": f"Bearer {token}"}  # fmt: skip
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return {"json": tools_call("whoami", {}), "headers": headers}


def test_the_audit_trail_names_the_client_not_the_balancer(
    cluster: BalancedCluster, tmp_path: Path
) -> None:
    user = f"behind-{secrets.token_hex(3)}"
    token = mint(cluster.secret, user)
    answers = cluster.posts_from_client(
        [whoami(token), whoami(token, forwarded_for="203.0.113.9")] * 3
    )
    assert [a["status"] for a in answers] == [200] * 6
    deadline = time.monotonic() + 10
    while True:
        result = run_python("-m", "session_buddy", "audit", "list", "--json", "--user", user,
                            cwd=tmp_path, env=cluster.cli_env)  # fmt: skip
        events = json.loads(result.stdout)
        if sum(e["count"] for e in events) >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {e["source_ip"] for e in events} == {cluster.client_host.address}
    assert sum(e["count"] for e in events) == 6


def test_a_client_sending_bad_tokens_is_throttled_alone(
    cluster: BalancedCluster, portal: BlockingPortal, figures: Figures
) -> None:
    """Bad tokens from the client host, each with a made-up ``X-Forwarded-For``: the
    instances count them against the client's own address and block it (429); a client
    elsewhere, through the same balancer, is not blocked."""

    def flood(count: int) -> list[int]:
        forged = [mint(new_secret(), "forger", unique=True) for _ in range(count)]
        spoofed = [whoami(t, forwarded_for=f"198.51.100.{n % 250}") for n, t in enumerate(forged)]
        return [answer["status"] for answer in cluster.posts_from_client(spoofed)]

    statuses = flood(FAILURE_LIMIT)
    assert statuses == [401] * FAILURE_LIMIT  # never blocked early
    deadline = time.monotonic() + 10
    while True:  # until every instance has heard of the block (one request each, in turn)
        batch = flood(len(SERVERS) * 2)
        statuses += batch
        if set(batch) == {429} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(statuses) <= {401, 429}, statuses
    figures.record("throttle behind the balancer: refusals (401) before blocked everywhere",
                   statuses.count(401))  # fmt: skip
    assert set(batch) == {429}, statuses
    # another client (the root namespace, through the same balancer) is not blocked
    still = portal.call(_whoami_through, cluster.url, mint(cluster.secret, "bystander"))
    assert still == "bystander"


async def _whoami_through(url: str, token: str) -> str:
    async with Client(http_transport(url, bearer=token)) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error, result.content
    return str((result.structured_content or {})["user_id"])
