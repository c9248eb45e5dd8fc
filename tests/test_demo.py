"""``examples/jwt_auth_demo.py`` (``make demo``) as a user runs it: a real subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testkit.environment import clean_environment, new_secret
from testkit.processes import REPO_ROOT, run_python

DEMO = REPO_ROOT / "examples" / "jwt_auth_demo.py"

pytestmark = pytest.mark.e2e


def run_demo(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(str(DEMO), cwd=cwd, env=clean_environment(**env))


def test_demo_passes_every_step_on_a_fresh_machine(tmp_path: Path) -> None:
    user_data = tmp_path / "real-user-data"
    result = run_demo(tmp_path, SESSION_BUDDY_DATA_DIR=str(user_data))
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "generated a secret for this demo process" in result.stdout
    assert not [line for line in lines if line.startswith("❌")]
    assert sum(line.startswith("✅") for line in lines) >= 15
    for step in (
        "Create a token", "Verify it", "Refresh it", "Revoke it",
        "An expired token is rejected", "A tampered token is rejected",
        "A Mahavishnu-style token made with plain PyJWT is accepted",
        "A replayed envelope is rejected", "start_session without a token is rejected",
        "start_session with a token is accepted", "end_session returns the hand-off",
    ):  # fmt: skip
        assert f"✅ {step}" in result.stdout
    assert "❌ Authentication failed: Token has expired" in result.stdout
    assert "❌ Authentication failed: Invalid token" in result.stdout
    assert "❌ Authentication failed: Token required" in result.stdout
    assert "# Session hand-off" in result.stdout
    assert not user_data.exists(), "the demo must never touch the real data dir"


def test_demo_uses_an_existing_secret_without_printing_it(tmp_path: Path) -> None:
    secret = new_secret()
    result = run_demo(tmp_path, SESSION_BUDDY_SECRET=secret)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Using your SESSION_BUDDY_SECRET" in result.stdout
    assert secret not in result.stdout + result.stderr


def test_demo_exits_1_when_a_step_fails(tmp_path: Path) -> None:
    result = run_demo(tmp_path, SESSION_BUDDY_SECRET="too-short-to-be-usable")
    assert result.returncode == 1
    assert any(line.startswith("❌") for line in result.stdout.splitlines())
