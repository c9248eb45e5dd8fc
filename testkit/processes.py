"""This interpreter as a child process, run to completion: what tests see of a command."""

from __future__ import annotations

import os
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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process (all its threads) has used so far (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int, command_contains: str = "") -> list[int]:
    """The live child processes of ``pid`` whose command line contains the given text."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and command_contains in command:
            found.append(int(entry.name))
    return found
