"""The wording every layer shares: `session_buddy.text`."""

from __future__ import annotations

import pytest

from session_buddy.text import format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59.9, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3900, "1 h 5 min"),
        (26 * 3600 + 60, "26 h 1 min"),
        (-5, "0 s"),
    ],
)
def test_durations_read_as_hours_and_minutes(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
