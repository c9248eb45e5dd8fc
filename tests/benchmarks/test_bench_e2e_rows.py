"""The e2e part's audit + metrics on/off rows, without starting a server.

``make bench`` measures them (the e2e part is not run here: even quick it starts ten
servers and a PostgreSQL, about 25 s, and its figures need a quiet machine to mean
anything; see ``test_bench_smoke.py``). What can be checked without servers is checked
here: the quiet servers' environment really switches audit and metrics off (as the
product reads it) while the "on" servers run with the defaults; every row is computed
from its two configurations' rounds and carries the issue's target; the stdio row says
that only the audit applies; and the check made after the rounds fails the part when a
side was not what it claims (a quiet server that audited or serves ``/metrics``, an "on"
server that missed calls).
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from benchmarks import e2e
from benchmarks.harness import QUICK
from session_buddy.auth.principal import Principal
from session_buddy.auth.trail import AuditTrail, AuthDecision
from session_buddy.config import load_settings
from session_buddy.mcp.server import metrics_enabled
from session_buddy.store import SqliteDatabase
from session_buddy.store.audit import AuditRepository
from testkit.environment import CONFIGURATION_PREFIXES, inherited_configuration

AUDIT_ROWS = {
    "stdio_on_token_vs_stdio_quiet_token": ("stdio_on_token", "stdio_quiet_token"),
    "http_on_bearer_vs_http_quiet_bearer": ("http_on_bearer", "http_quiet_bearer"),
}


def settings_of(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings a server started with ``env`` reads."""
    for name in inherited_configuration():
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(CONFIGURATION_PREFIXES):
            monkeypatch.setenv(name, value)
    return load_settings()


def setup(tmp_path: Path) -> e2e.Setup:
    return e2e.Setup(tmp_path, tmp_path / "project", "s" * 43, "token", cast(Any, None))


def test_quiet_servers_switch_audit_and_metrics_off_and_the_others_run_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = setup(tmp_path)
    quiet = settings_of(bench.env(tmp_path / "q", auth=True, quiet=True), monkeypatch)
    assert (quiet.audit, metrics_enabled(quiet.metrics, "127.0.0.1")) == (False, False)
    on = settings_of(bench.env(tmp_path / "o", auth=True), monkeypatch)
    assert (on.audit, metrics_enabled(on.metrics, "127.0.0.1")) == (True, True)
    assert on.resolved_secret() == quiet.resolved_secret() == "s" * 43  # both authenticate


def configuration(name: str, seconds: list[float], **fields: Any) -> e2e.Configuration:
    return e2e.Configuration(name, cast(Any, None), {}, seconds=seconds, **fields)


def test_each_audit_row_is_the_median_of_its_per_round_ratios_with_the_issue_target() -> None:
    rounds = QUICK.e2e_rounds
    names = {config for pair in AUDIT_ROWS.values() for config in pair}
    others = {name for row in e2e.COMPARISONS for name in row[:2]} - names
    configs = [  # each round's batch time, different per configuration and per round
        configuration(name, [random.Random(f"{name}{i}").uniform(0.15, 0.3) for i in range(rounds)])
        for name in sorted(names | others)
    ]
    for config in configs:
        config.latencies = [0.003] * 10
        config.recorded = {"audited_calls": 0 if "quiet" in config.name else 120}
    rows = {row.name: row for row in e2e.rows_for(QUICK, configs)}
    by_name = {config.name: config for config in configs}

    for row_name, (on, off) in AUDIT_ROWS.items():
        row = rows[row_name]
        per_round = [b / a for a, b in zip(by_name[on].seconds, by_name[off].seconds, strict=True)]
        assert row.value == pytest.approx(statistics.median(per_round))
        assert row.details["ratio_per_round"] == [round(r, 4) for r in per_round]
        assert (row.op, row.target, row.part) == (">=", 0.97, "e2e")
        assert row.details["recorded"] == {on: by_name[on].recorded, off: by_name[off].recorded}
        assert row.details["note"]
        assert rows[f"{off}_calls_per_s"].details["recorded"] == by_name[off].recorded
    stdio = rows["stdio_on_token_vs_stdio_quiet_token"]
    assert "no metrics" in stdio.what and "only the audit" in stdio.details["note"]
    http = rows["http_on_bearer_vs_http_quiet_bearer"]
    assert "metrics" in http.what and all(
        switch in http.details["note"] for switch in e2e.QUIET_SWITCHES
    )


def audited_server(path: Path, calls: int) -> Path:
    """A data dir whose audit trail holds ``calls`` allowed session_status decisions."""
    path.mkdir(parents=True)
    trail = AuditTrail(AuditRepository(SqliteDatabase(path / "session-buddy.db").open()))
    principal = Principal(user_id="bench-user", authenticated=True)
    for _ in range(calls):
        trail.record(
            AuthDecision.allowed(principal, action=e2e.TOOL, permission=None, source_ip="local")
        )
    trail.flush()
    return path


def check(configs: list[e2e.Configuration], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e2e, "FLUSH_SECONDS", 0.0)
    monkeypatch.setattr(e2e, "RECORD_DEADLINE", 0.3)
    anyio.run(e2e.check_recorders, configs)


def metrics_page(counts: dict[str, int | None], monkeypatch: pytest.MonkeyPatch) -> None:
    async def metered(url: str) -> int | None:
        return counts[url]

    monkeypatch.setattr(e2e, "metered_calls", metered)


def test_the_check_passes_when_each_side_is_what_it_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_page({"on/metrics": 41, "quiet/metrics": None}, monkeypatch)
    on = configuration("http_on_bearer", [], data_dir=audited_server(tmp_path / "on", 41))
    on.metrics_url, on.calls_made = "on/metrics", 41
    quiet = configuration("http_quiet_bearer", [], data_dir=audited_server(tmp_path / "q", 0))
    quiet.metrics_url, quiet.calls_made = "quiet/metrics", 41
    stdio = configuration("stdio_on_token", [], data_dir=audited_server(tmp_path / "s", 7))
    stdio.calls_made = 7
    check([on, quiet, stdio], monkeypatch)
    assert on.recorded == {"audited_calls": 41, "metered_calls": 41}
    assert quiet.recorded == {"audited_calls": 0, "metered_calls": None}
    assert stdio.recorded == {"audited_calls": 7}


@pytest.mark.parametrize(
    ("name", "audited", "metered", "problem"),
    [
        ("http_quiet_bearer", 3, None, "3 calls audited, 0 expected"),  # audit not off
        ("http_quiet_bearer", 0, 10, "no /metrics expected"),  # metrics not off
        ("http_on_bearer", 9, 10, "9 calls audited, 10 expected"),  # a call not audited
        ("http_on_bearer", 10, None, "10 expected"),  # metrics not on
        ("http_on_bearer", 10, 8, "/metrics counted 8 calls"),  # a call not counted
    ],
)
def test_the_check_fails_the_part_when_a_side_is_not_what_it_claims(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    audited: int,
    metered: int | None,
    problem: str,
) -> None:
    metrics_page({"url": metered}, monkeypatch)
    config = configuration(name, [], data_dir=audited_server(tmp_path / "d", audited))
    config.metrics_url, config.calls_made = "url", 10
    with pytest.raises(RuntimeError, match=problem):
        check([config], monkeypatch)
