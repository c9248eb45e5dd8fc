"""``python -m benchmarks --only growth --quick``: the data-growth rows (no timing assertion).

A smoke test like ``test_bench_smoke.py``: the quick growth part runs in a subprocess — a
real PostgreSQL, an empty and a large database on each backend (the large one 1 % of the
issue's history), a server on each, the CLI listings and the start-ups — and its JSON must
hold every row ``benchmarks/RESULTS.md`` shows, each figure the median of the per-round
ratios it reports, each verdict the one its value and target imply, the history the one
asked for, and no database URL (it carries a password).
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import pytest

from benchmarks.growth import BACKENDS, CALL_TARGET, LISTINGS, START_TARGET, TOOLS
from benchmarks.harness import QUICK
from testkit.bench import quick_run
from testkit.history import History

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def output() -> str:
    return quick_run("growth", timeout=600)


@pytest.fixture(scope="module")
def report(output: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(output)
    return data


@pytest.fixture(scope="module")
def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_name = {row["name"]: row for row in report["rows"]}
    assert len(by_name) == len(report["rows"]), "a row appears twice"
    return by_name


def expected_targets() -> dict[str, float | None]:
    names: dict[str, float | None] = {f"{b}_startup_large_vs_empty": START_TARGET for b in BACKENDS}
    names["sqlite_startup_cold_large_vs_empty"] = None  # the disk's: no target
    for backend in BACKENDS:
        for tool in TOOLS:
            names[f"{backend}_{tool.key}_large_vs_empty"] = CALL_TARGET
        for key, _ in LISTINGS:
            names[f"{backend}_{key}_large_vs_empty"] = CALL_TARGET
    return names


def test_quick_growth_run_reports_every_row(
    report: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> None:
    assert set(rows) == set(expected_targets()) | {"large_database"}
    assert all(row["part"] == "growth" and row["what"] for row in rows.values())
    assert (report["profile"], report["parts"], report["errors"]) == ("quick", ["growth"], {})


def test_every_ratio_is_the_median_of_its_rounds_with_the_issues_target(
    report: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> None:
    tools = {f"{backend}_{tool.key}_large_vs_empty" for backend in BACKENDS for tool in TOOLS}
    for name, target in expected_targets().items():
        row, details = rows[name], rows[name]["details"]
        per_round = details["ratio_per_round"]
        # quick: no warm-up round; tools in rounds of calls, starts and listings one by one
        rounds = QUICK.growth_rounds if name in tools else QUICK.growth_starts
        assert len(per_round) == rounds, name
        assert all(math.isfinite(ratio) and ratio > 0 for ratio in per_round), name
        assert row["value"] == pytest.approx(statistics.median(per_round), abs=1e-4), name
        large, empty = details["ms_large"], details["ms_empty"]
        assert 0 < large["min"] <= large["median"] <= large["max"], name
        assert 0 < empty["min"] <= empty["median"] <= empty["max"], name
        low, high = large["min"] / empty["max"], large["max"] / empty["min"]
        assert all(low * 0.999 <= ratio <= high * 1.001 for ratio in per_round), name
        if target is None:
            assert (row["unit"], row["op"], row["target"], row["passed"]) == ("×", None, None, None)
            continue
        assert (row["unit"], row["op"], row["target"]) == ("×", "<=", target), name
        assert row["passed"] is (row["value"] <= target), name  # whichever it is
    missed = [name for name, row in rows.items() if row["passed"] is False]
    assert sorted(report["missed"]) == sorted(missed)


def test_the_large_databases_hold_the_history_asked_for(rows: dict[str, dict[str, Any]]) -> None:
    history = History().scaled(QUICK.growth_fraction)
    details = rows["large_database"]["details"]
    assert details["history"] == {
        "users": history.users,
        "sessions": history.sessions,
        "checkpoints": history.checkpoints,
        "audit": history.audit,
        "revoked": history.revoked,
    }
    assert details["built"]["sqlite_mb"] > 0 and details["built"]["postgresql_mb"] > 0
    databases = details["databases"]
    assert databases["sqlite_large"].endswith("session-buddy.db")
    assert databases["postgresql_large"].endswith("/growth_large")


def test_no_database_url_is_reported(output: str) -> None:
    assert "postgresql://" not in output
