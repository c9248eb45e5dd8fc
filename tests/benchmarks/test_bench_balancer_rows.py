"""The stateless and balancer parts' rows, without starting a server.

``make bench`` measures them; even quick, the two parts start six servers, then a
PostgreSQL, three instances in namespaces and four HAProxy processes (about 90 s of a
shared two-core machine, for figures no test may assert). What can be checked without
them is checked here: the servers each configuration starts are what its name says (as
the product reads their settings: stateless or not, JSON or SSE answers), the balancer
configurations send to the instances they are named for, and every row is computed from
its rounds, with the issue's targets where it sets one and the verdict they imply.
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from benchmarks import balancer, overhead, stateless
from benchmarks.answer_format import FORMATS
from benchmarks.e2e import Configuration
from benchmarks.harness import QUICK
from session_buddy.config import Settings
from session_buddy.mcp import server
from session_buddy.store import database_for
from testkit.haproxy import SERVERS


def rounds(rng: random.Random, base: float) -> list[float]:
    return [base * rng.uniform(0.9, 1.1) for _ in range(QUICK.e2e_rounds)]


# -- stateless ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(stateless.SERVERS))
def test_each_stateless_part_server_is_what_its_name_says(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings, answer_format = stateless.SERVERS[name]
    for variable, value in settings.items():
        monkeypatch.setenv(variable, value)
    read = Settings(data_dir=tmp_path)
    is_stateless = server.stateless_http_enabled(read.stateless_http, database_for(read))
    assert is_stateless is name.startswith("stateless")
    assert FORMATS[answer_format] is name.removesuffix(stateless.WHOAMI_SUFFIX).endswith("json")


def test_the_answer_format_switch_runs_the_product_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import answer_format

    seen: list[Any] = []
    monkeypatch.setattr(answer_format, "app", lambda args, prog_name: seen.append(args))
    monkeypatch.setattr(sys, "argv", ["answer_format", "sse", "serve", "--transport", "http"])
    monkeypatch.setattr(server, "JSON_RESPONSE", True)
    answer_format.main()
    assert (server.JSON_RESPONSE, seen) == (False, [["serve", "--transport", "http"]])


def stateless_measured() -> stateless.Measured:
    rng = random.Random(7)
    configs, cpu = [], {}
    for generation in stateless.GENERATIONS:
        for name in stateless.SERVERS:
            config = Configuration(stateless.name_of(name, generation), cast(Any, None), {})
            config.seconds = rounds(rng, 0.2 if name == "stateless_json" else 0.3)
            config.latencies = [0.01] * QUICK.e2e_calls * QUICK.e2e_rounds
            configs.append(config)
            cpu[config.name] = 1.0
    measured = stateless.Measured(configs, {c.name: 1 for c in configs})
    measured.cpu_ms_per_call = cpu
    for config in configs:
        server_name = config.name.removeprefix("http_").rpartition("_")[0]
        if server_name.endswith(stateless.WHOAMI_SUFFIX):
            crowd = overhead.Configuration(config.name, pid=1)
            crowd.concurrent = rounds(rng, 0.5 if server_name.startswith("stateless") else 0.9)
            measured.crowds[config.name] = crowd
    return measured


def test_every_stateless_row_is_computed_from_its_rounds_with_the_issues_target() -> None:
    measured = stateless_measured()
    rows = {row.name: row for row in stateless.rows_for(QUICK, measured)}
    by_name = {c.name: c for c in measured.configs}
    comparisons = {
        f"{mine}_vs_{reference}_{generation}_{way}": (mine, reference, generation, way)
        for mine, reference, _, _ in stateless.COMPARISONS
        for generation in stateless.GENERATIONS
        for way in ("sequential", "concurrent")
        if way == "sequential" or mine.endswith(stateless.WHOAMI_SUFFIX)
    }
    per_config = {f"{c.name}_calls_per_s" for c in measured.configs}
    assert set(rows) == set(comparisons) | per_config
    for row_name, (mine, reference, generation, way) in comparisons.items():
        mine_name = stateless.name_of(mine, generation)
        reference_name = stateless.name_of(reference, generation)
        if way == "sequential":
            a, b = by_name[mine_name].seconds, by_name[reference_name].seconds
        else:
            a = measured.crowds[mine_name].concurrent
            b = measured.crowds[reference_name].concurrent
        per_round = [y / x for x, y in zip(a, b, strict=True)]
        assert rows[row_name].value == pytest.approx(statistics.median(per_round))
    for way in ("sequential", "concurrent"):
        handshake = rows[f"stateless_json_whoami_vs_sessions_sse_whoami_handshake_{way}"]
        assert (handshake.op, handshake.target) == (">=", 1.4)  # the issue's target, its tool
        assert rows[f"stateless_json_whoami_vs_sessions_sse_whoami_2026_{way}"].target == 0.97
        for generation in stateless.GENERATIONS:  # context: the two modes as shipped, JSON/SSE
            shipped = rows[f"stateless_json_whoami_vs_sessions_json_whoami_{generation}_{way}"]
            json_sse = f"sessions_json_whoami_vs_sessions_sse_whoami_{generation}_{way}"
            assert shipped.passed is None and rows[json_sse].passed is None
    for generation in stateless.GENERATIONS:
        assert rows[f"stateless_json_vs_sessions_json_{generation}_sequential"].passed is None


# -- balancer -------------------------------------------------------------------------------


def test_each_balancer_route_sends_to_the_instances_it_is_named_for() -> None:
    assert balancer.ROUTES["direct"] is None
    for count in (1, 2, 3):
        assert list(balancer.ROUTES[f"lb{count}"] or []) == list(SERVERS[:count])


def test_every_balancer_row_is_computed_from_its_rounds() -> None:
    rng = random.Random(11)
    routes, sequential = [], []
    for name in balancer.ROUTES:
        route = balancer.Route(name, f"http://{name}/mcp", None)
        route.seconds = rounds(rng, 1.0)
        route.latencies = [0.05] * balancer.per_caller(QUICK) * balancer.CONCURRENT
        route.instance_cpu = [2.0] * QUICK.e2e_rounds
        route.balancer_cpu = [0.0 if name == "direct" else 0.1] * QUICK.e2e_rounds
        routes.append(route)
        config = Configuration(f"http_{name}", cast(Any, None), {})
        config.seconds = rounds(rng, 0.1)
        sequential.append(config)
    rows = {row.name: row for row in balancer.rows_for(QUICK, routes, sequential)}
    balanced = [r.name for r in routes if r.name != "direct"]
    assert set(rows) == (
        {f"{n}_vs_direct_one_caller" for n in balanced}
        | {f"{n}_vs_direct_{balancer.CONCURRENT}_callers" for n in balanced}
        | {f"{r.name}_{balancer.CONCURRENT}_callers_calls_per_s" for r in routes}
    )
    direct = routes[0]
    for route in routes[1:]:
        row = rows[f"{route.name}_vs_direct_{balancer.CONCURRENT}_callers"]
        pairs = zip(route.seconds, direct.seconds, strict=True)
        expected = statistics.median(d / r for r, d in pairs)
        assert row.value == pytest.approx(expected)
        assert row.passed is None  # the curve's shape depends on the machine's cores
    calls = balancer.per_caller(QUICK) * balancer.CONCURRENT
    lb3 = rows[f"lb3_{balancer.CONCURRENT}_callers_calls_per_s"].details
    assert lb3["instance_cpu_ms_per_call"] == pytest.approx(1000 * 2.0 / calls, abs=1e-3)
    assert lb3["balancer_cpu_ms_per_call"] == pytest.approx(1000 * 0.1 / calls, abs=1e-4)
