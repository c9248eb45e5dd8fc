"""The REAL released Mahavishnu 0.14 path to session-buddy: tokens minted by mcp-common
0.19.1's ``create_service_token`` and messages signed by Mahavishnu's
``MessageAuthenticator``, driven as ``BodaiComponentMCPClient(token=…)`` drives a server.

Run by ``make interop``, which downloads both wheels from PyPI and puts
``mcp_common/auth`` and ``mahavishnu/session_buddy/auth.py`` on ``PYTHONPATH``
(``testkit.released.extract_released``). ``tests/mcp/test_mahavishnu_client.py`` runs the
same scenario in ``make test`` with ``testkit.released``'s statement of that code; the
last test here holds that statement to the real signer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import anyio
import pytest

from testkit import released as kit
from testkit.clock import frozen_datetime
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.mahavishnu import SCENARIO, Ecosystem, Step
from testkit.server import launch_http_server

core = pytest.importorskip(
    "mcp_common.auth.core", reason="the released mcp-common is not on the path: make interop"
)
permissions = pytest.importorskip("mcp_common.auth.permissions")
signer = pytest.importorskip(
    "mahavishnu.session_buddy.auth", reason="the released Mahavishnu is not on the path"
)

pytestmark = pytest.mark.e2e

SECRET = new_secret()


def mint(audience: str, scopes: Sequence[str]) -> str:
    return str(
        core.create_service_token(
            secret=SECRET,
            issuer="mahavishnu",
            audience=audience,
            permissions=[permissions.Permission(scope) for scope in scopes],
        )
    )


def mahavishnu_signer(secret: str) -> Any:
    """Mahavishnu's own signer, given the one setting it reads."""
    return signer.MessageAuthenticator(SimpleNamespace(cross_project_auth_secret=secret))


def sign(from_project: str, to_project: str, content: Any) -> dict[str, Any]:
    message = mahavishnu_signer(SECRET).create_authenticated_message(
        from_project, to_project, content
    )
    return dict(message)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("server")
    with launch_http_server(server_environment(workdir / "data", SECRET), workdir) as server:
        yield server.url


@pytest.mark.parametrize("step", SCENARIO, ids=lambda step: step.__name__)
def test_the_mahavishnu_client_path(step: Step, url: str, tmp_path: Path) -> None:
    anyio.run(step, Ecosystem(mint, sign), url, make_git_repo(tmp_path / "project"))


def test_the_kit_signs_the_same_message_as_the_real_mahavishnu(secret: str) -> None:
    content = {"action": "checkpoint", "project": "/srv/demo", "n": [1, 2.5, None]}
    frozen = frozen_datetime(datetime(2030, 1, 1, tzinfo=UTC))
    with mock.patch.object(signer, "datetime", frozen):
        real = mahavishnu_signer(secret).create_authenticated_message("mahavishnu", "x", content)
    with mock.patch.object(kit, "datetime", frozen):
        ours = kit.sign_authenticated_message(secret, "mahavishnu", "x", content)
    assert ours == real
