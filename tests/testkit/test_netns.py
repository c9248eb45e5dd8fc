"""testkit.netns: namespaced hosts reach each other and a PostgreSQL on the root side.

Skipped, with the reason, where network namespaces are not permitted; PostgreSQL missing is
still a failure.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import netns, processes
from testkit.netns import BASE_NETWORK, Host, netns_unavailable_reason, remove_stale
from testkit.postgres import PostgresServer

FETCH = """\
import http.client, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)
conn.request("GET", "/hello.txt")
response = conn.getresponse()
print(response.status, response.read().decode())
"""
ECHO_PEER = """\
import http.server, sys
class Peer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Peer).serve_forever()
"""


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[Host, Host]]:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    with Host("a") as a, Host("b") as b:
        yield a, b


def test_hosts_get_distinct_private_subnets(hosts: tuple[Host, Host]) -> None:
    a, b = hosts

    assert a.network != b.network
    for host in hosts:
        assert host.network.subnet_of(BASE_NETWORK)
        assert host.gateway == str(host.network.network_address + 1)
        assert host.address == str(host.network.network_address + 2)
        assert host.name in _ip("netns", "list")
    inside = a.run(["ip", "-4", "-o", "addr", "show"]).stdout
    assert f"inet {a.address}/24" in inside
    assert "inet 127.0.0.1/8" in inside


def test_http_server_in_a_host_is_reachable_from_the_root_and_from_another_host(
    hosts: tuple[Host, Host], tmp_path: Path
) -> None:
    a, b = hosts
    (tmp_path / "hello.txt").write_text("hello from a")
    server = a.popen(
        [sys.executable, "-m", "http.server", "8080", "--bind", a.address, "--directory", tmp_path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        a.wait_for_port(8080)

        conn = http.client.HTTPConnection(a.address, 8080, timeout=5)
        conn.request("GET", "/hello.txt")
        from_root = conn.getresponse()
        assert (from_root.status, from_root.read()) == (200, b"hello from a")

        from_b = b.run([sys.executable, "-c", FETCH, a.address, "8080"])
        assert from_b.stdout.strip() == "200 hello from a"
    finally:
        server.terminate()
        server.wait(5)


def test_a_root_address_of_one_host_is_the_same_client_for_every_host(
    hosts: tuple[Host, Host],
) -> None:
    a, _ = hosts
    source = a.add_root_address()
    servers = {
        host: host.popen(
            [sys.executable, "-c", ECHO_PEER, host.address, "8081"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for host in hosts
    }
    try:
        seen = []
        for host in hosts:
            host.wait_for_port(8081)
            conn = http.client.HTTPConnection(
                host.address, 8081, timeout=5, source_address=(source, 0)
            )
            conn.request("GET", "/")
            seen.append(conn.getresponse().read().decode())
        assert ipaddress.IPv4Address(source) in a.network
        assert seen == [source, source]
        assert a.add_root_address() != source
    finally:
        for server in servers.values():
            server.kill()
            server.wait(5)


def test_postgres_on_the_gateway_is_reachable_from_inside_a_host(
    hosts: tuple[Host, Host],
) -> None:
    a, _ = hosts
    with PostgresServer(listen_addresses=("127.0.0.1", a.gateway)) as server:
        query = "SELECT host(inet_server_addr()) || ' ' || host(inet_client_addr())"
        psql = [str(server.bin_dir / "psql"), "-XAtc", query]

        inside = a.run([*psql, server.url(host=a.gateway)])
        assert inside.stdout.split() == [a.gateway, a.address]

        # the host's 127.0.0.1 is its own loopback, where nothing listens
        refused = a.run([*psql, server.url(host="127.0.0.1")], check=False)
        assert refused.returncode != 0
        assert "Connection refused" in refused.stderr


def test_close_removes_the_namespace_and_the_veth() -> None:
    if (reason := netns_unavailable_reason()) is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")

    with Host("gone") as host:
        sleeper = host.popen(["sleep", "60"])

    assert sleeper.poll() is not None
    assert host.name not in _ip("netns", "list")
    assert host.veth not in _ip("-o", "link", "show")


def test_leftovers_of_a_dead_process_are_removed() -> None:
    if (reason := netns_unavailable_reason()) is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = f"sbtk-{dead.pid}-1-stale"
    _ip("netns", "add", name)
    _ip("link", "add", f"sbtk{dead.pid}h1", "type", "veth", "peer", "name", "eth0", "netns", name)
    # a veth whose namespace is gone but which outlived it
    _ip("link", "add", f"sbtk{dead.pid}h2", "type", "veth", "peer", "name", f"sbtk{dead.pid}h2p")

    removed = remove_stale()

    assert name in removed
    assert len([link for link in removed if link.startswith(f"sbtk{dead.pid}h2")]) == 1
    assert name not in _ip("netns", "list")
    assert f"sbtk{dead.pid}h" not in _ip("-o", "link", "show")


# Loads the kit's modules from source text given on stdin, so the probe reads nothing under
# the checkout: ``nobody`` may not be able to enter it (a clone in a fresh ``mktemp -d``).
_PROBE_FROM_SOURCES = """\
import json, sys, types
package = types.ModuleType("testkit")
package.__path__ = []
sys.modules["testkit"] = package
for name, path, source in json.loads(sys.stdin.read()):
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(compile(source, path, "exec"), module.__dict__)
print(sys.modules["testkit.netns"].netns_unavailable_reason())
"""


def test_an_unprivileged_user_is_told_why_namespaces_are_unavailable() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run the probe as an unprivileged user")
    nobody = pwd.getpwnam("nobody")
    # a Python that ``nobody`` can run (the venv's may point into root's private home);
    # testkit.netns needs nothing but the standard library and testkit.processes
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        pytest.skip(f"no {python} to run as nobody")
    modules = [
        (f"testkit.{name}", str(path), path.read_text(encoding="utf-8"))
        for name, path in (("processes", Path(processes.__file__)), ("netns", Path(netns.__file__)))
    ]

    result = subprocess.run(
        [python, "-c", _PROBE_FROM_SOURCES],
        cwd="/",
        env={"PATH": os.environ["PATH"]},
        input=json.dumps(modules),
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=True,
    )

    assert "cannot create a network namespace" in result.stdout
    assert "CAP_NET_ADMIN" in result.stdout


def test_the_reason_names_a_missing_ip_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(netns, "_IP_PATHS", ())

    assert "apt-get install -y iproute2" in str(netns._probe())


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout
