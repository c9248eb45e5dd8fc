"""The conformance plan (``make conformance``) is consistent: nothing both run and excused,
and a scenario the suite adds is caught until someone classifies it."""

from __future__ import annotations

from testkit.conformance import (
    NOT_FOR_STATELESS,
    NOT_RUN,
    RUN,
    SERVERS,
    not_run_reason,
    unclassified,
)


def test_no_scenario_is_both_run_and_not_run() -> None:
    assert not [name for name in RUN if not_run_reason(name) is not None]


def test_every_scenario_not_run_says_why() -> None:
    assert all(reason.strip() for reason in NOT_RUN.values())


def test_a_new_scenario_is_unclassified_until_listed() -> None:
    assert unclassified(["ping", "tasks-lifecycle", "brand-new-scenario"]) == ["brand-new-scenario"]


def test_every_run_kept_from_the_stateless_server_is_a_run_and_says_why() -> None:
    for (scenario, revision), reason in NOT_FOR_STATELESS.items():
        assert revision in RUN[scenario]
        assert reason.strip()
    assert set(SERVERS) == {"sessions", "stateless"}
