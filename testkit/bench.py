"""``make bench`` parts run as the smoke tests run them: quick, in a subprocess, as JSON."""

from __future__ import annotations

from testkit.environment import clean_environment
from testkit.processes import REPO_ROOT, run_python


def quick_run(part: str, *, timeout: float = 300) -> str:
    """``python -m benchmarks --only PART --quick --json``: its stdout (the run's JSON);
    the run must succeed (no error; missed targets do not fail a quick run)."""
    result = run_python(
        "-m", "benchmarks", "--only", part, "--quick", "--json",
        cwd=REPO_ROOT, env=clean_environment(), timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
