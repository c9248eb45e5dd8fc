"""The documentation stays true: its runnable snippets run, and what it names exists.

A Python block preceded by ``<!-- runnable -->`` is executed as written, in a subprocess
with a temporary data dir, a fresh ``SESSION_BUDDY_SECRET`` and the installed
``session-buddy`` on ``PATH``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import typer

from session_buddy.auth import errors
from session_buddy.cli import app
from session_buddy.config import Settings
from testkit.environment import new_secret, server_environment
from testkit.processes import REPO_ROOT, run_python

DOCS = [REPO_ROOT / "docs" / "JWT_AUTHENTICATION.md", REPO_ROOT / "README.md"]
# Held only to naming what exists (no configuration table, no runnable snippets).
NAMING_DOCS = [*DOCS, REPO_ROOT / "docs" / "DEPLOYMENT.md", REPO_ROOT / "CHANGELOG.md"]
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXTERNAL_PATHS = {
    "mahavishnu/core/permissions.py",
    # project ids and git refs in the tool-argument reference, not files
    "github.com/owner/repo",
    "host/path",
    "refs/heads/",
    "team/service",
}


def _snippets() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
            if before.strip() == MARKER:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{doc.name}:{line}", match.group(2)))
    return found


SNIPPETS = _snippets()


def test_every_runnable_marker_precedes_a_python_block() -> None:
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for marker in re.finditer(re.escape(MARKER), text):
            assert text[marker.end() :].lstrip("\n").startswith("```python\n"), (
                f"{doc.name}: a runnable marker must directly precede a ```python block"
            )
    assert len(SNIPPETS) >= 10


@pytest.mark.parametrize(("where", "code"), SNIPPETS, ids=[where for where, _ in SNIPPETS])
def test_runnable_snippet_runs_as_written(where: str, code: str, tmp_path: Path) -> None:
    env = server_environment(
        tmp_path / "data",
        new_secret(),
        SESSION_BUDDY_LOG_LEVEL="WARNING",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    result = run_python("-c", code, cwd=tmp_path, env=env)
    assert result.returncode == 0, f"{where} failed:\n{result.stdout}\n{result.stderr}"


def _all_text() -> str:
    return "\n".join(doc.read_text(encoding="utf-8") for doc in NAMING_DOCS)


def test_every_variable_named_exists_and_every_setting_is_documented() -> None:
    named = set(re.findall(r"\bSESSION_BUDDY_[A-Z_]+[A-Z]\b", _all_text()))
    variables = {
        name: field.validation_alias if isinstance(field.validation_alias, str) else None
        for name, field in Settings.model_fields.items()
    }
    settings = {alias or f"SESSION_BUDDY_{name.upper()}" for name, alias in variables.items()}
    assert named - settings == set(), "documented variables that do not exist"
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        missing = {v for v in settings if f"| `{v}`" not in text}
        assert missing == set(), f"{doc.name}: configuration table lacks {sorted(missing)}"


def _command_tree() -> object:
    return typer.main.get_command(app)


def test_every_cli_command_named_exists() -> None:
    root = _command_tree()
    text = _all_text()
    blocks = [re.sub(r"(^|\s)#[^\n]*", "", m.group(2)) for m in FENCE.finditer(text)]
    code = blocks + re.findall(r"`([^`\n]+)`", text)
    uses = [use for part in code for use in re.findall(r"session-buddy((?: [a-z][a-z-]*)+)", part)]
    assert uses
    for use in uses:
        command = root
        for word in use.split():
            children = getattr(command, "commands", None)
            if not children:
                break  # reached a leaf: the rest are arguments
            assert word in children, f"`session-buddy{use}`: no command {word!r}"
            command = children[word]


def test_every_repository_path_named_exists() -> None:
    paths = set(re.findall(r"`((?:[\w.-]+/)+[\w.-]*)`", _all_text()))
    assert paths
    for path in paths - EXTERNAL_PATHS:
        assert (REPO_ROOT / path).exists(), f"{path} is named in the docs but does not exist"


def test_the_troubleshooting_messages_are_the_real_ones() -> None:
    text = (REPO_ROOT / "docs" / "JWT_AUTHENTICATION.md").read_text(encoding="utf-8")
    for message in (
        errors.AUTH_DISABLED_WARNING,
        errors.SECRET_TOO_SHORT,
        errors.ExpiredTokenError().user_message,
        errors.InvalidTokenError().user_message,
    ):
        assert f"\n{message}\n" in text
