"""Everything one session-buddy process needs, built once from one :class:`Settings`.

An edge — ``session-buddy serve``, a CLI command, the client's own server, the original
design note's module-level functions — reads the configuration once
(:func:`session_buddy.config.load_settings`) and calls :meth:`Runtime.build`. The parts
are then handed down: the MCP tools and the HTTP middleware get the manager, the
throttle and the session service from here, so sessions and revocations always live in
the same database and no lower layer reads the environment again.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

from session_buddy.auth.config import AuthConfig
from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.auth.errors import AUTH_DISABLED_WARNING, SHARED_SECRET_WARNING
from session_buddy.auth.failure_log import AuthFailureLog
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.revocation import (
    RevocationStore,
    forget_shared_revocation_stores,
    release_revocation_store,
    shared_revocation_store,
)
from session_buddy.auth.throttle import AuthFailureThrottle
from session_buddy.auth.trail import AuditTrail, Recorders
from session_buddy.auth.verification import TokenVerification
from session_buddy.config import Settings
from session_buddy.sessions.service import SessionService
from session_buddy.store import Database, close_shared_databases, database_for, release_database
from session_buddy.store.audit import AuditRepository
from session_buddy.store.failures import FailureRepository
from session_buddy.store.nonces import NonceRepository


@dataclass(frozen=True, eq=False)
class Runtime:
    """The composed process: configuration, database, authentication, sessions.

    Building it touches no database; :meth:`open` opens (and migrates) it and raises
    :class:`~session_buddy.store.StorageError` when it cannot be used. A malformed
    database URL raises that already here.
    """

    settings: Settings
    database: Database
    auth: AuthConfig
    revocations: RevocationStore
    verification: TokenVerification
    failure_log: AuthFailureLog
    manager: JWTManager
    throttle: AuthFailureThrottle
    decisions: Recorders
    audit: AuditTrail
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def build(cls, settings: Settings, *, resource_url: str | None = None) -> Runtime:
        """``resource_url``: this server's resource URI where it serves
        (:meth:`Settings.effective_resource_url` for the bound address); None: as it would
        be on the default loopback address (a CLI command)."""
        database = database_for(settings, hold=True)  # held until close()
        auth = AuthConfig(settings, resource_url=resource_url)
        revocations = shared_revocation_store(database, hold=True)  # opened by the first check
        # The verifiers (chosen by issuer: auth.verifiers.configured_verifiers), behind the
        # shared cache and revocation check; the manager and the HTTP middleware get it.
        verification = TokenVerification.for_config(auth, revocations)
        failure_log = AuthFailureLog()
        decisions = Recorders()  # the audit trail joins when serving starts
        audit = AuditTrail(AuditRepository(database), retention_days=settings.audit_retention_days)
        manager = JWTManager(auth, verification, failure_log=failure_log, decisions=decisions)
        return cls(
            settings=settings,
            database=database,
            auth=auth,
            revocations=revocations,
            verification=verification,
            failure_log=failure_log,
            manager=manager,
            throttle=AuthFailureThrottle(),
            decisions=decisions,
            audit=audit,
        )

    @property
    def auth_warning(self) -> str | None:
        """The warning this process's authentication deserves, once: none configured at
        all, or only the secret every service of the ecosystem shares."""
        if not self.manager.enabled:
            return AUTH_DISABLED_WARNING
        if self.auth.secret_source == "shared":
            return SHARED_SECRET_WARNING
        return None

    @functools.cached_property
    def envelopes(self) -> CrossProjectAuth:
        """Envelope signatures with the configured secret, for envelopes addressed to this
        server (``to_project`` its audience, ``SESSION_BUDDY_AUDIENCE``); replays refused
        across every process on this database. Raises ``SecretConfigError`` when there is
        no usable secret."""
        return CrossProjectAuth(
            self.auth.secret,
            nonces=NonceRepository(self.database),
            recipient=self.settings.audience,
        )

    def share_throttle(self) -> None:
        """Count refused credentials together with every instance on this database."""
        self.throttle.share(FailureRepository(self.database))

    @functools.cached_property
    def sessions(self) -> SessionService:
        """The session service on this runtime's database."""
        return SessionService(self.database, allowed_roots=self.settings.allowed_roots)

    def open(self) -> Runtime:
        """Open the database now (startup checks); returns ``self``."""
        self.database.open()
        return self

    def start_serving(self, *, http: bool) -> None:
        """The background work of a server: the audit writer, and (HTTP) the shared
        failure throttle. Decisions are only ever written while a server runs."""
        if self.settings.audit:
            self.decisions.add(self.audit)
            self.audit.start()
        if http:
            self.share_throttle()

    def stop_serving(self) -> None:
        """Stop the background work, writing the audit batch still pending."""
        self.throttle.stop_sharing()
        self.audit.close()

    def close(self) -> None:
        """Let go of the shared database and revocation store this runtime holds (they
        stay shared with whoever else uses them; :func:`forget_shared_state` closes them
        once nobody holds them). Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        release_revocation_store(self.database)
        release_database(self.database)


def forget_shared_state() -> None:
    """Close and forget the shared databases and revocation stores no runtime holds.

    For tests and for processes that switch data dirs: new runtimes get new parts. A part
    a runtime still holds is neither closed nor forgotten (that runtime keeps working and
    keeps sharing); an unheld part someone still uses reopens on its next use.
    """
    forget_shared_revocation_stores()
    close_shared_databases()
