"""Who the client is behind ``X-Forwarded-For``: believed only from trusted proxies.

Real servers, raw HTTP from loopback addresses. Without ``SESSION_BUDDY_TRUSTED_PROXIES``
the TCP peer is the client, whatever the header says: rotating it neither escapes the
failure throttle nor forges ``source_ip`` in the audit trail. With a trusted proxy, the
address it forwards is the client, for the throttle and the audit alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from session_buddy.config import load_settings
from testkit.environment import new_secret, server_environment
from testkit.mcp import JSON_RPC_HEADERS, tools_call
from testkit.processes import run_python
from testkit.server import ServerProcess, can_bind, launch_http_server, run_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not can_bind("127.0.0.2"), reason="needs 127.0.0.x loopback aliases"),
]

FAILURES_BEFORE_429 = 20
FLUSH_DEADLINE_SECONDS = 10.0
PROXY = "127.0.0.2"
REQUEST = tools_call("session_status", {"working_directory": "/tmp"})


def _serve(workdir: Path, **variables: str) -> Iterator[ServerProcess]:
    env = server_environment(workdir / "data", new_secret(), **variables)
    with launch_http_server(env, workdir) as server:
        yield server


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that trusts no proxy (the default), whatever uvicorn's own variable says."""
    yield from _serve(tmp_path_factory.mktemp("direct"), FORWARDED_ALLOW_IPS="*")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server behind a proxy at 127.0.0.2 (and only there)."""
    yield from _serve(tmp_path_factory.mktemp("proxied"), SESSION_BUDDY_TRUSTED_PROXIES=PROXY)


def _bad_calls(server: ServerProcess, source: str, forwarded: list[str]) -> list[int]:
    """One request with a bad bearer per ``forwarded`` value, from ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as http:
        return [
            http.post(
                server.url,
                json=REQUEST,
                headers={
                    **JSON_RPC_HEADERS,
                    "Authorization": "Bearer not-a-jwt",
                    "X-Forwarded-For": value,
                },
            ).status_code
            for value in forwarded
        ]


def _denied_sources(server: ServerProcess, expected: dict[str, int]) -> dict[str, int]:
    """source_ip -> refusals in the audit trail, once it holds at least ``expected`` for
    each of its sources (the trail is written in the background)."""
    deadline = time.monotonic() + FLUSH_DEADLINE_SECONDS
    while True:
        listed = run_python(
            "-m", "session_buddy", "audit", "list", "--json", "--denied", "--limit", "1000",
            cwd=server.data_dir.parent, env=server.env,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        counts: dict[str, int] = {}
        for event in json.loads(listed.stdout):
            counts[event["source_ip"]] = counts.get(event["source_ip"], 0) + event["count"]
        complete = all(counts.get(source, 0) >= n for source, n in expected.items())
        if complete or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def _rotating(count: int) -> list[str]:
    return [f"203.0.113.{n}" for n in range(1, count + 1)]


def test_rotating_forwarded_for_from_loopback_is_one_throttled_client(
    direct: ServerProcess,
) -> None:
    statuses = _bad_calls(direct, "127.0.0.1", _rotating(FAILURES_BEFORE_429 + 2))

    assert statuses == [401] * FAILURES_BEFORE_429 + [429, 429]
    assert _denied_sources(direct, {"127.0.0.1": 22}) == {"127.0.0.1": 22}


def test_a_trusted_proxys_forwarded_client_is_the_client(proxied: ServerProcess) -> None:
    statuses = _bad_calls(proxied, PROXY, _rotating(FAILURES_BEFORE_429 + 2))
    chained = _bad_calls(proxied, PROXY, ["198.51.100.9, 198.51.100.7"] * 21)

    assert statuses == [401] * (FAILURES_BEFORE_429 + 2)  # each its own client
    assert chained == [401] * FAILURES_BEFORE_429 + [429]  # the proxy's view, not the spoof
    expected = {**{address: 1 for address in _rotating(22)}, "198.51.100.7": 21}
    sources = _denied_sources(proxied, expected)
    assert {source: sources.get(source) for source in expected} == expected
    assert PROXY not in sources and "198.51.100.9" not in sources


def test_forwarded_for_from_an_untrusted_peer_is_ignored(proxied: ServerProcess) -> None:
    statuses = _bad_calls(proxied, "127.0.0.1", _rotating(FAILURES_BEFORE_429 + 1))

    assert statuses == [401] * FAILURES_BEFORE_429 + [429]
    assert _denied_sources(proxied, {"127.0.0.1": 21})["127.0.0.1"] == FAILURES_BEFORE_429 + 1


@pytest.mark.parametrize("value", ["*", "proxy.internal", "10.0.0.0/33", "127.0.0.1,,nope"])
def test_a_proxy_that_is_not_an_address_or_network_stops_the_server(
    tmp_path: Path, value: str
) -> None:
    env = server_environment(tmp_path / "data", new_secret(), SESSION_BUDDY_TRUSTED_PROXIES=value)

    result = run_server(env, tmp_path, "--transport", "http", "--port", "1")

    assert result.returncode == 1
    assert "Invalid configuration: SESSION_BUDDY_TRUSTED_PROXIES" in result.stderr
    assert "not an IP address or CIDR network" in result.stderr


def test_trusted_proxies_default_to_none_and_are_written_canonically() -> None:
    assert load_settings().trusted_proxies == []
    configured = load_settings(trusted_proxies=" 10.1.2.3, 192.168.7.9/24 ,::1")
    assert configured.trusted_proxies == ["10.1.2.3/32", "192.168.7.0/24", "::1/128"]
