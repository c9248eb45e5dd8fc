"""The audit trail: every authorization decision of a tool call, as an event.

An :class:`AuthDecision` speaks the released ecosystem's vocabulary (``mcp-common``'s
``AuthAuditEvent``: ``timestamp``, ``service``, ``caller_service``, ``caller_id``,
``action``, ``permission``, ``result`` "allowed"/"denied", ``reason``, ``source_ip``,
``token_id``). ``token_id`` is the verified token's ``jti``, or else the 12-hex
fingerprint of what was presented — never a token or a secret.

Caller text is data: every text field of a decision (the action a request named, the
client address, the identity and ``jti`` of a token) is escaped and bounded when the
decision is made (:func:`~session_buddy.text.shorten`: at most :data:`MAX_TEXT_CHARS`
printable characters — no control character, NUL or lone surrogate). So that a flood grows
a count, not the table, the HTTP layer names a tool the server does not have
:data:`UNKNOWN_ACTION`, and every refusal of a throttled client is recorded with the action
:data:`THROTTLED_ACTION` whatever it asked for: one row per client address and run of
429s (the database folds it while the client keeps being refused within a minute).

Decisions go to :class:`DecisionRecorder` objects: the :class:`AuditTrail` (the database)
and the metrics. The trail never slows the call that made the decision: ``record`` only
appends to a batch in memory; a background thread writes the batch every
:data:`FLUSH_SECONDS` (0.5 s) in one transaction, folding identical decisions of the batch
into one row with a count (and the database folds identical refusals into a recent row).
No row stops the writer: when the database refuses a value of the batch, the rows are
written one by one and only the refused ones are dropped, and counted in
:attr:`AuditTrail.dropped` (``session_buddy_audit_events_dropped``); an outage keeps the
batch for the next round. A crash loses at most the batch not yet written: the decisions
of the last 0.5 s, and never more than :data:`MAX_PENDING` distinct rows. Rows older than
the retention (``SESSION_BUDDY_AUDIT_RETENTION_DAYS``, 30 by default) are purged hourly.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from session_buddy.auth.errors import AuthError, ThrottledError
from session_buddy.auth.principal import Principal
from session_buddy.auth.tokens import presented, token_fingerprint
from session_buddy.store.audit import AuditRecord, AuditRepository
from session_buddy.store.errors import ROW_PROBLEMS, StorageError
from session_buddy.text import shorten

logger = logging.getLogger(__name__)

SERVICE = "session-buddy"
FLUSH_SECONDS = 0.5
MAX_PENDING = 10_000
PURGE_INTERVAL_SECONDS = 3600.0
MAX_TEXT_CHARS = 200
UNKNOWN_ACTION = "unknown"  # a tool or method the server does not have, whatever its name
THROTTLED_ACTION = "*"  # a throttled client's request, whatever it asked for
Result = Literal["allowed", "denied"]


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """One authorization decision of a tool call (or of an HTTP request before any tool)."""

    timestamp: float
    action: str
    result: Result
    permission: str | None = None
    reason: str | None = None
    caller_service: str | None = None
    caller_id: str | None = None
    source_ip: str | None = None
    token_id: str | None = None
    service: str = SERVICE

    @classmethod
    def allowed(
        cls,
        principal: Principal,
        *,
        action: str,
        permission: str | None,
        source_ip: str | None,
        token: object = None,
        now: float | None = None,
    ) -> AuthDecision:
        return cls(
            timestamp=time.time() if now is None else now,
            action=_clean(action),
            result="allowed",
            permission=_clean_or_none(permission),
            caller_service=_clean_or_none(principal.caller_service),
            caller_id=_clean(principal.owner),
            source_ip=_clean_or_none(source_ip),
            token_id=_clean_or_none(_token_id(principal, token, verified=True)),
        )

    @classmethod
    def denied(
        cls,
        error: AuthError,
        *,
        action: str,
        permission: str | None,
        source_ip: str | None,
        token: object = None,
        principal: Principal | None = None,
        now: float | None = None,
    ) -> AuthDecision:
        """A refusal; ``principal`` only when the token verified (e.g. a missing scope).

        A throttled request's ``action`` is recorded as :data:`THROTTLED_ACTION`.
        """
        return cls(
            timestamp=time.time() if now is None else now,
            action=THROTTLED_ACTION if isinstance(error, ThrottledError) else _clean(action),
            result="denied",
            permission=_clean_or_none(permission),
            reason=error.reason,
            caller_service=_clean_or_none(principal.caller_service) if principal else None,
            caller_id=_clean(principal.owner) if principal else None,
            source_ip=_clean_or_none(source_ip),
            token_id=_clean_or_none(_token_id(principal, token)),
        )

    def _key(self) -> tuple[Any, ...]:
        return (
            self.result,
            self.action,
            self.permission,
            self.reason,
            self.source_ip,
            self.caller_service,
            self.caller_id,
            self.token_id if self.result == "allowed" else None,
        )


def _clean(text: str) -> str:
    """Caller text as a row may hold it: printable and at most :data:`MAX_TEXT_CHARS`."""
    return shorten(text, MAX_TEXT_CHARS)


def _clean_or_none(text: str | None) -> str | None:
    return None if text is None else shorten(text, MAX_TEXT_CHARS)


def _token_id(principal: Principal | None, token: object, *, verified: bool = False) -> str | None:
    """The verified token's ``jti``, else the fingerprint of what was presented.

    ``verified``: ``token`` was accepted, so it is one of the few a server keeps seeing
    (as many as the verifier caches, not a flood's): its fingerprint is remembered.
    """
    jti = principal.claims.get("jti") if principal is not None else None
    if isinstance(jti, str) and jti:
        return jti
    if not presented(token):
        return None
    if verified and isinstance(token, str):
        return _verified_fingerprint(token)
    return token_fingerprint(token)


@functools.lru_cache(maxsize=1024)
def _verified_fingerprint(token: str) -> str:
    """:func:`token_fingerprint` of an accepted token, without a SHA-256 per call."""
    return token_fingerprint(token)


class DecisionRecorder(Protocol):
    """Receives every decision; must return quickly (it runs on the request path)."""

    def record(self, decision: AuthDecision) -> None: ...


class Recorders:
    """Several recorders as one (the audit trail, and the metrics of an HTTP server)."""

    def __init__(self, recorders: Iterable[DecisionRecorder] = ()) -> None:
        self._recorders: tuple[DecisionRecorder, ...] = tuple(recorders)

    def add(self, recorder: DecisionRecorder) -> None:
        self._recorders = (*self._recorders, recorder)

    @property
    def listening(self) -> bool:
        """Whether any recorder listens. With none (audit and metrics off, or library use)
        a caller builds no decision at all — and the HTTP layer reads no request body to
        name a refusal's action."""
        return bool(self._recorders)

    def record(self, decision: AuthDecision) -> None:
        for recorder in self._recorders:
            recorder.record(decision)


class _Run:
    """Identical decisions of one batch: how many, first and last seen, first token id."""

    __slots__ = ("count", "first", "last")

    def __init__(self, decision: AuthDecision) -> None:
        self.first = decision
        self.last = decision.timestamp
        self.count = 0


class AuditTrail:
    """Decisions batched in memory and written to the database by a background thread."""

    def __init__(
        self,
        repository: AuditRepository,
        *,
        retention_days: float = 30,
        flush_seconds: float = FLUSH_SECONDS,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._retention = retention_days * 86_400
        self._flush_seconds = flush_seconds
        self._max_pending = max_pending
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[Any, ...], _Run] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_purge = 0.0
        self._failing = False
        self.dropped = 0
        self.written = 0

    def record(self, decision: AuthDecision) -> None:
        key = decision._key()
        with self._lock:
            run = self._pending.get(key)
            if run is None:
                if len(self._pending) >= self._max_pending:
                    self.dropped += 1
                    return
                run = self._pending[key] = _Run(decision)
            run.count += 1
            run.last = max(run.last, decision.timestamp)

    def start(self) -> None:
        """Write batches in the background until :meth:`close`."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="session-buddy-audit", daemon=True
            )
        self._thread.start()

    def close(self) -> None:
        """Stop the writer and write what is pending (a clean shutdown loses nothing)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5.0)
            self._thread = None
        try:
            self.flush()
        except StorageError as exc:
            with self._lock:
                lost = sum(run.count for run in self._pending.values())
                self._pending = {}
                self.dropped += lost
            logger.warning("audit trail: %d decisions not written at shutdown: %s", lost, exc)

    @property
    def alive(self) -> bool:
        """Whether the background writer runs (between :meth:`start` and :meth:`close`)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(run.count for run in self._pending.values())

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            try:
                self.flush()
            except StorageError as exc:
                if not self._failing:
                    logger.warning("audit trail cannot be written (keeping the batch): %s", exc)
                self._failing = True
            except Exception:  # a bug, not a row (flush copes with those): log, carry on
                logger.exception("audit trail: unexpected error while writing; carrying on")
            else:
                if self._failing:
                    logger.info("audit trail written again")
                self._failing = False

    def flush(self) -> None:
        """Write the pending batch now; purge old rows once an hour.

        The batch is one transaction. When the database refuses a value in it (its rows
        are at fault, not the database), every row is written on its own and only the
        ones refused are dropped and counted in :attr:`dropped`. Raises
        :class:`StorageError` when the database cannot be written at all (an outage),
        keeping what is not written yet (within the bound) for the next round.
        """
        with self._lock:
            runs, self._pending = self._pending, {}
        batch = list(runs.items())
        try:
            self._repository.write([_record(run) for _, run in batch])
        except Exception as exc:
            if _is_outage(exc):
                self._keep(batch)
                raise
            self._write_each(batch)
        else:
            self.written += sum(run.count for _, run in batch)
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL_SECONDS
            self._repository.purge(now - self._retention)

    def _write_each(self, batch: list[tuple[tuple[Any, ...], _Run]]) -> None:
        """Write ``batch`` row by row, dropping (and counting) the rows refused."""
        refused = 0
        problem = ""
        for index, (_, run) in enumerate(batch):
            try:
                self._repository.write([_record(run)])
            except Exception as exc:
                if _is_outage(exc):
                    self._keep(batch[index:])
                    raise
                refused += run.count
                problem = exc.kind if isinstance(exc, StorageError) else type(exc).__name__
                with self._lock:
                    self.dropped += run.count
            else:
                self.written += run.count
        if refused:
            logger.warning(
                "audit trail: dropped %d decisions the database refused to store (%s)",
                refused,
                problem,
            )

    def _keep(self, batch: list[tuple[tuple[Any, ...], _Run]]) -> None:
        """Put unwritten runs back (within the bound) for the next round."""
        with self._lock:
            for key, run in batch:
                newer = self._pending.get(key)
                if newer is not None:  # the same decision again since: one run, first kept
                    run.count += newer.count
                    run.last = max(run.last, newer.last)
                    self._pending[key] = run
                elif len(self._pending) < self._max_pending:
                    self._pending[key] = run
                else:
                    self.dropped += run.count


def _is_outage(exc: Exception) -> bool:
    """The database cannot be written at all (not: it refused one of the values)."""
    return isinstance(exc, StorageError) and exc.kind not in ROW_PROBLEMS


def _record(run: _Run) -> AuditRecord:
    first = run.first
    return AuditRecord(
        first_seen=first.timestamp,
        last_seen=run.last,
        count=run.count,
        service=first.service,
        caller_service=first.caller_service,
        caller_id=first.caller_id,
        action=first.action,
        permission=first.permission,
        result=first.result,
        reason=first.reason,
        source_ip=first.source_ip,
        token_id=first.token_id,
    )


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def as_event(record: AuditRecord) -> dict[str, Any]:
    """A stored row as one JSON object: ``mcp-common``'s ``AuthAuditEvent.to_dict()``
    fields (``timestamp`` is when it was first seen), plus ``count`` and ``last_seen``."""
    return {
        "event": "auth_audit",
        "timestamp": _iso(record.first_seen),
        "service": record.service,
        "caller_service": record.caller_service,
        "caller_id": record.caller_id,
        "action": record.action,
        "permission": record.permission,
        "result": record.result,
        "reason": record.reason,
        "source_ip": record.source_ip,
        "token_id": record.token_id,
        "count": record.count,
        "last_seen": _iso(record.last_seen),
    }
