"""The one test kit shared by ``tests/``, ``stress/`` and ``benchmarks/`` (not shipped).

Each helper is defined once, here, and imported from the repository root (pytest's
``pythonpath``, ``python -m stress``, ``python -m benchmarks``):

* :mod:`testkit.environment` — a child's environment without inherited configuration.
* :mod:`testkit.server` — a free port, ``serve --transport http`` started and waited for.
* :mod:`testkit.processes` — this interpreter run to completion; the checkout's root; a
  process's CPU time and children, whether it is alive, killing and waiting until gone,
  dying with the parent (standard library only).
* :mod:`testkit.mcp` — the official client's transports, JSON-RPC by hand, tool results.
* :mod:`testkit.tokens` — tokens as Mahavishnu mints them, and hand-assembled hostile ones.
* :mod:`testkit.released` — the released mcp-common's service tokens and Mahavishnu's
  signed messages, stated; their real modules unpacked from the wheels (``make interop``).
* :mod:`testkit.mahavishnu` — the released Mahavishnu's authenticated client path, as one
  scenario for ``make test`` and ``make interop``.
* :mod:`testkit.reference` — the reference verdict on a token (PyJWT plus the rules
  written out again, sharing nothing with session_buddy), which production must match.
* :mod:`testkit.mutations` — byte-level token mutations for hypothesis.
* :mod:`testkit.verification` — the product's token verification with the shared-secret
  verifier alone, from keys and a policy.
* :mod:`testkit.git` — real git repositories for setup.
* :mod:`testkit.postgres`, :mod:`testkit.pytest_postgres` — a real PostgreSQL server
  (started as the ``postgres`` user) and its pytest fixtures.
* :mod:`testkit.oidc`, :mod:`testkit.pytest_oidc` — a real OpenID provider (panva's
  certified ``oidc-provider`` under Node, ``testkit/node/oidc``): discovery, JWKS, client
  credentials with resource indicators issuing RFC 9068 JWT or opaque access tokens,
  introspection, the authorization code flow with PKCE through its own login form, dynamic
  registration, live key rotation, restart on the same port; hostile tokens it would never
  issue; the MCP SDK's OAuth handlers played by it; its pytest fixtures.
* :mod:`testkit.pytest_figures` — the ``figures`` fixture: what a test measured, listed at
  the end of the run.
* :mod:`testkit.store` — a database by its location (SQLite path or PostgreSQL URL), and
  its tables read through the driver alone.
* :mod:`testkit.netns` — network namespaces as separate "hosts".
* :mod:`testkit.clock`, :mod:`testkit.concurrency`, :mod:`testkit.figures`,
  :mod:`testkit.cli` — a settable clock, threads (or processes) started together,
  percentiles, the CLI in-process.

Fixtures stay in the ``conftest.py`` files; test modules import helpers from here, never
from each other.
"""
