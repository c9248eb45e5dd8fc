"""The systemd unit in ``deploy/systemd``: checked by systemd's own tools, and run as written.

``systemd-analyze verify`` must have nothing to say about it and its offline security review
must rate it well; ``systemd-sysusers`` must accept its account. systemd cannot run a unit
here (it is not PID 1), so the test runs the unit's ``ExecStart`` itself, in the
environment the unit sets up (credentials directory, state directory, environment lines),
and stops it the way systemd does: SIGTERM, then SIGKILL after ``TimeoutStopSec`` — the
server must be gone long before.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from session_buddy.config import ENV_PREFIX, Settings
from session_buddy.mcp.shutdown import STOP_WITHIN_SECONDS
from testkit.environment import clean_environment, new_secret
from testkit.processes import REPO_ROOT
from testkit.server import SCRIPT, free_port, launch_http_server

UNIT = REPO_ROOT / "deploy" / "systemd" / "session-buddy.service"
SYSUSERS = REPO_ROOT / "deploy" / "systemd" / "session-buddy.sysusers"
INSTALLED_AT = "/opt/session-buddy/bin/session-buddy"
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 (locked down) … 10 (exposed); "OK" below 4
SYSTEMD_MISSING = "systemd-analyze not installed (Debian package systemd; .ci/run installs it)"

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason=SYSTEMD_MISSING)


def directives(text: str) -> dict[str, list[str]]:
    """``Section.Key`` → every value it is given, in order (comments and blanks skipped)."""
    found: dict[str, list[str]] = defaultdict(list)
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found[f"{section}.{key.strip()}"].append(value.strip())
    return found


def unit_here(tmp_path: Path) -> Path:
    """The unit with ``ExecStart`` pointing at this checkout's installed command."""
    local = tmp_path / UNIT.name
    local.write_text(UNIT.read_text().replace(INSTALLED_AT, str(SCRIPT)))
    return local


@needs_systemd
def test_systemd_analyze_verify_has_nothing_to_say_about_the_unit(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit_here(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@needs_systemd
def test_the_units_offline_security_review_rates_it_well_exposed_at_most_a_little(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        ["systemd-analyze", "--offline=true", "security", str(unit_here(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )

    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason=SYSTEMD_MISSING)
def test_systemd_sysusers_creates_the_service_account_the_unit_runs_as(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", "--dry-run", str(SYSUSERS)],
        capture_output=True,
        text=True,
        check=False,
    )
    unit = directives(UNIT.read_text())

    assert result.returncode == 0, result.stderr
    assert "Creating user 'session-buddy'" in result.stdout + result.stderr
    assert unit["Service.User"] == unit["Service.Group"] == ["session-buddy"]


def test_every_variable_the_unit_sets_is_a_setting() -> None:
    unit = directives(UNIT.read_text())
    names = [value.split("=", 1)[0] for value in unit["Service.Environment"]]

    assert names
    for name in names:
        assert name.startswith(ENV_PREFIX)
        assert name.removeprefix(ENV_PREFIX).lower() in Settings.model_fields, name


def test_the_stop_timeout_leaves_the_graceful_shutdown_room() -> None:
    """Draining, running requests and clean-up take 8 s at most; systemd waits 15."""
    unit = directives(UNIT.read_text())

    assert unit["Service.KillSignal"] == ["SIGTERM"]
    assert float(unit["Service.TimeoutStopSec"][0]) >= STOP_WITHIN_SECONDS + 5


@pytest.mark.e2e
def test_the_units_command_serves_in_the_units_environment_and_stops_on_sigterm_in_time(
    tmp_path: Path,
) -> None:
    unit = directives(UNIT.read_text())
    credentials, state = tmp_path / "credentials", tmp_path / "state"
    credentials.mkdir(mode=0o700)
    for name, source in (line.split(":", 1) for line in unit["Service.LoadCredential"]):
        assert source.startswith("/etc/session-buddy/")
        (credentials / name).write_text(new_secret() + "\n")
    for directory in unit["Service.StateDirectory"]:
        (state / directory).mkdir(parents=True, mode=0o700)

    def expand(value: str) -> str:
        return value.replace("%d", str(credentials)).replace("%S", str(state))

    settings = dict(expand(value).split("=", 1) for value in unit["Service.Environment"])
    command = shlex.split(unit["Service.ExecStart"][0])
    assert command[0] == INSTALLED_AT
    command[0] = str(SCRIPT)
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    [working_directory] = [Path(expand(value)) for value in unit["Service.WorkingDirectory"]]
    stop_timeout = float(unit["Service.TimeoutStopSec"][0])

    # launch_http_server adds "--host 127.0.0.1 --port PORT": the same values, repeated.
    server = launch_http_server(
        clean_environment(**settings), working_directory, port=port, command=command,
        log_path=tmp_path / "server.log",
    )  # fmt: skip
    with server:
        assert (state / "session-buddy" / "session-buddy.db").exists()
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {stop_timeout} s after SIGTERM: systemd would kill it")
        stopped_after = time.monotonic() - signalled

    assert server.process.returncode == 0, server.tail()
    assert stopped_after < STOP_WITHIN_SECONDS < stop_timeout
