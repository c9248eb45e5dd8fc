"""The overhead part's servers and rows, without its twelve servers (``make bench`` runs it).

Checked here: the FastMCP comparison server verifies tokens for real and answers
``whoami`` as ours does; the bare endpoint answers its fixed body; the GC switch the part
uses sets :mod:`session_buddy.collector` as it says and runs the product's CLI, and so
does the HTTP-stack switch for uvicorn's loop and parser (the shipped server really runs
on uvloop, with h11); settling the collector freezes start-up's objects; and every row
is computed from its rounds, with the issue's targets and the verdicts they imply. How
fast anything is, is never asserted.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from mcp.client import Client
from starlette.testclient import TestClient

from benchmarks import bare_endpoint, gc_mode, http_stack, overhead
from benchmarks.harness import QUICK
from session_buddy import collector
from session_buddy.mcp import server as mcp_server
from testkit.environment import new_secret, server_environment
from testkit.figures import percentile
from testkit.mcp import http_transport
from testkit.processes import REPO_ROOT
from testkit.server import launch_http_server
from testkit.tokens import mint


@pytest.fixture
def restored_collector() -> Iterator[None]:
    saved = (collector.TUNED, collector.THRESHOLDS, gc.get_threshold())
    yield
    collector.TUNED, collector.THRESHOLDS = saved[0], saved[1]
    gc.set_threshold(*saved[2])
    gc.unfreeze()


@pytest.mark.parametrize(
    ("mode", "tuned", "thresholds"),
    [("stdlib", False, None), ("freeze", True, None), ("freeze:7000,10,10", True, (7000, 10, 10))],
)
def test_the_gc_switch_sets_the_collector_and_runs_the_product_cli(
    mode: str,
    tuned: bool,
    thresholds: tuple[int, int, int] | None,
    monkeypatch: pytest.MonkeyPatch,
    restored_collector: None,
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(gc_mode, "app", lambda args, prog_name: seen.append(args))
    monkeypatch.setattr(sys, "argv", ["gc_mode", mode, "serve", "--transport", "http"])
    gc_mode.main()
    assert (tuned, thresholds) == (collector.TUNED, collector.THRESHOLDS)
    assert seen == [["serve", "--transport", "http"]]


def test_the_part_measures_the_shipped_collector_against_the_alternatives() -> None:
    assert (collector.TUNED, collector.THRESHOLDS) == (True, None)  # what serve ships
    assert overhead.SERVERS["ours"][:3] == (sys.executable, "-m", "session_buddy")
    assert overhead.SERVERS["ours_gc_stdlib"][3] == "stdlib"
    assert overhead.SERVERS["ours_gc_thresholds"][3] == overhead.GC_THRESHOLDS


@pytest.mark.parametrize(
    ("stack", "loop", "http"), [("uvloop-h11", "uvloop", "h11"), ("asyncio-h11", "asyncio", "h11")]
)
def test_the_http_stack_switch_sets_uvicorns_loop_and_parser_and_runs_the_product_cli(
    stack: str, loop: str, http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(http_stack, "app", lambda args, prog_name: seen.append(args))
    monkeypatch.setattr(sys, "argv", ["http_stack", stack, "serve", "--transport", "http"])
    monkeypatch.setattr(mcp_server, "UVICORN_LOOP", "unset")
    monkeypatch.setattr(mcp_server, "UVICORN_HTTP", "unset")
    http_stack.main()
    assert (loop, http) == (mcp_server.UVICORN_LOOP, mcp_server.UVICORN_HTTP)
    assert seen == [["serve", "--transport", "http"]]


def test_the_shipped_server_runs_on_uvloop_and_h11() -> None:
    """``auto`` picks uvloop only when it imports: the dependency must be there."""
    assert overhead.SERVERS["ours_asyncio_h11"][3] == "asyncio-h11"
    # log_config=None: uvicorn's default would rewire this process's uvicorn loggers
    config = uvicorn.Config(
        app=bare_endpoint.app(),
        loop=mcp_server.UVICORN_LOOP,
        http=mcp_server.UVICORN_HTTP,
        log_config=None,
    )
    config.load()
    assert config.http_protocol_class.__module__ == "uvicorn.protocols.http.h11_impl"
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_settling_freezes_what_start_up_left_and_sets_the_thresholds(
    restored_collector: None,
) -> None:
    gc.unfreeze()
    collector.TUNED, collector.THRESHOLDS = False, None
    collector.settle()
    assert gc.get_freeze_count() == 0
    collector.TUNED, collector.THRESHOLDS = True, (7000, 10, 10)
    collector.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (7000, 10, 10)


def test_the_bare_endpoint_answers_every_post_with_its_fixed_body() -> None:
    with TestClient(bare_endpoint.app()) as http:
        answer = http.post("/mcp", json={"jsonrpc": "2.0", "id": 9, "method": "tools/call"})
        assert answer.status_code == 200
        assert answer.json() == bare_endpoint.BODY
        assert b'"isError":false' in answer.content  # what the part's raw caller checks
        assert http.get("/healthz").status_code == 200


def test_the_fastmcp_server_verifies_the_token_and_answers_whoami_like_ours(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    command = (sys.executable, "-m", "benchmarks.fastmcp_server")
    with launch_http_server(
        server_environment(tmp_path, secret), REPO_ROOT, command=command,
        log_path=tmp_path / "fastmcp.log",
    ) as server:  # fmt: skip
        forged = mint(new_secret(), "bench-user")
        refused = httpx.post(
            server.url, json={}, headers={"Authorization": f"Bearer {forged}"}, timeout=10
        )
        assert refused.status_code == 401

        async def whoami() -> dict[str, Any]:
            token = mint(secret, "bench-user")
            async with Client(http_transport(server.url, bearer=token), mode="legacy") as client:
                result = await client.call_tool("whoami", {})
                assert not result.is_error
                return dict(result.structured_content or {})

        identity = anyio.run(whoami)
    assert identity["user_id"] == "bench-user"
    assert (identity["authenticated"], identity["auth_enabled"]) == (True, True)


def measured() -> list[overhead.Configuration]:
    rng = random.Random(11)
    configs = []
    for name in overhead.CONFIGURATIONS:
        config = overhead.Configuration(name, pid=1)
        base = 0.1 if name.startswith("bare") else 0.3
        config.sequential = [base * rng.uniform(0.9, 1.1) for _ in range(QUICK.e2e_rounds)]
        config.concurrent = [base * rng.uniform(0.9, 1.1) for _ in range(QUICK.e2e_rounds)]
        config.sequential_latencies = [rng.uniform(0.002, 0.02) for _ in range(100)]
        config.concurrent_latencies = [rng.uniform(0.01, 0.2) for _ in range(200)]
        config.cpu_ms_per_call = 1.0
        config.calls_made = 1000
        configs.append(config)
    return configs


def test_every_row_is_computed_from_its_rounds_with_the_issues_targets() -> None:
    configs = measured()
    by_name = {config.name: config for config in configs}
    rows = {row.name: row for row in overhead.rows_for(QUICK, configs)}
    targets = {
        ("ours", "fastmcp"): 1.2,
        ("raw_ours", "bare"): 0.5,
        ("ours", "ours_asyncio_h11"): None,
    }
    assert {(mine, ref): target for mine, ref, target, _ in overhead.COMPARISONS} == targets
    compared = 0
    for mine, ref, target, _ in overhead.COMPARISONS:
        for generation in overhead.GENERATIONS:
            for way in ("sequential", "concurrent"):
                row = rows[f"{mine}_{generation}_vs_{ref}_{generation}_{way}"]
                a = getattr(by_name[f"{mine}_{generation}"], way)
                b = getattr(by_name[f"{ref}_{generation}"], way)
                per_round = [y / x for x, y in zip(a, b, strict=True)]
                assert row.value == pytest.approx(statistics.median(per_round))
                if target is None:  # context
                    assert (row.op, row.target, row.passed) == (None, None, None)
                else:
                    assert (row.op, row.target) == (">=", target)
                    assert row.passed is (row.value >= target)
                compared += 1
    assert compared == 12
    for name in overhead.TAILS:
        row = rows[f"{name}_p99_over_p50"]
        latencies = by_name[name].concurrent_latencies
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        assert row.value == pytest.approx(p99 / p50)
        shipped = name == "ours_handshake"
        assert (row.op, row.target) == (("<=", 3.0) if shipped else (None, None))
    assert all(f"{name}_calls_per_s" in rows for name in overhead.CONFIGURATIONS)
