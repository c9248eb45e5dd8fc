"""Three HTTP instances on one PostgreSQL, each on a "host" of its own (scenario 8's world).

:func:`cluster` starts PostgreSQL (the kit's :class:`~testkit.postgres.PostgresServer`, run as
the ``postgres`` user), a login role with a random password and its database, and
``session-buddy serve --transport http`` three times on it. Preferably each instance runs in a
network namespace (:class:`testkit.netns.Host`): it binds the namespace's own address and
reaches PostgreSQL at its gateway, the only root-namespace address it can route to, so the
three really are different machines sharing one database server. Clients stay in the root
namespace and connect to each instance's address; the CLI reaches PostgreSQL on 127.0.0.1.
Where namespaces are unavailable the instances listen on 127.0.8.1-3 instead, and
:attr:`Cluster.isolation` says so (the scenario prints it with its figures).

:meth:`Cluster.source` hands out client addresses no other request of the run has used (the
failure throttle counts per client address): root-namespace addresses in the first host's
/24, which every host sees as the same client, or loopback addresses in the fallback.
Everything is killed and removed when the ``async with`` block ends, however it ends.

PostgreSQL is started, restarted and stopped by one thread that lives as long as the cluster
(:meth:`Cluster.postgres`): the kit's server gets SIGQUIT when the *thread* that started it
ends (``PR_SET_PDEATHSIG``), and anyio's worker threads end after 10 s of idleness.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from stress.harness import Context, launch_server, ready
from testkit.netns import Host, netns_unavailable_reason
from testkit.postgres import PostgresServer
from testkit.server import ServerProcess, can_bind, free_port

INSTANCES = 3
LOOPBACK_INSTANCES = ("127.0.8.1", "127.0.8.2", "127.0.8.3")
ROLE = "session_buddy_stress"
DATABASE = "session_buddy_stress"


@dataclass
class Instance:
    """One ``serve --transport http`` process, and how to start it again on the same port."""

    name: str
    address: str
    port: int
    database_url: str
    data_dir: Path
    host: Host | None = None
    server: ServerProcess | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)  # one per start

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/mcp"

    @property
    def pid(self) -> int | None:
        return self.server.process.pid if self.server is not None else None

    def log(self) -> str:
        """Everything every start of this instance wrote."""
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())


@dataclass
class Cluster:
    """The instances, their PostgreSQL, and where clients may come from."""

    ctx: Context
    pg: PostgresServer
    keeper: ThreadPoolExecutor  # the one thread that starts PostgreSQL (see the module doc)
    password: str
    instances: list[Instance]
    hosts: list[Host] = field(default_factory=list)
    unavailable_reason: str | None = None

    @property
    def namespaces(self) -> bool:
        return bool(self.hosts)

    @property
    def isolation(self) -> str:
        if self.namespaces:
            return (
                f"{len(self.hosts)} network namespaces "
                f"({', '.join(i.address for i in self.instances)}); PostgreSQL on their gateways"
            )
        return (
            f"FALLBACK: one network namespace, instances on {', '.join(LOOPBACK_INSTANCES)} "
            f"(network namespaces unavailable: {self.unavailable_reason})"
        )

    @property
    def cli_settings(self) -> dict[str, str]:
        """What the CLI (in the root namespace) needs to use the same database."""
        url = self.pg.url(user=ROLE, password=self.password, dbname=DATABASE, host="127.0.0.1")
        return {"SESSION_BUDDY_DATABASE_URL": url}

    def source(self) -> str | None:
        """A client address no request has come from yet (None: the default one)."""
        if self.hosts:
            return self.hosts[0].add_root_address()
        return self.ctx.addresses.take()

    def start(self, instance: Instance) -> ServerProcess:
        """Launch (or relaunch, on the same port) ``instance``; not waited for."""
        instance.starts += 1
        instance.server = launch_server(
            self.ctx,
            f"{instance.name}-{instance.starts}",
            instance.data_dir,
            instance.port,
            host=instance.address,
            prefix=instance.host.exec_prefix if instance.host is not None else (),
            settings={
                "SESSION_BUDDY_DATABASE_URL": instance.database_url,
                # as README's "Serving beyond loopback" advises: only its own name
                "SESSION_BUDDY_ALLOWED_HOSTS": f"{instance.address}:*",
            },
        )
        instance.logs.append(instance.server.log_path)
        return instance.server

    async def postgres(self, operation: Callable[[], None]) -> None:
        """Run ``operation`` (``self.pg.restart``, say) in the keeper thread; wait for it."""
        await _in(self.keeper, operation)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` on the instances' database as the superuser (over the unix socket)."""
        return self.pg.execute(sql, params, dbname=DATABASE)


def _hosts() -> tuple[list[Host], str | None]:
    reason = netns_unavailable_reason()
    if reason is not None:
        return [], reason
    hosts: list[Host] = []
    try:
        for n in range(INSTANCES):
            hosts.append(Host(f"sb{n + 1}"))
    except Exception as exc:  # e.g. no free /24: fall back, and say why
        for host in hosts:
            host.close()
        return [], f"{type(exc).__name__}: {exc}"
    return hosts, None


async def _in(keeper: ThreadPoolExecutor, operation: Callable[[], None]) -> None:
    await anyio.to_thread.run_sync(keeper.submit(operation).result)


@contextlib.asynccontextmanager
async def cluster(ctx: Context, on_start: Callable[[str], None]) -> AsyncIterator[Cluster]:
    """Start PostgreSQL and three instances (waited for); stop and remove all of it after.

    ``on_start`` is told each step's outcome (for the scenario's notes).
    """
    hosts, reason = await anyio.to_thread.run_sync(_hosts)
    if not hosts and not all(can_bind(a) for a in LOOPBACK_INSTANCES):
        raise RuntimeError(f"neither namespaces ({reason}) nor 127.0.8.x are usable")
    listen = ["127.0.0.1", *(h.gateway for h in hosts)]
    pg = PostgresServer(listen_addresses=listen)
    keeper = ThreadPoolExecutor(1, thread_name_prefix="stress-postgres")
    password = secrets.token_urlsafe(18)
    ctx.database_passwords += [password, pg.superuser_password]
    cluster_: Cluster | None = None
    try:
        await _in(keeper, pg.start)
        pg.create_role(ROLE, password)
        pg.create_database(DATABASE, owner=ROLE)
        on_start(f"PostgreSQL {pg.bin_dir.parent.name} on {', '.join(listen)}:{pg.port}")
        instances = []
        for n in range(INSTANCES):
            host = hosts[n] if hosts else None
            address = host.address if host is not None else LOOPBACK_INSTANCES[n]
            db_host = host.gateway if host is not None else "127.0.0.1"
            instances.append(
                Instance(
                    name=f"i{n + 1}",
                    address=address,
                    port=free_port(address) if host is None else free_port(),
                    database_url=pg.url(
                        user=ROLE, password=password, dbname=DATABASE, host=db_host
                    ),
                    data_dir=ctx.data_dir(f"hosts-i{n + 1}"),
                    host=host,
                )
            )
        cluster_ = Cluster(ctx, pg, keeper, password, instances, hosts, reason)
        servers = [cluster_.start(i) for i in instances]
        async with anyio.create_task_group() as tg:
            for server in servers:
                tg.start_soon(ready, server)
        yield cluster_
    finally:
        for instance in cluster_.instances if cluster_ is not None else []:
            if instance.server is not None:
                instance.server.kill()
        with contextlib.suppress(OSError):
            if pg.base_dir is not None and pg.log_path.exists():
                shutil.copyfile(pg.log_path, ctx.logs / "postgres.log")
        await _in(keeper, pg.close)
        keeper.shutdown()
        for host in hosts:
            await anyio.to_thread.run_sync(host.close)
