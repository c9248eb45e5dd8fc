"""CLI fixtures: auth enabled, a temp data dir and working directory, a runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.cli import CliEnv
from testkit.environment import new_secret


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    """Auth enabled with a fresh secret; nothing from the real environment or ~/.local
    (the autouse ``isolated_environment`` has already removed inherited settings)."""
    secret = new_secret()
    data_dir = tmp_path / "data"
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # no stray .env
    monkeypatch.setenv("SESSION_BUDDY_SECRET", secret)
    monkeypatch.setenv("SESSION_BUDDY_DATA_DIR", str(data_dir))
    return CliEnv(secret=secret, data_dir=data_dir, cwd=cwd, monkeypatch=monkeypatch)
