"""The ``session-buddy`` command in-process (typer's runner), in a private environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from session_buddy.cli import app


@dataclass
class CliEnv:
    """Where a CLI test runs: its secret, data dir and working directory, and its settings."""

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


def table_row(output: str, label: str) -> str:
    """The value column of the table row labelled ``label`` (its first line, if wrapped)."""
    match = re.search(rf"{re.escape(label)}\s*│\s*(.*?)\s*│", output)
    assert match, f"no row {label!r} in:\n{output}"
    return match.group(1)


def flat(output: str) -> str:
    """The table's text without borders and line breaks (long values wrap in cells)."""
    return re.sub(r"[\s│┌┐└┘├┤┬┴┼─┏┓┗┛┣┫┳┻╋━┃┡┩╇]+", "", output)
