"""Per-request authentication state: each asyncio task and each thread sees its own."""

from __future__ import annotations

from contextvars import ContextVar

from session_buddy.auth.principal import Principal

last_auth_error: ContextVar[str | None] = ContextVar("session_buddy_last_auth_error", default=None)
current_principal: ContextVar[Principal | None] = ContextVar(
    "session_buddy_current_principal", default=None
)
