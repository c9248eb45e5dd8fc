"""The audit trail in the database: decisions written in batches, read by the CLI. Both
backends.

A row is one decision, or a run of identical ones: ``count`` of them between
``first_seen`` and ``last_seen``. Identical refusals (same action, permission, reason,
client and caller) within :data:`AGGREGATION_SECONDS` of the row's last one are added to
it, so a flood of bad tokens grows a row's count, not the table.
"""

# SQL here is assembled only from constants and dialect keywords; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from session_buddy.store.base import Database, Row, where_clause

AGGREGATION_SECONDS = 60.0
_COLUMNS = (
    "first_seen, last_seen, count, service, caller_service, caller_id, action, permission, "
    "result, reason, source_ip, token_id"
)
# The columns that make two refusals "identical" for aggregation.
_DENIAL_KEY = ("action", "permission", "reason", "source_ip", "caller_service", "caller_id")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One decision (``count`` 1) or a run of identical ones."""

    first_seen: float
    last_seen: float
    count: int
    service: str
    caller_service: str | None
    caller_id: str | None
    action: str
    permission: str | None
    result: str  # "allowed" or "denied"
    reason: str | None
    source_ip: str | None
    token_id: str | None

    @classmethod
    def from_row(cls, row: Row) -> AuditRecord:
        return cls(
            first_seen=float(row[0]),
            last_seen=float(row[1]),
            count=int(row[2]),
            service=str(row[3]),
            caller_service=_text(row[4]),
            caller_id=_text(row[5]),
            action=str(row[6]),
            permission=_text(row[7]),
            result=str(row[8]),
            reason=_text(row[9]),
            source_ip=_text(row[10]),
            token_id=_text(row[11]),
        )

    def values(self) -> tuple[Any, ...]:
        return (
            self.first_seen,
            self.last_seen,
            self.count,
            self.service,
            self.caller_service,
            self.caller_id,
            self.action,
            self.permission,
            self.result,
            self.reason,
            self.source_ip,
            self.token_id,
        )


class AuditRepository:
    """Reads and writes ``audit_events`` of one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def write(self, records: Sequence[AuditRecord]) -> None:
        """Store ``records`` in one transaction, folding refusals into recent identical rows."""
        if not records:
            return
        same = self._db.dialect.same
        greatest = self._db.dialect.greatest
        match = " AND ".join(f"{column} {same} ?" for column in _DENIAL_KEY)
        with self._db.transaction() as conn:
            for record in records:
                if record.result == "denied":
                    folded = conn.execute(
                        f"UPDATE audit_events SET count = count + ?, "
                        f"last_seen = {greatest}(last_seen, ?) WHERE id = ("
                        f"SELECT id FROM audit_events WHERE result = 'denied' AND {match} "
                        "AND last_seen >= ? ORDER BY last_seen DESC LIMIT 1)",
                        (
                            record.count,
                            record.last_seen,
                            record.action,
                            record.permission,
                            record.reason,
                            record.source_ip,
                            record.caller_service,
                            record.caller_id,
                            record.first_seen - AGGREGATION_SECONDS,
                        ),
                    ).rowcount
                    if folded:
                        continue
                conn.execute(
                    f"INSERT INTO audit_events({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    record.values(),
                )

    def search(
        self,
        *,
        since: float | None = None,
        user: str | None = None,
        tool: str | None = None,
        denied_only: bool = False,
        limit: int = 50,
        newest_first: bool = True,
    ) -> list[AuditRecord]:
        """Rows matching every filter given (``since``: last seen at or after it)."""
        where, params = where_clause(
            ("last_seen >= ?", since),
            ("caller_id = ?", user),
            ("action = ?", tool),
            ("result = ?", "denied" if denied_only else None),
        )
        order = "DESC" if newest_first else "ASC"
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM audit_events {where} "
            f"ORDER BY last_seen {order}, id {order} LIMIT ?",
            (*params, limit),
        )
        return [AuditRecord.from_row(row) for row in rows]

    def purge(self, before: float) -> int:
        """Delete rows last seen before ``before``; returns how many."""
        with self._db.transaction() as conn:
            return int(
                conn.execute("DELETE FROM audit_events WHERE last_seen < ?", (before,)).rowcount
            )

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM audit_events")[0][0])


def _text(value: object) -> str | None:
    return None if value is None else str(value)
