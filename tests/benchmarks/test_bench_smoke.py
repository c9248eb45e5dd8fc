"""``python -m benchmarks`` runs and reports every row (a smoke test: no timing assertions).

The benchmark itself is ``make bench``; here only its quick micro part runs, in a
subprocess, to prove the harness works and its JSON has the shape RESULTS.md relies on.
"""

from __future__ import annotations

import json
import math

import pytest

from testkit.environment import clean_environment
from testkit.processes import REPO_ROOT, run_python

MICRO_ROWS = {
    "same_token",
    "distinct_tokens",
    "forged_tokens",
    "joserfc",
    "pyjwt_forged",
    "pyjwt",
}
TARGETED = {"same_token": 0.05, "distinct_tokens": 0.5, "forged_tokens": 0.15}


@pytest.fixture(scope="module")
def quick_micro_report() -> dict:
    result = run_python(
        "-m", "benchmarks", "--only", "micro", "--quick", "--json",
        cwd=REPO_ROOT, env=clean_environment(), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_quick_micro_run_reports_every_row(quick_micro_report: dict) -> None:
    names = {row["name"] for row in quick_micro_report["rows"]}
    assert names == MICRO_ROWS
    assert quick_micro_report["errors"] == {}
    assert quick_micro_report["profile"] == "quick"


def test_every_row_has_a_finite_positive_figure(quick_micro_report: dict) -> None:
    for row in quick_micro_report["rows"]:
        assert math.isfinite(row["value"]) and row["value"] > 0, row


def test_targeted_rows_carry_their_target_and_a_verdict(quick_micro_report: dict) -> None:
    rows = {row["name"]: row for row in quick_micro_report["rows"]}
    for name, target in TARGETED.items():
        assert rows[name]["target"] == target
        assert rows[name]["op"] == "<="
        assert rows[name]["passed"] in (True, False)  # the verdict, not asserted here


def test_report_describes_the_machine(quick_micro_report: dict) -> None:
    machine = quick_micro_report["machine"]
    for key in ("nproc", "cpu", "python", "PyJWT", "joserfc", "mcp"):
        assert machine[key]


def test_forged_tokens_went_through_the_rate_limited_failure_log(quick_micro_report: dict) -> None:
    forged = next(r for r in quick_micro_report["rows"] if r["name"] == "forged_tokens")
    assert forged["details"]["failures"] > 0
    assert 1 <= forged["details"]["failure_log_lines"] < forged["details"]["failures"]
