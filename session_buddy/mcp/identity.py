"""``whoami``'s answer: whether authentication is on, and who the verified caller is."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from session_buddy.auth.principal import Principal
from session_buddy.text import iso_time


class Identity(BaseModel):
    """The caller as the server sees it. Built from the verified token; never contains it."""

    model_config = ConfigDict(frozen=True)

    auth_enabled: bool
    authenticated: bool
    user_id: str
    issuer: str | None = None
    role: str | None = None
    expires_at: str | None = None
    privileged: bool = False
    scopes: list[str] | None = None
    """What the token grants (sorted), or None when it carries no scope claim."""

    @classmethod
    def of(cls, principal: Principal, *, auth_enabled: bool) -> Identity:
        return cls(
            auth_enabled=auth_enabled,
            authenticated=principal.authenticated,
            user_id=principal.user_id,
            issuer=principal.issuer,
            role=principal.role,
            expires_at=None if principal.expires_at is None else iso_time(principal.expires_at),
            privileged=principal.is_privileged,
            scopes=None if principal.scopes is None else sorted(principal.scopes),
        )

    def summary_text(self) -> str:
        if not self.auth_enabled:
            return (
                "Authentication is disabled (SESSION_BUDDY_SECRET not set); "
                f"calls run as {self.user_id}."
            )
        if not self.authenticated:
            return (
                "Authentication is enabled, but this call carried no token; "
                f"it ran as {self.user_id}."
            )
        details = [f"issuer {self.issuer or '(none)'}", f"role {self.role or '(none)'}"]
        if self.scopes is None:
            details.append("no scope claim")
        else:
            details.append(f"scopes {' '.join(self.scopes) or '(none)'}")
        if self.expires_at:
            details.append(f"token expires {self.expires_at}")
        scope = "any user's sessions" if self.privileged else "only their own sessions"
        return f"Authenticated as {self.user_id} ({', '.join(details)}); may act on {scope}."
