"""The released Mahavishnu's authenticated path (``BodaiComponentMCPClient(token=…)``) against
a real server, with tokens and signed messages as ``testkit.released`` states them.

``make interop`` runs the same scenario (``testkit.mahavishnu``) with the released wheels'
own ``create_service_token`` and ``MessageAuthenticator``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from testkit import released
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.mahavishnu import SCENARIO, Ecosystem, Step
from testkit.server import launch_http_server

pytestmark = pytest.mark.e2e

SECRET = new_secret()


def mint(audience: str, scopes: Sequence[str]) -> str:
    return released.create_service_token(
        secret=SECRET, issuer="mahavishnu", audience=audience, permissions=scopes
    )


def sign(from_project: str, to_project: str, content: Any) -> dict[str, Any]:
    return released.sign_authenticated_message(SECRET, from_project, to_project, content)


@pytest.fixture(scope="module")
def url(workdir: Path) -> Iterator[str]:
    with launch_http_server(server_environment(workdir / "data", SECRET), workdir) as server:
        yield server.url


@pytest.mark.parametrize("step", SCENARIO, ids=lambda step: step.__name__)
def test_the_mahavishnu_client_path(step: Step, url: str, tmp_path: Path) -> None:
    anyio.run(step, Ecosystem(mint, sign), url, make_git_repo(tmp_path / "project"))
