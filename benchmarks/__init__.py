"""Side-by-side benchmarks of session-buddy's authentication (``make bench``).

Five parts, each reported as ratios to a baseline measured in the same run (absolute
times drift on a shared machine; ratios of interleaved measurements much less):

* ``micro`` — ``validate_token`` on one reused token, on distinct tokens and on forged
  tokens, against raw PyJWT ``jwt.decode`` and joserfc in the same process.
* ``e2e`` — MCP tool calls per second (``session_status``) over stdio and HTTP, auth off
  vs on, against a server built with the SDK's own ``AuthSettings`` + PyJWT verifier, and
  on PostgreSQL vs SQLite.
* ``scale`` — validation with 100,000 revocations vs none, cross-process revocation
  latency, and RSS growth over 1,000,000 distinct tokens.
* ``propagation`` — how soon other HTTP instances refuse a revoked token: PostgreSQL
  (pushed by ``NOTIFY``) vs SQLite (polled every 0.5 s).
* ``growth`` — tools, CLI listings and start-up on a database holding a team's months of
  history (10⁵ sessions, 10⁶ checkpoints, 10⁶ audit rows, 10⁵ revocations) against one
  without, on SQLite and PostgreSQL.

The PostgreSQL server is the test kit's (:mod:`benchmarks.postgres`), started by the run.

Run ``python -m benchmarks --help``. Timing assertions live here only, never in
``make test``.
"""
