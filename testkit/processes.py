"""This interpreter as a child process, run to completion: what tests see of a command; and
the processes around it (alive, children, killed, dying with their parent), through Linux's
``/proc``.

Standard library only: :mod:`testkit.netns` uses it where nothing else is installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
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


def resident_mb(pid: int) -> float:
    """The process's resident memory (VmRSS) now, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_and_wait(pids: Iterable[int], timeout: float) -> None:
    """SIGKILL every one of ``pids`` (those gone already are skipped), then wait until none
    is alive, for at most ``timeout`` seconds (checked every 10 ms; no error after it)."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int) -> None:
    """In the child, before it execs: receive ``signum`` when the thread that started it dies,
    however it dies (Linux only; elsewhere nothing). Pass it to ``subprocess`` as
    ``preexec_fn=functools.partial(die_with_parent, signal.SIGKILL)``."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
