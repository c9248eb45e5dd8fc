"""``session-buddy --version``: the installed script and ``python -m session_buddy``."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from testkit.processes import REPO_ROOT
from testkit.server import SCRIPT

PROJECT_VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.mark.parametrize(
    "command", [[str(SCRIPT)], [sys.executable, "-m", "session_buddy"]], ids=["script", "-m"]
)
def test_version_prints_the_released_version_and_nothing_else(command: list[str]) -> None:
    result = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, check=False, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"session-buddy {PROJECT_VERSION}\n"
    assert result.stderr == ""


def test_version_comes_before_any_command_and_ignores_the_configuration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "session_buddy", "--version", "serve"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"SESSION_BUDDY_LOG_LEVEL": "LOUD", "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"session-buddy {PROJECT_VERSION}\n"
