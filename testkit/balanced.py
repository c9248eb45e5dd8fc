"""Three instances behind the shipped HAProxy configuration, each on a "host" of its own.

:func:`balanced_cluster` builds what ``docs/DEPLOYMENT.md`` describes, on one machine:

* PostgreSQL (:class:`testkit.postgres.PostgresServer`) in the root namespace, listening on
  the gateways of the instances' hosts, with a login role and its database;
* three ``session-buddy serve --transport http`` instances, each in its own network
  namespace (:class:`testkit.netns.Host`) on that database — stateless by default there —
  trusting the balancer's address for ``X-Forwarded-For`` and serving ``/metrics``;
* HAProxy (:mod:`testkit.haproxy`) running ``deploy/haproxy/haproxy.cfg`` in a namespace of
  its own, round robin over the three;
* one more namespace, :attr:`BalancedCluster.client_host`, for a client that is a machine
  of its own (:meth:`BalancedCluster.posts_from_client` runs requests from there).

Clients in the root namespace reach the balancer at :attr:`BalancedCluster.url`; the
balancer sees them as its host's gateway. Everything is stopped and removed when the
``with`` block ends, however it ends. Needs root (namespaces), PostgreSQL and HAProxy.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from testkit.environment import server_environment
from testkit.haproxy import SERVERS, Balancer, launch_balancer
from testkit.netns import Host
from testkit.postgres import PostgresServer
from testkit.server import SERVE_HTTP, ServerProcess, launch_http_server

ROLE = "session_buddy_balanced"
DATABASE = "session_buddy_balanced"
INSTANCE_PORT = 8681  # every instance has a namespace, hence a port space, of its own
BALANCER_PORT = 8678


@dataclass
class Instance:
    """One ``serve --transport http`` in its namespace, and how to start it again."""

    name: str  # the shipped configuration's server name: sb1, sb2, sb3
    host: Host
    env: dict[str, str]
    workdir: Path
    port: int = INSTANCE_PORT
    server: ServerProcess | None = None
    starts: int = 0

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def target(self) -> str:
        """``address:port``, as the balancer's configuration names it."""
        return f"{self.address}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.target}"

    def start(self) -> ServerProcess:
        """Launch (or relaunch, on the same address and port); not waited for."""
        self.starts += 1
        self.server = launch_http_server(
            self.env,
            self.workdir,
            host=self.address,
            port=self.port,
            log_path=self.workdir / f"{self.name}-{self.starts}.log",
            command=(*self.host.exec_prefix, *SERVE_HTTP),
        )
        return self.server

    def tool_calls(self) -> int:
        """Tool calls this instance answered since it started (its ``/metrics``)."""
        response = httpx.get(f"{self.base_url}/metrics", timeout=10, trust_env=False)
        response.raise_for_status()
        total = 0.0
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "session_buddy_tool_calls_total":
                    total += sample.value
        return int(total)

    def log(self) -> str:
        return "".join(
            path.read_text(errors="replace")
            for path in sorted(self.workdir.glob(f"{self.name}-*.log"))
        )


@dataclass
class BalancedCluster:
    """PostgreSQL, the instances, the balancer and a client host; see the module docstring."""

    postgres: PostgresServer
    instances: list[Instance]
    balancer: Balancer
    balancer_host: Host
    client_host: Host
    secret: str
    workdir: Path
    cli_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.balancer.url

    def instance(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    def tool_calls(self) -> Counter[str]:
        """Each instance's tool calls so far, by name (counts restart at an instance's start)."""
        return Counter({i.name: i.tool_calls() for i in self.instances})

    def posts_from_client(
        self, requests: Sequence[Mapping[str, Any]], *, url: str | None = None
    ) -> list[dict[str, Any]]:
        """POST each request (``{"json": …, "headers": {…}}``) from the client host, in
        order, on one connection; each answer's ``status`` and ``body`` (parsed JSON, or
        None)."""
        script = (
            "import json, sys, httpx\n"
            "spec = json.load(sys.stdin)\n"
            "answers = []\n"
            "with httpx.Client(timeout=30, trust_env=False) as http:\n"
            "    for r in spec['requests']:\n"
            "        a = http.post(spec['url'], json=r['json'], headers=r.get('headers', {}))\n"
            "        try:\n"
            "            body = a.json()\n"
            "        except ValueError:\n"
            "            body = None\n"
            "        answers.append({'status': a.status_code, 'body': body})\n"
            "json.dump(answers, sys.stdout)\n"
        )
        spec = {"url": url or self.url, "requests": list(requests)}
        done = self.client_host.run(
            [sys.executable, "-c", script], input=json.dumps(spec), timeout=120
        )
        answers: list[dict[str, Any]] = json.loads(done.stdout)
        return answers


def _hosts(count: int) -> list[Host]:
    hosts: list[Host] = []
    try:
        for label in [*(f"sb{n + 1}" for n in range(count)), "lb", "client"]:
            hosts.append(Host(label))
    except BaseException:
        for host in hosts:
            host.close()
        raise
    return hosts


@contextlib.contextmanager
def balanced_cluster(
    workdir: Path, secret: str, *, settings: Mapping[str, str] | None = None
) -> Iterator[BalancedCluster]:
    """Start PostgreSQL, three instances and HAProxy (all waited for); stop and remove
    everything afterwards. ``settings``: extra ``SESSION_BUDDY_*`` for every instance."""
    workdir.mkdir(parents=True, exist_ok=True)
    count = len(SERVERS)
    hosts = _hosts(count)
    *instance_hosts, balancer_host, client_host = hosts
    postgres = PostgresServer(listen_addresses=["127.0.0.1", *(h.gateway for h in instance_hosts)])
    instances: list[Instance] = []
    balancer: Balancer | None = None
    try:
        postgres.start()
        password = secrets.token_urlsafe(18)
        postgres.create_role(ROLE, password)
        postgres.create_database(DATABASE, owner=ROLE)
        for number, host in enumerate(instance_hosts, start=1):
            url = postgres.url(user=ROLE, password=password, dbname=DATABASE, host=host.gateway)
            env = server_environment(
                workdir / f"data-sb{number}",
                secret,
                SESSION_BUDDY_DATABASE_URL=url,
                SESSION_BUDDY_TRUSTED_PROXIES=balancer_host.address,
                SESSION_BUDDY_ALLOWED_HOSTS=(
                    f"{balancer_host.address}:*,{host.address}:*"  # via the balancer, directly
                ),
                SESSION_BUDDY_BEARER_ONLY="true",
                SESSION_BUDDY_METRICS="true",
                **(settings or {}),
            )
            instances.append(Instance(f"sb{number}", host, env, workdir))
        servers = [instance.start() for instance in instances]
        for server in servers:
            server.wait_until_ready()
        balancer = launch_balancer(
            [i.target for i in instances],
            address=balancer_host.address,
            port=BALANCER_PORT,
            workdir=workdir,
            prefix=balancer_host.exec_prefix,
        )
        balancer.wait_all_up()
        cli_url = postgres.url(user=ROLE, password=password, dbname=DATABASE, host="127.0.0.1")
        cli_env = server_environment(
            workdir / "data-cli", secret, SESSION_BUDDY_DATABASE_URL=cli_url
        )
        yield BalancedCluster(
            postgres, instances, balancer, balancer_host, client_host, secret, workdir, cli_env
        )
    finally:
        if balancer is not None:
            balancer.stop()
        for instance in instances:
            if instance.server is not None:
                instance.server.kill()
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            postgres.close()
        for host in hosts:
            host.close()
