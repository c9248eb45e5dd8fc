"""Part: tool calls/s through the shipped HAProxy configuration, 1, 2 and 3 instances.

The world of ``tests/deploy/test_balancer.py`` (:mod:`testkit.balanced`): three stateless
instances on one PostgreSQL, each in a network namespace, HAProxy running
``deploy/haproxy/haproxy.cfg`` in another. Three more HAProxy processes run the same file
on other ports; through the runtime API (``disable server``, as an operator would) the
first sends to sb1 only, the second to sb1 and sb2, the third to all three. The
reference is sb1 reached directly, without a balancer.

The official Python client (handshake mode, as Claude Code connects; bearer header)
calls ``session_status`` on a session it started, in two ways:

* **one caller**, configurations taking turns call by call (``benchmarks.e2e.measure``):
  what the balancer's extra hop costs a client that waits for each answer;
* **8 concurrent callers** per configuration (a quarter of the e2e batch each),
  configurations taking turns batch by batch (order rotated every round): the throughput
  the instances give together. Each batch also measures the CPU time every instance and
  the balancer spent (user + system), per call: what sizing extrapolates from.

On a machine with two shared cores the client, the balancer and every instance compete
for the same cores, so the concurrent curve is flat: more instances add no cores. The
rows say how much one instance, and the balancer, cost per call; ``docs/DEPLOYMENT.md``
("Sizing") extrapolates from those to machines with cores of their own.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client

from benchmarks.e2e import TOOL, USER, Configuration, call, measure
from benchmarks.harness import Profile, Row, median, progress, spread
from testkit.balanced import BALANCER_PORT, BalancedCluster, balanced_cluster
from testkit.environment import new_secret
from testkit.figures import percentile
from testkit.git import make_git_repo
from testkit.haproxy import BACKEND, SERVERS, Balancer, launch_balancer
from testkit.mcp import http_transport
from testkit.processes import cpu_seconds, resident_mb
from testkit.tokens import mint

PART = "balancer"
CONCURRENT = 8
MODE = "legacy"
# configuration -> instances its balancer sends to (None: sb1 directly, no balancer)
ROUTES: dict[str, Sequence[str] | None] = {
    "direct": None,
    "lb1": SERVERS[:1],
    "lb2": SERVERS[:2],
    "lb3": SERVERS,
}
LABELS = {
    "direct": "one instance, direct",
    "lb1": "balancer, 1 instance",
    "lb2": "balancer, 2 instances",
    "lb3": "balancer, 3 instances",
}


@dataclass
class Route:
    """One configuration: where its clients connect, and what it measured."""

    name: str
    url: str
    balancer: Balancer | None
    clients: list[Client] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # concurrent batches
    latencies: list[float] = field(default_factory=list)
    instance_cpu: list[float] = field(default_factory=list)  # seconds per batch, all instances
    balancer_cpu: list[float] = field(default_factory=list)


async def open_routes(
    cluster: BalancedCluster, token: str, repo: Path, stack: AsyncExitStack
) -> tuple[list[Route], list[Configuration]]:
    routes = []
    for number, (name, serving) in enumerate(ROUTES.items()):
        balancer = None
        url = f"{cluster.instance('sb1').base_url}/mcp"
        if serving is not None:
            workdir = cluster.workdir / name
            workdir.mkdir()
            balancer = stack.enter_context(
                launch_balancer(
                    [i.target for i in cluster.instances],
                    address=cluster.balancer_host.address,
                    port=BALANCER_PORT + 1 + number,
                    workdir=workdir,
                    prefix=cluster.balancer_host.exec_prefix,
                )
            )
            for server in SERVERS:
                if server not in serving:
                    balancer.command(f"disable server {BACKEND}/{server}")
            balancer.wait_for(
                lambda states, serving=serving: all(
                    (states[s] == "UP") == (s in serving) for s in SERVERS
                )
            )
            url = balancer.url
        routes.append(Route(name, url, balancer))
    sequential = []
    for route in routes:
        for _ in range(CONCURRENT + 1):
            client = await stack.enter_async_context(
                Client(http_transport(route.url, bearer=token), mode=MODE)
            )
            route.clients.append(client)
        arguments = {"working_directory": str(repo)}
        started = await route.clients[0].call_tool("start_session", arguments)
        if started.is_error:
            raise RuntimeError(f"{route.name}: start_session failed: {started.content}")
        # "http_": one group for benchmarks.e2e.measure, which interleaves call by call
        sequential.append(Configuration(f"http_{route.name}", route.clients[-1], arguments))
    return routes, sequential


def per_caller(profile: Profile) -> int:
    """Calls each concurrent caller makes per batch (a quarter of the e2e batch: eight
    callers make twice the calls of one)."""
    return max(5, profile.e2e_calls // 4)


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def concurrent_rounds(
    profile: Profile, cluster: BalancedCluster, routes: list[Route], repo: Path
) -> None:
    """Rounds of one batch per route: :data:`CONCURRENT` callers, :func:`per_caller` calls
    each."""
    arguments = {"working_directory": str(repo)}
    instance_pids = [i.server.process.pid for i in cluster.instances if i.server is not None]
    calls, rounds, warmup = per_caller(profile), profile.e2e_rounds, 1
    progress(f"{PART}: {rounds} rounds (+{warmup}) × {len(routes)} routes × {CONCURRENT} callers")
    for number in range(warmup + rounds):
        shift = number % len(routes)
        for route in routes[shift:] + routes[:shift]:
            latencies: list[float] = []

            async def caller(client: Client, latencies: list[float] = latencies) -> None:
                for _ in range(calls):
                    start = time.perf_counter()
                    result = await client.call_tool(TOOL, arguments)
                    latencies.append(time.perf_counter() - start)
                    if result.is_error:
                        raise RuntimeError(f"{TOOL} failed: {result.content}")

            balancer_pid = [route.balancer.process.pid] if route.balancer is not None else []
            cpu_before = _cpu(instance_pids), _cpu(balancer_pid)
            start = time.perf_counter()
            async with anyio.create_task_group() as group:
                for client in route.clients[:CONCURRENT]:
                    group.start_soon(caller, client)
            elapsed = time.perf_counter() - start
            if number >= warmup:
                route.seconds.append(elapsed)
                route.latencies += latencies
                route.instance_cpu.append(_cpu(instance_pids) - cpu_before[0])
                route.balancer_cpu.append(_cpu(balancer_pid) - cpu_before[1])


def rows_for(
    profile: Profile,
    routes: list[Route],
    sequential: list[Configuration],
    memory: dict[str, float] | None = None,
) -> list[Row]:
    """The rows; ``memory``: resident MiB after the rounds, ``instance`` (the largest) and
    ``balancer``."""
    rows: list[Row] = []
    calls = profile.e2e_calls
    batch_calls = per_caller(profile) * CONCURRENT
    direct = next(r for r in routes if r.name == "direct")
    by_name = {config.name: config for config in sequential}
    direct_sequential = by_name["http_direct"]

    def rate(seconds: list[float], n: int) -> float:
        return n / median(seconds)

    def against_direct(name: str, what: str, mine: list[float], ref: list[float], n: int) -> Row:
        """calls/s of ``mine`` over the direct ``ref``, per round (batches of ``n`` calls)."""
        per_round = [b / a for a, b in zip(mine, ref, strict=True)]
        absolute = f"{rate(mine, n):.0f} vs {rate(ref, n):.0f} calls/s"
        return Row(
            PART,
            name,
            what,
            median(per_round),
            details={"absolute": absolute, "ratio_per_round": [round(r, 4) for r in per_round]},
        )

    balanced = [route for route in routes if route.name != "direct"]
    for route in balanced:
        rows.append(
            against_direct(
                f"{route.name}_vs_direct_one_caller",
                f"calls/s, {LABELS[route.name]} / direct, one caller",
                by_name[f"http_{route.name}"].seconds,
                direct_sequential.seconds,
                calls,
            )
        )
    for route in balanced:
        rows.append(
            against_direct(
                f"{route.name}_vs_direct_{CONCURRENT}_callers",
                f"calls/s, {LABELS[route.name]} / direct, {CONCURRENT} callers",
                route.seconds,
                direct.seconds,
                batch_calls,
            )
        )
    for route in routes:
        # over every batch: /proc counts CPU in 10 ms ticks, coarse for one batch
        measured_calls = batch_calls * len(route.instance_cpu)
        instance_ms = 1000 * sum(route.instance_cpu) / measured_calls
        balancer_ms = 1000 * sum(route.balancer_cpu) / measured_calls
        lat = route.latencies
        details: dict[str, Any] = {
            "absolute": (
                f"p50 {percentile(lat, 0.5) * 1000:.1f} ms, p99 {percentile(lat, 0.99) * 1000:.1f}"
                f" ms; CPU per call: instances {instance_ms:.2f} ms, balancer {balancer_ms:.3f} ms"
            ),
            "instance_cpu_ms_per_call": round(instance_ms, 3),
            "balancer_cpu_ms_per_call": round(balancer_ms, 4),
            "p50_ms": round(percentile(lat, 0.5) * 1000, 2),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
            "batch_seconds": spread(route.seconds),
            "calls": len(lat),
        }
        rows.append(
            Row(
                PART,
                f"{route.name}_{CONCURRENT}_callers_calls_per_s",
                f"{LABELS[route.name]}, {CONCURRENT} callers: calls/s",
                rate(route.seconds, batch_calls),
                unit="calls/s",
                details=details,
            )
        )
    for name, what in (("instance", "an instance"), ("balancer", "the balancer (HAProxy)")):
        if memory and name in memory:
            rows.append(
                Row(
                    PART,
                    f"{name}_resident_mb",
                    f"resident memory of {what} after the rounds",
                    memory[name],
                    unit="MB",
                )
            )
    return rows


async def _run(profile: Profile, cluster: BalancedCluster, token: str, repo: Path) -> list[Row]:
    async with AsyncExitStack() as stack:
        routes, sequential = await open_routes(cluster, token, repo, stack)
        for config in sequential:
            await call(config)
        await measure(profile, sequential, PART)
        await concurrent_rounds(profile, cluster, routes, repo)
        instances = [i.server.process.pid for i in cluster.instances if i.server is not None]
        memory = {
            "instance": max(resident_mb(pid) for pid in instances),
            "balancer": max(
                resident_mb(r.balancer.process.pid) for r in routes if r.balancer is not None
            ),
        }
        return rows_for(profile, routes, sequential, memory)


def run(profile: Profile) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="sb-bench-balancer-") as tmp:
        root = Path(tmp)
        secret = new_secret()
        token = mint(secret, USER, lifetime=4 * 3600)
        repo = make_git_repo(root / "project", "bench-project")
        progress(f"{PART}: starting PostgreSQL, 3 instances in namespaces, HAProxy")
        quiet = {"SESSION_BUDDY_LOG_LEVEL": "WARNING"}
        with balanced_cluster(root / "cluster", secret, settings=quiet) as cluster:
            return anyio.run(_run, profile, cluster, token, repo)
