"""``python -m benchmarks`` runs and reports every row (a smoke test: no timing assertions).

The benchmark itself is ``make bench``; here only its quick micro part runs, in a
subprocess, to prove the harness works and its JSON has the shape RESULTS.md relies on:
every row present, every figure a positive finite number consistent with the
measurements it came from, every verdict the one its value and target imply. How fast
anything is, is never asserted here.

The quick propagation part (PostgreSQL and SQLite instances) has its own smoke test,
``test_bench_propagation_smoke.py``. The e2e part — PostgreSQL/SQLite calls/s and audit +
metrics on/off included — is left to ``make bench``: even quick, it starts ten servers and
a PostgreSQL and takes about 25 s of a shared 2-core machine, for figures no test may
assert. What it computes is tested without servers in ``test_bench_e2e_rows.py``: the
audit + metrics rows from their rounds, the quiet servers' switches as the product reads
them, and the check that fails the part when a side was not what it claims.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import statistics
from typing import Any

import pytest

from benchmarks.harness import QUICK
from testkit.bench import quick_run

BASELINE = "pyjwt"
RATIO_ROWS = {"same_token", "distinct_tokens", "forged_tokens", "joserfc", "pyjwt_forged"}
# The one micro target: validate_token on a cache hit as a fraction of one PyJWT decode
# (a miss is PyJWT's decode plus our rules; those rows are context).
TARGETS = {"same_token": 0.05}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(quick_run("micro"))
    return data


@pytest.fixture(scope="module")
def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_name = {row["name"]: row for row in report["rows"]}
    assert len(by_name) == len(report["rows"]), "a row appears twice"
    return by_name


def positive(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def test_quick_micro_run_reports_every_row_and_nothing_else(
    report: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> None:
    assert set(rows) == RATIO_ROWS | {BASELINE}
    assert all(row["part"] == "micro" and row["what"] for row in rows.values())
    assert (report["profile"], report["parts"], report["errors"]) == ("quick", ["micro"], {})
    assert positive(report["duration_s"])


def test_every_measurement_is_a_positive_finite_spread(rows: dict[str, dict[str, Any]]) -> None:
    for name, row in rows.items():
        assert positive(row["value"]), name
        assert isinstance(row["details"]["ops_per_round"], int), name
        assert row["details"]["ops_per_round"] > 0, name
        spreads = [row["details"]["ns_per_op"]]
        if name != BASELINE:
            spreads.append(row["details"]["baseline_ns_per_op"])
        for spread in spreads:
            assert all(positive(spread[key]) for key in ("min", "median", "max")), name
            assert spread["min"] <= spread["median"] <= spread["max"], name


def test_every_ratio_row_is_computed_from_its_two_measurements(
    rows: dict[str, dict[str, Any]],
) -> None:
    baseline = rows[BASELINE]
    assert baseline["value"] == 1.0
    for name in RATIO_ROWS:
        row, details = rows[name], rows[name]["details"]
        assert details["baseline_ns_per_op"] == baseline["details"]["ns_per_op"], name
        per_round = details["ratio_per_round"]
        assert len(per_round) == QUICK.rounds, name  # warm-up rounds are not reported
        assert all(positive(ratio) for ratio in per_round), name
        # The figure is the median of the per-round ratios (kept to 4 decimals) ...
        assert row["value"] == pytest.approx(statistics.median(per_round), abs=1e-4), name
        # ... and each round's ratio is this row's time over the baseline's in that round,
        # so every one lies between the extremes the two spreads allow.
        mine, base = details["ns_per_op"], details["baseline_ns_per_op"]
        low, high = mine["min"] / base["max"], mine["max"] / base["min"]
        assert all(low - 1e-4 <= ratio <= high + 1e-4 for ratio in per_round), name


def test_targeted_rows_carry_their_target_and_the_verdict_it_implies(
    report: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> None:
    for name, row in rows.items():
        if name in TARGETS:
            assert (row["op"], row["target"]) == ("<=", TARGETS[name])
            assert row["passed"] is (row["value"] <= row["target"])  # whichever it is
        else:
            assert (row["op"], row["target"], row["passed"]) == (None, None, None)
    missed = [name for name, row in rows.items() if row["passed"] is False]
    assert sorted(report["missed"]) == sorted(missed)
    assert report["passed"] is (not missed)


def test_report_describes_the_machine_it_ran_on(report: dict[str, Any]) -> None:
    machine = report["machine"]
    assert isinstance(machine["nproc"], int) and machine["nproc"] > 0
    assert machine["cpu"]
    assert machine["python"] == platform.python_version()
    for package in ("PyJWT", "joserfc", "mcp"):
        assert machine[package] == importlib.metadata.version(package)


def test_every_forged_token_went_through_the_rate_limited_failure_log(
    rows: dict[str, dict[str, Any]],
) -> None:
    details = rows["forged_tokens"]["details"]
    timed = details["ops_per_round"] * (QUICK.rounds + QUICK.warmup_rounds)
    assert details["failures"] == timed + 2  # and the verdicts checked before and after
    assert 1 <= details["failure_log_lines"] < details["failures"]
    assert details["log_records_emitted"] >= details["failure_log_lines"]
    assert positive(details["ratio_vs_pyjwt_rejecting_same_pool"])
