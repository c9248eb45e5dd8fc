"""``verify_envelope``'s answer: whether a signed cross-project envelope is accepted."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from session_buddy.auth.crossproject import EnvelopeCheck, EnvelopeProblem


class EnvelopeVerdict(BaseModel):
    """Accepted (once, by any instance sharing the database), or why not."""

    model_config = ConfigDict(frozen=True)

    valid: bool
    problem: EnvelopeProblem | None = None
    explanation: str
    from_project: str | None = None
    to_project: str | None = None
    content: Any = None

    @classmethod
    def of(cls, check: EnvelopeCheck) -> EnvelopeVerdict:
        message = check.message or {}
        return cls(
            valid=check.accepted,
            problem=check.problem,
            explanation=check.explanation,
            from_project=_text(message.get("from_project")),
            to_project=_text(message.get("to_project")),
            content=message.get("content") if check.accepted else None,
        )

    def summary_text(self) -> str:
        if self.valid:
            return f"Envelope valid: from {self.from_project} to {self.to_project}."
        return f"Envelope rejected: {self.explanation}."


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)
