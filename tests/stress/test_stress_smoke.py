"""The ``make stress`` harness itself runs: one cheap scenario, as CI would start it."""

from __future__ import annotations

import json

import pytest

from testkit.processes import REPO_ROOT, run_python


@pytest.mark.e2e
def test_storage_fault_scenario_runs_and_passes_its_bars() -> None:
    result = run_python("-m", "stress", "--only", "6", "--quick", "--json", cwd=REPO_ROOT)
    report = json.loads(result.stdout)
    (scenario,) = report["scenarios"]
    failed = [bar for bar in scenario["bars"] if not bar["ok"]]
    assert scenario["scenario"] == 6
    assert scenario["error"] is None, scenario["error"]
    assert not failed, failed
    assert scenario["verdict"] == "PASS"
    assert result.returncode == 0, result.stderr[-2000:]


def test_unknown_scenario_is_a_usage_error() -> None:
    result = run_python("-m", "stress", "--only", "99", cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 2
    assert "no scenario 99" in result.stderr
