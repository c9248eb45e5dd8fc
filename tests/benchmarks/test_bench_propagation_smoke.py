"""``python -m benchmarks --only propagation --quick``: the revocation-propagation rows.

A smoke test like ``test_bench_smoke.py`` (no timing assertion): the quick propagation
part runs in a subprocess — a real PostgreSQL server, two HTTP instances on it and two on
one SQLite data dir, a few revocations each (about 15 s, most of it starting servers) —
and its JSON must hold the three rows RESULTS.md shows, each figure consistent with the
latencies it summarises, each verdict the one its value and target imply, and the
PostgreSQL cluster must really have run on PostgreSQL.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from benchmarks.harness import QUICK
from benchmarks.propagation import INSTANCES, PG_PER_ROUND, TARGET_P99_MS, TARGET_RATIO
from testkit.bench import quick_run
from testkit.figures import percentile

PG = "revocation_propagation_pg_p99_ms"
SQLITE = "revocation_propagation_sqlite_p99_ms"
RATIO = "revocation_propagation_pg_vs_sqlite"


@pytest.fixture(scope="module")
def output() -> str:
    return quick_run("propagation")


@pytest.fixture(scope="module")
def report(output: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(output)
    return data


@pytest.fixture(scope="module")
def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["rows"]}


def test_quick_propagation_run_reports_its_three_rows(
    report: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> None:
    assert len(report["rows"]) == 3
    assert set(rows) == {PG, SQLITE, RATIO}
    assert all(row["part"] == "propagation" and row["what"] for row in rows.values())
    assert (report["profile"], report["parts"], report["errors"]) == (
        "quick",
        ["propagation"],
        {},
    )


@pytest.mark.parametrize(
    ("name", "revocations"),
    [(PG, QUICK.propagation_rounds * PG_PER_ROUND), (SQLITE, QUICK.propagation_rounds)],
)
def test_each_cluster_row_is_the_p99_of_its_revocations(
    rows: dict[str, dict[str, Any]], name: str, revocations: int
) -> None:
    row, details = rows[name], rows[name]["details"]
    latencies = details["latencies_ms"]
    assert (details["revocations"], len(latencies)) == (revocations, revocations)
    assert details["instances"] == INSTANCES
    assert all(math.isfinite(ms) and ms > 0 for ms in latencies)
    assert row["unit"] == "ms"
    assert row["value"] == details["p99_ms"] == pytest.approx(percentile(latencies, 0.99))
    assert details["p50_ms"] == pytest.approx(percentile(latencies, 0.5))
    assert details["min_ms"] <= details["p50_ms"] <= details["p99_ms"] <= details["max_ms"]
    assert 0 <= details["lower_bound_p50_ms"] <= details["p50_ms"]
    assert details["lower_bound_p50_ms"] <= details["lower_bound_p99_ms"] <= details["p99_ms"]
    # a revocation counts when the last instance refused it
    assert max(details["per_instance_p99_ms"]) <= details["p99_ms"] + 0.01
    # every instance was asked at least once after the revocation
    assert details["polls_per_revocation_max"] >= INSTANCES


def test_the_postgresql_cluster_ran_on_postgresql_and_the_other_on_sqlite(
    rows: dict[str, dict[str, Any]], output: str
) -> None:
    pg, sqlite = rows[PG]["details"]["database"], rows[SQLITE]["details"]["database"]
    assert pg.startswith("127.0.0.1:") and pg.endswith("/propagation")
    assert sqlite.endswith("session-buddy.db")
    assert "postgresql://" not in output  # the URL (and its password) is never reported


def test_targets_and_verdicts_follow_the_issue(
    report: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> None:
    pg, ratio, sqlite = rows[PG], rows[RATIO], rows[SQLITE]
    assert (pg["op"], pg["target"]) == ("<=", TARGET_P99_MS)
    assert (ratio["op"], ratio["target"]) == ("<=", pytest.approx(TARGET_RATIO, abs=1e-3))
    assert (sqlite["op"], sqlite["target"], sqlite["passed"]) == (None, None, None)
    assert ratio["value"] == pytest.approx(pg["value"] / sqlite["value"])
    for row in (pg, ratio):
        assert row["passed"] is (row["value"] <= row["target"])  # whichever it is
    missed = [name for name, row in rows.items() if row["passed"] is False]
    assert sorted(report["missed"]) == sorted(missed)
