"""What a test, scenario or benchmark process sees: no configuration it did not set itself.

A developer's shell may carry ``SESSION_BUDDY_*``, ``MAHAVISHNU_*`` or ``BODAI_*`` settings;
none of them may leak into a child process or an in-process configuration under test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

CONFIGURATION_PREFIXES = ("SESSION_BUDDY_", "MAHAVISHNU_", "BODAI_")


def inherited_configuration(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The names of the session-buddy and Mahavishnu settings in ``environ``."""
    return [name for name in environ if name.startswith(CONFIGURATION_PREFIXES)]


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without inherited configuration, plus ``settings``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(CONFIGURATION_PREFIXES)
    }
    env.update(settings)
    return env


def server_environment(
    data_dir: Path, secret: str | None = None, **settings: str
) -> dict[str, str]:
    """A server's environment: its data dir, the secret (``None``: auth off), ``settings``."""
    if secret is not None:
        settings["SESSION_BUDDY_SECRET"] = secret
    return clean_environment(SESSION_BUDDY_DATA_DIR=str(data_dir), **settings)


def new_secret() -> str:
    """A fresh secret of the recommended strength (43 characters)."""
    return secrets.token_urlsafe(32)
