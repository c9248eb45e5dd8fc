"""``make stress``: the system under attack, load and faults, all at once, on one machine.

Unit tests show each rule; these scenarios show the running system holds when many
things go wrong together. Each scenario starts real ``session-buddy`` processes (HTTP and
stdio servers, the CLI) on a private temporary directory, drives them with the official
MCP client and with raw HTTP, prints its figures and judges them against fixed bars:

1. token fuzzing (hypothesis) through ``validate_token``, the bearer header and the
   ``token`` argument;
2. the attack corpus over the wire;
3. legitimate load while a bad actor floods forged tokens;
4. ``kill -9`` during a burst of checkpoints, then restart on the same data;
5. three servers and the CLI on one data dir, revoking tokens concurrently;
6. storage faults (blocked, immutable, truncated, garbage and read-only databases);
7. secret hygiene: no secret, token or database password in any log, file or result the
   others produced;
8. three HTTP instances, each in its own network namespace, on one PostgreSQL: CLI
   revocations, envelope replays, a flood spread over them, ``kill -9`` of one and a
   PostgreSQL restart;
 9. sixteen sessions idle past the revocation staleness limit, then calling at once, on
    SQLite and on PostgreSQL: no valid token refused;
10. a hostile flood (surrogates, NULs, terminal escapes and huge names as tool names, bad
    bearers, 429s) beside legitimate users, on SQLite and on PostgreSQL: the audit trail
    keeps every legitimate decision, stays bounded, and its writer lives.

Run ``python -m stress`` (``--only N``, ``--json``); the exit status is non-zero when any
bar is not met. Everything is bounded in time and cleans up after itself.
"""
