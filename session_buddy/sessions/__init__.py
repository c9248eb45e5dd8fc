"""Coding sessions: lifecycle, ownership and project detection, independent of MCP."""

from __future__ import annotations

from session_buddy.sessions.errors import (
    InputTooLargeError,
    InvalidWorkingDirectoryError,
    NoActiveSessionError,
    SessionError,
    SessionNotFoundError,
)
from session_buddy.sessions.models import (
    CheckpointInfo,
    GitSnapshot,
    HandOff,
    ProjectMarkers,
    ProjectSnapshot,
    SessionDetail,
    SessionInfo,
    SessionList,
    SessionStatus,
)
from session_buddy.sessions.service import SessionService

__all__ = [
    "CheckpointInfo",
    "GitSnapshot",
    "HandOff",
    "InputTooLargeError",
    "InvalidWorkingDirectoryError",
    "NoActiveSessionError",
    "ProjectMarkers",
    "ProjectSnapshot",
    "SessionDetail",
    "SessionError",
    "SessionInfo",
    "SessionList",
    "SessionNotFoundError",
    "SessionService",
    "SessionStatus",
]
