"""Stopping a real HTTP server: SIGTERM drains, writes the audit batch and exits 0.

What a service manager, a container runtime or a rolling restart relies on
(``session_buddy/mcp/shutdown.py``): the decisions made just before SIGTERM are in the
audit trail afterwards, the exit code is 0, the health check answers 503 from the signal
on while calls keep being answered, and the process is gone well within the systemd
unit's ``TimeoutStopSec``. The draining rule itself is tested with a clock of our own.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal

from session_buddy.mcp.shutdown import Drain
from testkit.environment import new_secret, server_environment
from testkit.mcp import connect, http_transport, ok
from testkit.processes import run_python
from testkit.server import ServerProcess, launch_http_server
from testkit.tokens import mint

STOP_TIMEOUT = 15.0  # deploy/systemd/session-buddy.service: TimeoutStopSec=15


def audit_list(server: ServerProcess, cwd: Path) -> list[dict[str, Any]]:
    result = run_python("-m", "session_buddy", "audit", "list", "--json", "--since", "1h",
                        cwd=cwd, env=server.env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    events: list[dict[str, Any]] = json.loads(result.stdout)
    return events


def stop_with(server: ServerProcess, sig: signal.Signals) -> int:
    server.process.send_signal(sig)
    try:
        return server.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail(f"still running {STOP_TIMEOUT} s after {sig.name}: {server.tail()}")


@pytest.fixture
def server(tmp_path: Path) -> Any:
    env = server_environment(tmp_path / "data", new_secret())
    with launch_http_server(env, tmp_path) as started:
        yield started


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_decisions_made_just_before_a_signal_are_all_in_the_audit_trail(
    server: ServerProcess, tmp_path: Path, portal: BlockingPortal, sig: signal.Signals
) -> None:
    assert server.secret is not None
    users = ["ann", "bob", "cid"]
    for user in users:
        conn = connect(portal, http_transport(server.url, bearer=mint(server.secret, user)))
        try:
            assert ok(conn.call("whoami"))["user_id"] == user
        finally:
            conn.close()
    code = stop_with(server, sig)
    if sig is signal.SIGTERM:
        assert code == 0, server.tail()
    allowed = {e["caller_id"] for e in audit_list(server, tmp_path) if e["result"] == "allowed"}
    assert allowed == set(users), server.tail()


def test_health_answers_503_from_sigterm_on_while_calls_are_still_answered(
    server: ServerProcess, portal: BlockingPortal
) -> None:
    """A balancer's health check takes the instance out; its callers see no failure."""
    assert server.secret is not None
    conn = connect(portal, http_transport(server.url, bearer=mint(server.secret, "drainer")))
    health = f"{server.base_url}/healthz"
    answered_while_stopping = 0
    try:
        assert httpx.get(health, timeout=5).status_code == 200
        ok(conn.call("whoami"))
        server.process.send_signal(signal.SIGTERM)
        # Calls keep coming (closer together than the quiet period): the server keeps
        # answering them while telling the health check it is stopping.
        for _ in range(5):
            ok(conn.call("whoami"))
            answer = httpx.get(health, timeout=5)
            assert (answer.status_code, answer.json()) == (503, {"status": "stopping"})
            # no kept-alive connection stays for a balancer to reuse as the server closes
            assert answer.headers["connection"] == "close"
            answered_while_stopping += 1
    finally:
        conn.close()
    assert answered_while_stopping == 5
    assert server.process.wait(STOP_TIMEOUT) == 0, server.tail()


def test_an_idle_server_stops_at_once_and_exits_0(server: ServerProcess) -> None:
    assert stop_with(server, signal.SIGTERM) == 0, server.tail()
    assert "Traceback" not in server.log()


def test_a_second_sigterm_ends_the_drain(server: ServerProcess, portal: BlockingPortal) -> None:
    """Requests arriving all the time would hold the drain for its whole limit; a second
    SIGTERM stops it at once (and still exits 0, audit written)."""
    assert server.secret is not None
    stop = threading.Event()
    token = mint(server.secret, "busy")

    def keep_calling() -> None:
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                try:
                    http.get(server.url, headers={"Authorization": f"Bearer {token}"})
                except httpx.HTTPError:
                    return

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        server.process.send_signal(signal.SIGTERM)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(STOP_TIMEOUT) == 0, server.tail()
    finally:
        stop.set()
        caller.join(10)


def test_health_is_also_served_at_slash_health(server: ServerProcess) -> None:
    """Mahavishnu checks ``GET /health``; it gets what ``/healthz`` answers."""
    healthz = httpx.get(f"{server.base_url}/healthz", timeout=5)
    health = httpx.get(f"{server.base_url}/health", timeout=5)
    assert (health.status_code, health.json()) == (healthz.status_code, healthz.json())
    assert health.json()["status"] == "ok"


# -- the draining rule, on a clock of our own ---------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_server_that_is_not_stopping_never_finishes_draining() -> None:
    clock = Clock()
    drain = Drain(clock=clock)
    clock.now += 1000
    assert (drain.stopping, drain.finished()) == (False, False)


def test_an_idle_server_finishes_draining_at_once() -> None:
    drain = Drain(quiet_seconds=0.5, clock=Clock())
    drain.begin()
    assert (drain.stopping, drain.finished()) == (True, True)


def test_draining_goes_on_while_requests_arrive_and_ends_once_they_stop() -> None:
    clock = Clock()
    drain = Drain(quiet_seconds=0.5, limit_seconds=3.0, clock=clock)
    drain.saw_request()
    drain.begin()
    for _ in range(4):
        clock.now += 0.4
        assert not drain.finished()
        drain.saw_request()
    clock.now += 0.5
    assert drain.finished()


def test_draining_ends_at_its_limit_however_busy() -> None:
    clock = Clock()
    drain = Drain(quiet_seconds=0.5, limit_seconds=3.0, clock=clock)
    drain.begin()
    for _ in range(8):  # 0 … 2.8 s after it began
        drain.saw_request()
        assert not drain.finished()
        clock.now += 0.4
    drain.saw_request()
    assert drain.finished()  # 3.2 s after it began
