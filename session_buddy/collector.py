"""The garbage collector of a serving process, settled once start-up is done.

A server holds hundreds of thousands of long-lived objects after start-up (the MCP SDK,
pydantic's schemas, SQLAlchemy, the tool registry) and makes only short-lived ones per
request. CPython's collector still walks the long-lived ones at every full collection,
and with eight concurrent callers such a pause stalls each of them: the p99 latency
(``make bench``, part overhead) is several times the p50. :func:`settle` moves what
start-up built out of the collector's sight (``gc.freeze()``); the per-request garbage is
collected as before. Nothing is disabled: reference cycles made while serving are still
found and freed.
"""

from __future__ import annotations

import gc

TUNED = True
"""Whether :func:`settle` acts (``make bench`` measures the server both ways)."""
THRESHOLDS: tuple[int, int, int] | None = None
"""``gc.set_threshold`` values to use after start-up, or None for CPython's own."""


def settle() -> None:
    """Collect start-up's garbage, then freeze what remains (see the module docstring)."""
    if not TUNED:
        return
    gc.collect()
    gc.freeze()
    if THRESHOLDS is not None:
        gc.set_threshold(*THRESHOLDS)
