"""CLI fixtures: a clean environment, a temp data dir and working directory, a runner."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from session_buddy.cli import app


@dataclass
class CliEnv:
    secret: str
    data_dir: Path
    cwd: Path
    monkeypatch: pytest.MonkeyPatch

    def run(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=input)

    def set(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)

    def unset(self, name: str) -> None:
        self.monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliEnv]:
    """Auth enabled with a fresh secret; nothing from the real environment or ~/.local."""
    for name in list(os.environ):
        if name.startswith("SESSION_BUDDY_") or name == "MAHAVISHNU_AUTH_SECRET":
            monkeypatch.delenv(name)
    secret = secrets.token_urlsafe(32)
    data_dir = tmp_path / "data"
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # no stray .env
    monkeypatch.setenv("SESSION_BUDDY_SECRET", secret)
    monkeypatch.setenv("SESSION_BUDDY_DATA_DIR", str(data_dir))
    yield CliEnv(secret=secret, data_dir=data_dir, cwd=cwd, monkeypatch=monkeypatch)
