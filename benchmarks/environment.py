"""A private, authentication-enabled session-buddy configuration for in-process benchmarks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import clean_session_buddy_environment
from testkit.environment import new_secret


@dataclass
class AuthEnvironment:
    secret: str
    root: Path

    def data_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path

    def use_data_dir(self, name: str) -> None:
        """Point the process's configuration at another data dir and rebuild the manager."""
        from session_buddy.mcp.auth import reload_auth_config

        os.environ["SESSION_BUDDY_DATA_DIR"] = str(self.data_dir(name))
        reload_auth_config()


@contextlib.contextmanager
def auth_environment() -> Iterator[AuthEnvironment]:
    """Auth on with a fresh secret, a temporary data dir, a working dir without ``.env``."""
    from session_buddy.mcp.auth import reload_auth_config

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        root = Path(tmp)
        clean_session_buddy_environment()
        env = AuthEnvironment(new_secret(), root)
        os.environ["SESSION_BUDDY_SECRET"] = env.secret
        os.environ["SESSION_BUDDY_DATA_DIR"] = str(env.data_dir("data"))
        os.chdir(root)
        reload_auth_config()
        try:
            yield env
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            reload_auth_config()
