"""Pytest fixtures for a real OpenID provider (register with ``pytest_plugins``).

- ``openid_provider`` (session): one :class:`~testkit.oidc.OpenIDProvider` for the whole run,
  with :func:`~testkit.oidc.standard_clients`, any resource URI accepted, RS256 and ES256
  keys. Shared: tests may add clients or resources, never rotate, stop or reconfigure it.
- ``make_openid_provider`` (function): ``make_openid_provider(**options)`` starts a
  provider of the test's own (in its tmp dir) to rotate, stop, restart or misconfigure;
  every one it started is stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.oidc import OpenIDProvider, standard_clients


@pytest.fixture(scope="session")
def openid_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIDProvider]:
    with OpenIDProvider(tmp_path_factory.mktemp("oidc"), clients=standard_clients()) as op:
        yield op


@pytest.fixture
def make_openid_provider(tmp_path: Path) -> Iterator[Callable[..., OpenIDProvider]]:
    started: list[OpenIDProvider] = []

    def make(**options: Any) -> OpenIDProvider:
        options.setdefault("name", f"op{len(started) + 1}")
        options.setdefault("clients", standard_clients())
        provider = OpenIDProvider(tmp_path, **options)
        started.append(provider)
        return provider.start()

    yield make
    for provider in started:
        provider.stop()
