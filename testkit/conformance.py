"""``make conformance``: the official MCP conformance suite against a real server.

The suite is the published npm package ``@modelcontextprotocol/conformance`` (pinned in
``testkit/node/conformance/package.json`` with the Node.js 22 it needs, npm's ``node``
package, so the system node is untouched). :func:`main` starts ``serve --transport http``
with authentication on, on a free loopback port (:func:`testkit.server.launch_http_server`),
once with MCP sessions and once stateless (:data:`SERVERS`), runs every scenario of
:data:`RUN` at each spec revision listed for it (each revision is its own wire: the
initialize handshake through 2025-11-25, per-request ``_meta`` on 2026-07-28) against
each, prints one line per run and exits 1 if any check failed or warned.

Every server scenario the installed suite lists must be in :data:`RUN` or
:data:`NOT_RUN` (which says why: they call test tools, prompts or resources this server
does not have, or features it does not offer); a scenario a new suite version adds fails
the run until it is classified. ``expected-failures.yml`` beside the package excuses
single checks of a run scenario that need such a test tool, in the suite's own format
(an excused check that passes fails the run, so the list cannot go stale).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from testkit.environment import new_secret, server_environment
from testkit.processes import REPO_ROOT
from testkit.server import launch_http_server

SUITE_DIR = REPO_ROOT / "testkit" / "node" / "conformance"
NODE = SUITE_DIR / "node_modules" / ".bin" / "node"
CLI = SUITE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
EXPECTED_FAILURES = SUITE_DIR / "expected-failures.yml"
SCENARIO_TIMEOUT_MS = 30_000

HANDSHAKE = "2025-11-25"
STATELESS = "2026-07-28"
BOTH = (HANDSHAKE, STATELESS)

RUN: Mapping[str, tuple[str, ...]] = {
    # the protocol itself: each must pass on every wire it applies to
    "server-initialize": (HANDSHAKE,),
    "ping": (HANDSHAKE,),
    "server-session-lifecycle": (HANDSHAKE,),
    "tools-list": BOTH,
    "resources-list": BOTH,
    "prompts-list": BOTH,
    "server-sse-multiple-streams": BOTH,
    "dns-rebinding-protection": BOTH,
    "server-stateless": (STATELESS,),
    "sep-2164-resource-not-found": (STATELESS,),
    "http-header-validation": (STATELESS,),
    "caching": (STATELESS,),
}
"""Scenario → the spec revisions it runs at."""

SERVERS: Mapping[str, Mapping[str, str]] = {
    "sessions": {"SESSION_BUDDY_STATELESS_HTTP": "false"},
    "stateless": {"SESSION_BUDDY_STATELESS_HTTP": "true"},
}
"""The servers every scenario runs against: name → their settings."""

NOT_FOR_STATELESS: Mapping[tuple[str, str], str] = {
    ("server-sse-multiple-streams", HANDSHAKE): (
        "needs an MCP session id on the handshake wire (the suite warns without one)"
    ),
}
"""(scenario, revision) runs that only apply to a server with MCP sessions, and why."""

_TEST_TOOL = "calls the suite's test tools (test_simple_text, …), which this server does not have"
NOT_RUN: Mapping[str, str] = {
    "tools-call-simple-text": _TEST_TOOL,
    "tools-call-image": _TEST_TOOL,
    "tools-call-audio": _TEST_TOOL,
    "tools-call-embedded-resource": _TEST_TOOL,
    "tools-call-mixed-content": _TEST_TOOL,
    "tools-call-with-logging": _TEST_TOOL,
    "tools-call-error": _TEST_TOOL,
    "tools-call-with-progress": _TEST_TOOL,
    "tools-call-sampling": _TEST_TOOL,
    "tools-call-elicitation": _TEST_TOOL,
    "json-schema-2020-12": _TEST_TOOL,
    "elicitation-sep1034-defaults": _TEST_TOOL,
    "elicitation-sep1330-enums": _TEST_TOOL,
    "server-sse-polling": _TEST_TOOL,
    "http-custom-header-server-validation": "needs a tool with x-mcp-header parameters",
    "resources-read-text": "reads the suite's test resources; this server has no resources",
    "resources-read-binary": "reads the suite's test resources; this server has no resources",
    "resources-templates-read": "reads a test resource template; this server has none",
    "resources-subscribe": "resource subscriptions: not offered (no resources)",
    "resources-unsubscribe": "resource subscriptions: not offered (no resources)",
    "prompts-get-simple": "gets the suite's test prompts; this server has no prompts",
    "prompts-get-with-args": "gets the suite's test prompts; this server has no prompts",
    "prompts-get-embedded-resource": "gets the suite's test prompts; this server has no prompts",
    "prompts-get-with-image": "gets the suite's test prompts; this server has no prompts",
    "logging-set-level": "logging/setLevel: not offered (the server logs to stderr)",
    "completion-complete": "completions: not offered (no prompts or resource templates)",
}
"""Scenarios not run, and why; whole families by prefix in :data:`NOT_RUN_FAMILIES`."""

NOT_RUN_FAMILIES: Mapping[str, str] = {
    "tasks-": "the tasks extension: not offered",
    "input-required-result-": _TEST_TOOL,
    "sep-2640-skills-": "the skills extension: not offered",
}

_LISTED = re.compile(r"^\s*- (\S+) \[")


class ConformanceUnavailable(RuntimeError):
    """The suite or its Node.js is not installed (``make node`` installs both)."""


@dataclass(frozen=True)
class Outcome:
    """One scenario run at one spec revision: passed or not, and the checks that were not."""

    scenario: str
    revision: str
    passed: bool
    checks: int
    problems: list[str]
    seconds: float


def suite(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """The suite's CLI under its own Node.js 22."""
    if not NODE.exists() or not CLI.exists():
        raise ConformanceUnavailable(
            f"{SUITE_DIR.relative_to(REPO_ROOT)}/node_modules is missing: run `make node`"
        )
    return subprocess.run(
        [str(NODE), str(CLI), *args],
        capture_output=True,
        text=True,
        cwd=SUITE_DIR,
        timeout=timeout,
        check=False,
    )


def listed_server_scenarios() -> list[str]:
    listed = suite("list", "--server")
    if listed.returncode != 0:
        raise RuntimeError(f"conformance list failed: {listed.stderr[-2000:]}")
    return [match.group(1) for line in listed.stdout.splitlines() if (match := _LISTED.match(line))]


def not_run_reason(scenario: str) -> str | None:
    if scenario in NOT_RUN:
        return NOT_RUN[scenario]
    return next(
        (why for prefix, why in NOT_RUN_FAMILIES.items() if scenario.startswith(prefix)), None
    )


def unclassified(scenarios: Sequence[str]) -> list[str]:
    """Scenarios the suite lists that are neither run nor excused."""
    return [name for name in scenarios if name not in RUN and not_run_reason(name) is None]


def run_scenario(url: str, scenario: str, revision: str, results: Path) -> Outcome:
    """``conformance server --scenario S --spec-version R`` against ``url``."""
    output = results / f"{scenario}@{revision}"
    started = time.monotonic()
    completed = suite(
        "server",
        "--url",
        url,
        "--scenario",
        scenario,
        "--spec-version",
        revision,
        "--expected-failures",
        str(EXPECTED_FAILURES),
        "--timeout",
        str(SCENARIO_TIMEOUT_MS),
        "-o",
        str(output),
    )
    seconds = time.monotonic() - started
    checks = [
        check for path in output.rglob("checks.json") for check in json.loads(path.read_text())
    ]
    problems = [
        f"{check['status']} {check['id']}: {(check.get('errorMessage') or '')[:300]}"
        for check in checks
        if check.get("status") not in ("SUCCESS", "INFO", "SKIPPED")
    ]
    passed = completed.returncode == 0 and bool(checks)
    if not passed and not problems:
        problems = [f"exit {completed.returncode}: {(completed.stdout + completed.stderr)[-600:]}"]
    return Outcome(scenario, revision, passed, len(checks), problems, seconds)


def main() -> int:
    scenarios = listed_server_scenarios()
    missing = [name for name in RUN if name not in scenarios]
    new = unclassified(scenarios)
    if missing or new:
        for name in missing:
            print(f"✗ {name}: in RUN but the installed suite does not list it")
        for name in new:
            print(f"✗ {name}: not classified: add it to RUN or NOT_RUN in testkit/conformance.py")
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="conformance-"))
    outcomes: list[Outcome] = []
    logs = []
    started = time.monotonic()
    for name, settings in SERVERS.items():
        env = server_environment(workdir / f"data-{name}", new_secret(), **settings)
        with launch_http_server(env, workdir, log_path=workdir / f"{name}.log") as server:
            for scenario, revisions in RUN.items():
                for revision in revisions:
                    why_not = NOT_FOR_STATELESS.get((scenario, revision))
                    if name == "stateless" and why_not is not None:
                        print(f"- {name}: {scenario} @{revision}: not run, {why_not}")
                        continue
                    results = workdir / "results" / name
                    outcome = run_scenario(server.url, scenario, revision, results)
                    outcomes.append(outcome)
                    mark = "✓" if outcome.passed else "✗"
                    print(
                        f"{mark} {name}: {scenario} @{revision}: {outcome.checks} checks, "
                        f"{outcome.seconds:.1f} s",
                        flush=True,
                    )
                    label = "excused (expected-failures.yml): " if outcome.passed else ""
                    for problem in outcome.problems:
                        print(f"    {label}{problem}")
            logs.append(server.log())
    failed = [outcome for outcome in outcomes if not outcome.passed]
    skipped = len(scenarios) - len(RUN)
    print(
        f"{len(outcomes) - len(failed)}/{len(outcomes)} runs passed "
        f"({len(RUN)} scenarios against {len(SERVERS)} servers; {skipped} not run, see "
        f"README) in {time.monotonic() - started:.0f} s"
    )
    for log in logs:
        if "Traceback" in log:
            print("✗ a server log has a traceback:")
            print(log[-3000:])
            return 1
    if failed:
        print(f"results and the server log: {workdir}")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
