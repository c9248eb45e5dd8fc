"""Two real HTTP servers on one backend share every guarantee, on SQLite and PostgreSQL.

SQLite: both servers use one data dir (one file). PostgreSQL: each server has a data dir
of its own and the same ``SESSION_BUDDY_DATABASE_URL``, so whatever they share went through
the database. The CLI (``token revoke``, ``envelope verify``, ``sessions list``, ``auth
status``) and the original design note's Python API (``validate_token``, ``revoke_token``,
``JWTManager``) in this test process use the same configuration, as a third instance.

Each test talks from its own loopback address (127.0.0.x): the throttle keys on it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal

from session_buddy.config import load_settings
from session_buddy.mcp.auth import (
    AuthConfig,
    JWTManager,
    reload_auth_config,
    revoke_token,
    validate_token,
)
from session_buddy.runtime import forget_shared_state
from session_buddy.store.urls import describe_url
from testkit.clock import seconds_until
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.mcp import (
    INITIALIZE,
    McpConnection,
    connect,
    http_transport,
    ok,
    post_json_rpc,
    text_of,
)
from testkit.postgres import PostgresServer
from testkit.processes import run_python
from testkit.pytest_figures import Figures
from testkit.pytest_postgres import fresh_database
from testkit.server import ServerProcess, can_bind, launch_http_server
from testkit.tokens import mint

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not can_bind("127.0.0.2"), reason="needs 127.0.0.x loopback aliases"),
]

NOTICE_BOUND = 1.0  # "running servers notice within a second" (token revoke's promise)
MARGIN = 2.0  # tool-call round trips on a shared 2-core machine
FAILURE_LIMIT = 20
REVOKED = "❌ Authentication failed: Token has been revoked"


@dataclass
class Deployment:
    """Two servers on one backend, and the settings a third instance (this process) uses."""

    backend: str
    settings: dict[str, str]
    data_dir: Path  # this process's (SQLite: the servers' too)
    servers: list[ServerProcess]
    project: Path
    password: str | None = None
    minted: list[str] = field(default_factory=list)

    @property
    def database(self) -> str:
        """How the CLI names the database the servers share."""
        url = self.settings.get("SESSION_BUDDY_DATABASE_URL")
        if url is None:
            return f"the SQLite file {self.data_dir / 'session-buddy.db'}"
        return f"PostgreSQL at {describe_url(url)}"

    @property
    def secret(self) -> str:
        return self.settings["SESSION_BUDDY_SECRET"]

    def token(self, user: str = "alice") -> str:
        token = mint(self.secret, user, unique=True)
        self.minted.append(token)
        return token


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp(f"shared-{request.param}")
    secret = new_secret()
    with contextlib.ExitStack() as stack:
        settings = {"SESSION_BUDDY_SECRET": secret}
        password = None
        if request.param == "postgresql":
            pg = stack.enter_context(fresh_database(postgres_server))
            settings["SESSION_BUDDY_DATABASE_URL"] = pg.url
            password = pg.password
        launched = []
        for n in range(2):
            data_dir = root / ("data" if request.param == "sqlite" else f"data-{n}")
            env = server_environment(data_dir, None, **settings)
            launched.append(launch_http_server(env, root))
        servers = [stack.enter_context(server) for server in launched]
        project = make_git_repo(root / "repo")
        yield Deployment(request.param, settings, root / "data", servers, project, password)
        for server in servers:
            assert server.process.poll() is None, server.tail()
            for secret_text in [secret, *([password] if password else [])]:
                assert secret_text not in server.log()


@pytest.fixture
def here(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """This process configured as a third instance of the deployment."""
    for name, value in deployment.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SESSION_BUDDY_DATA_DIR", str(deployment.data_dir))
    reload_auth_config()
    yield deployment
    forget_shared_state()


@pytest.fixture
def clients(
    deployment: Deployment, portal: BlockingPortal
) -> Iterator[Callable[[int, str], McpConnection]]:
    """``clients(n, source)``: the official client to server ``n`` from address ``source``."""
    opened: list[McpConnection] = []

    def open_client(n: int, source: str = "127.0.0.1") -> McpConnection:
        url = f"http://127.0.0.1:{deployment.servers[n].port}/mcp"
        opened.append(connect(portal, http_transport(url, source=source)))
        return opened[-1]

    yield open_client
    for client in opened:
        client.close()


def refused(client: McpConnection, token: str) -> Callable[[], bool]:
    def check() -> bool:
        result = client.call("whoami", token=token)
        return result.is_error and text_of(result) == REVOKED

    return check


def cli(here: Deployment, *args: str, input: str | None = None) -> Any:
    """The real ``session-buddy`` command, configured like the deployment."""
    env = server_environment(here.data_dir, None, **here.settings)
    return run_python("-m", "session_buddy", *args, env=env, input=input, timeout=60)


# -- revocations ------------------------------------------------------------------------------


def test_a_revocation_by_the_cli_reaches_both_running_servers(
    here: Deployment, clients: Callable[..., McpConnection], figures: Figures
) -> None:
    token = here.token()
    first, second = clients(0), clients(1)
    ok(first.call("whoami", token=token))
    ok(second.call("whoami", token=token))

    result = cli(here, "token", "revoke", token)
    revoked_at = time.monotonic()
    assert result.returncode == 0, result.stderr
    assert f"Token revoked in {here.database}: every server using it" in result.stdout
    seconds_until(refused(first, token), NOTICE_BOUND + MARGIN)
    seconds_until(refused(second, token), NOTICE_BOUND + MARGIN)

    figures.record(
        f"{here.backend}: CLI revocation honoured by both servers (s)",
        time.monotonic() - revoked_at,
    )
    assert validate_token(token) is None  # the design note's API agrees


def test_a_revocation_through_the_python_api_reaches_the_servers(
    here: Deployment, clients: Callable[..., McpConnection]
) -> None:
    by_facade, by_manager = here.token(), here.token("bob")
    first, second = clients(0), clients(1)
    assert validate_token(by_facade) is not None

    assert revoke_token(by_facade)
    JWTManager(AuthConfig(load_settings())).revoke_token(by_manager)

    seconds_until(refused(first, by_facade), NOTICE_BOUND + MARGIN)
    seconds_until(refused(second, by_manager), NOTICE_BOUND + MARGIN)
    assert validate_token(by_manager) is None


# -- sessions ---------------------------------------------------------------------------------


def test_one_active_session_per_user_and_project_across_servers_and_the_cli_lists_it(
    here: Deployment, clients: Callable[..., McpConnection]
) -> None:
    project = str(here.project)
    alice, bob = here.token("alice"), here.token("bob")

    on_first = ok(clients(0).call("start_session", working_directory=project, token=alice))
    on_second = ok(clients(1).call("start_session", working_directory=project, token=alice))
    bobs = ok(clients(1).call("start_session", working_directory=project, token=bob))
    ok(clients(1).call("checkpoint", working_directory=project, note="from 2", token=alice))
    listed = cli(here, "sessions", "list", "--json")

    assert (on_first["created"], on_second["created"]) == (True, False)
    assert on_second["id"] == on_first["id"] != bobs["id"]
    assert listed.returncode == 0, listed.stderr
    sessions = {s["id"]: s for s in json.loads(listed.stdout)["sessions"]}
    assert {on_first["id"], bobs["id"]} <= sessions.keys()
    assert sessions[on_first["id"]]["checkpoint_count"] == 1
    for server in (0, 1):
        status = ok(clients(server).call("session_status", working_directory=project, token=alice))
        assert status["session"]["id"] == on_first["id"]


# -- envelopes --------------------------------------------------------------------------------


def test_an_envelope_accepted_by_one_server_is_a_replay_to_the_other_and_to_the_cli(
    here: Deployment, clients: Callable[..., McpConnection]
) -> None:
    signed = cli(here, "envelope", "sign", "mahavishnu", "session-buddy", '{"n": 1}')
    envelope = json.loads(signed.stdout)
    token = here.token()

    accepted = clients(0).call("verify_envelope", envelope=envelope, token=token)
    replayed = clients(1).call("verify_envelope", envelope=envelope, token=token)
    by_cli = cli(here, "envelope", "verify", "-", input=json.dumps(envelope))

    assert ok(accepted)["valid"] is True
    assert ok(replayed)["valid"] is False
    assert ok(replayed)["problem"] == "replayed"
    assert by_cli.returncode == 1
    assert "already accepted once (a replay)" in by_cli.stderr


# -- the failure throttle ---------------------------------------------------------------------


def flood(deployment: Deployment, source: str, pause: float) -> tuple[int, float]:
    """Bad bearer tokens from ``source``, alternately to each server, ``pause`` seconds
    apart, until one answers 429: how many were refused (401) before, and how long until
    both servers answer 429."""
    urls = [f"http://127.0.0.1:{server.port}/mcp" for server in deployment.servers]
    refusals = 0
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as http:

        def status(url: str) -> int:
            return post_json_rpc(url, INITIALIZE, authorization="Bearer x", client=http).status_code

        for attempt in range(4 * FAILURE_LIMIT):
            answer = status(urls[attempt % 2])
            if answer == 429:
                break
            assert answer == 401
            refusals += 1
            time.sleep(pause)
        everywhere = seconds_until(
            lambda: all(status(url) == 429 for url in urls), NOTICE_BOUND + MARGIN, 0.05
        )
    return refusals, everywhere


def test_bad_tokens_spread_over_both_servers_are_throttled_together(
    deployment: Deployment, figures: Figures
) -> None:
    """100 requests a second: each server hears of the other's refusals well before its own
    20, so the client is blocked after far fewer than 2 × 20."""
    source = {"sqlite": "127.0.0.21", "postgresql": "127.0.0.22"}[deployment.backend]

    refusals, everywhere = flood(deployment, source, pause=0.01)

    figures.record(f"{deployment.backend}: throttle slack, 100 bad tokens/s", refusals - 20)
    figures.record(f"{deployment.backend}: throttle block on both servers (s)", everywhere)
    assert FAILURE_LIMIT <= refusals < 2 * FAILURE_LIMIT


def test_a_burst_faster_than_the_throttle_sync_gets_at_most_each_servers_own_limit(
    deployment: Deployment, figures: Figures
) -> None:
    """As fast as one client can send: the burst can end before the servers' 0.1 s sync,
    so the slack approaches one server's 20 — never more."""
    source = {"sqlite": "127.0.0.23", "postgresql": "127.0.0.24"}[deployment.backend]

    refusals, _ = flood(deployment, source, pause=0.0)

    figures.record(f"{deployment.backend}: throttle slack, unpaced burst", refusals - 20)
    assert FAILURE_LIMIT <= refusals <= 2 * FAILURE_LIMIT
