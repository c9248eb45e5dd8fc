"""Byte-level mutations of a token, drawn by hypothesis and replayable from their recipe.

A recipe is ``(kind, where, value)``: ``where`` is scaled to the token's length when it is
applied, so one recipe strategy serves tokens of any size.
"""

from __future__ import annotations

from hypothesis import strategies as st

MUTATION_KINDS = ["flip", "replace", "insert", "delete", "swap", "pad", "truncate"]
MUTATION_BYTES = b"A_-=.+/ \x00a9"


def mutation_recipes() -> st.SearchStrategy[tuple[str, int, int]]:
    return st.tuples(st.sampled_from(MUTATION_KINDS), st.integers(0, 10**6), st.integers(0, 255))


def mutate(token: str, recipe: tuple[str, int, int]) -> str:
    """Apply one byte-level mutation; ``where`` is scaled to the token's length."""
    kind, where, value = recipe
    data = bytearray(token.encode())
    if not data:
        return MUTATION_BYTES[
            value % len(MUTATION_BYTES) : value % len(MUTATION_BYTES) + 1
        ].decode()
    index = where % len(data)
    if kind == "flip":
        data[index] ^= 1 << (value % 8)
    elif kind == "replace":
        data[index] = MUTATION_BYTES[value % len(MUTATION_BYTES)]
    elif kind == "insert":
        data.insert(index, MUTATION_BYTES[value % len(MUTATION_BYTES)])
    elif kind == "delete":
        del data[index]
    elif kind == "swap":
        parts = token.split(".")
        return ".".join([parts[1], parts[0], *parts[2:]]) if len(parts) > 1 else token[::-1]
    elif kind == "pad":
        return token + "=" * (1 + value % 2)
    else:
        return token[:index]
    return data.decode("utf-8", "replace")
