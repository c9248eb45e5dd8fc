"""Figures a test measures (latencies, slack), listed together at the end of the run.

Register with ``pytest_plugins``. A test asks for the ``figures`` fixture and calls
``figures.record("outage detected (s)", 4.93)``; the terminal summary then has a
"figures measured" section with every figure and the test that measured it, and each is
also a user property of its test (what ``--junitxml`` writes). Tests assert the bounds the
product states; the figures themselves are for people comparing runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

_RECORDED = pytest.StashKey[list[tuple[str, str, float]]]()


@dataclass
class Figures:
    """Where one test records what it measured."""

    node: pytest.Item
    recorded: list[tuple[str, str, float]]

    def record(self, name: str, value: float) -> None:
        self.recorded.append((self.node.nodeid, name, value))
        self.node.user_properties.append((name, value))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    recorded = request.config.stash.setdefault(_RECORDED, [])
    assert isinstance(request.node, pytest.Item)
    return Figures(request.node, recorded)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    recorded = terminalreporter.config.stash.get(_RECORDED, [])
    if not recorded:
        return
    terminalreporter.section("figures measured")
    width = max(len(name) for _, name, _ in recorded)
    for nodeid, name, value in recorded:
        terminalreporter.write_line(f"{name:<{width}}  {value:>9.3f}  {nodeid}")
