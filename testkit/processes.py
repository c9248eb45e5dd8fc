"""This interpreter as a child process, run to completion: what tests see of a command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout: where ``python -m stress`` and ``python -m benchmarks`` run from."""


def run_python(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` with text output captured; stdin closed unless ``input`` is given.

    The exit status is the caller's to judge (never raises on it); ``env`` defaults to
    this process's environment.
    """
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
