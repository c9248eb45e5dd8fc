"""Tokens for the scenarios: valid ones, the attack corpus, and hypothesis mutations.

Valid tokens are the kit's (:func:`testkit.tokens.mint`: PyJWT, HS256, as Mahavishnu
mints them). Hostile tokens that PyJWT refuses to produce (odd headers, ``alg: none``,
another HMAC) are put together with :func:`testkit.tokens.assemble`.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from hypothesis import strategies as st

from testkit.environment import new_secret
from testkit.tokens import DROP, HMAC_HASHES, RawJson, assemble, b64, b64json, claims, mint

INVALID = "Invalid token"
EXPIRED = "Token has expired"
REQUIRED = "Token required"
REVOKED = "Token has been revoked"


@dataclass(frozen=True)
class Attack:
    """A hostile token and the public message it must be rejected with."""

    name: str
    token: str
    message: str
    oversize: bool = False


def attack_corpus(secret: str) -> list[Attack]:
    """The scenario-2 corpus: each one is refused by a correct server."""
    key = secret.encode()
    good_header = {"alg": "HS256", "typ": "JWT"}
    base = claims("attacker")
    now = int(time.time())
    attacks: list[Attack] = []
    for alg in ("none", "None", "NONE", "nOnE"):
        attacks.append(
            Attack(f"alg={alg}, no signature", assemble({"alg": alg}, base, None), INVALID)
        )
        signed = assemble({"alg": alg, "typ": "JWT"}, base, key)
        attacks.append(Attack(f"alg={alg}, HS256 signature", signed, INVALID))
    attacks += [
        Attack("HS384 with the secret", jwt.encode(base, secret, algorithm="HS384"), INVALID),
        Attack("HS512 with the secret", jwt.encode(base, secret, algorithm="HS512"), INVALID),
        Attack(
            "HS256 header, HS384 signature",
            assemble(good_header, base, key, alg="HS384"),
            INVALID,
        ),
        Attack("wrong secret", mint(new_secret(), "attacker"), INVALID),
    ]
    valid = mint(secret, "attacker")
    head_payload = valid.rsplit(".", 1)[0]
    attacks += [
        Attack("stripped signature (trailing dot)", f"{head_payload}.", INVALID),
        Attack("stripped signature (two segments)", head_payload, INVALID),
        Attack("expired", mint(secret, "attacker", exp=now - 3600, iat=now - 7200), EXPIRED),
        Attack("future nbf", mint(secret, "attacker", nbf=now + 3600), INVALID),
        Attack("future iat", mint(secret, "attacker", iat=now + 3600), INVALID),
        Attack("missing identity", mint(secret, DROP), INVALID),
        Attack("empty user_id", mint(secret, ""), INVALID),
        Attack("blank user_id", mint(secret, "   "), INVALID),
        Attack("null user_id", mint(secret, None), INVALID),
        Attack("type=refresh", mint(secret, "attacker", type="refresh"), INVALID),
        Attack(
            "crit header",
            assemble({"alg": "HS256", "typ": "JWT", "crit": ["exp"]}, base, key),
            INVALID,
        ),
        Attack(
            "oversize 9 KiB",
            mint(secret, "attacker", padding="p" * (9 * 1024)),
            INVALID,
            oversize=True,
        ),
        Attack(
            "oversize 1 MiB",
            mint(secret, "attacker", padding="p" * (1024 * 1024)),
            INVALID,
            oversize=True,
        ),
    ]
    return attacks


def forged_tokens(secret: str, count: int) -> list[str]:
    """``count`` distinct forgeries (wrong secret, alg none, resigned claims…) for a flood."""
    key = secret.encode()
    wrong = new_secret()
    makers = [
        lambda i: mint(wrong, f"flood-{i}"),
        lambda i: assemble({"alg": "none"}, claims(f"flood-{i}", role="admin"), None),
        lambda i: mint(secret, f"flood-{i}", exp=int(time.time()) - 60),
        lambda i: assemble({"alg": "HS512"}, claims(f"flood-{i}"), key, alg="HS512"),
        lambda i: mint(secret, f"flood-{i}").rsplit(".", 1)[0] + "." + b64(secrets.token_bytes(32)),
        lambda i: mint(secret, f"flood-{i}", type="refresh"),
    ]
    return [makers[i % len(makers)](i) for i in range(count)]


# -- hypothesis mutations ------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """A mutation of a valid token; ``must_reject`` unless it may legitimately verify."""

    value: object
    kind: str
    base: str
    must_reject: bool


def canonical(token: str) -> str:
    """What the server may legitimately read the same as a token: the token, stripped,
    with one leading ``Bearer `` removed (whitespace and that prefix carry no meaning)."""
    text = token.strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].lstrip()
    return text


def _text(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(
        st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\x00\t\n =+/.\"'\\"),
        max_size=max_size,
    )


def _payload(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _nested(depth: int, leaf: str = "1") -> RawJson:
    """``depth`` levels of alternating objects and arrays around ``leaf``, as JSON text."""
    opens = "".join('{"n":' if level % 2 == 0 else "[" for level in range(depth))
    closes = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return RawJson(opens + leaf + closes)


_HEADER_VARIANTS: list[Any] = [
    {"alg": "none"},
    {"alg": "None", "typ": "JWT"},
    {"alg": "NONE"},
    {"alg": "nOnE"},
    {"alg": "HS384"},
    {"alg": "HS512"},
    {"alg": "RS256"},
    {"alg": "ES256"},
    {"alg": "hs256"},
    {"alg": "HS256 "},
    {"alg": ""},
    {"alg": None},
    {"alg": ["HS256"]},
    {"typ": "JWT"},
    {"alg": "HS256", "crit": ["exp"]},
    {"alg": "HS256", "crit": []},
    {"alg": "HS256", "b64": False},
    {"alg": "HS256", "kid": 7},
    {"alg": "HS256", "kid": {"path": "/dev/null"}},
    ["HS256"],
    "HS256",
    None,
    {"alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}},
    {"alg": "HS256", "jku": "http://127.0.0.1:9/keys", "kid": "attacker"},
]
# Header variants that name their own key: the attack is to sign with that key.
_EMBEDDED_KEY = base64.urlsafe_b64decode("AAAA")

# Claim patches that make any payload invalid even when signed with the real secret.
_INVALIDATING_PATCHES: list[dict[str, Any]] = [
    {"type": "refresh"},
    {"type": "Access"},
    {"type": None},
    {"exp": 1},
    {"exp": "9999999999"},
    {"exp": True},
    {"exp": None},
    {"exp": 1e400},
    {"exp": [9999999999]},
    {"nbf": 9_999_999_999},
    {"iat": 9_999_999_999},
    {"iat": "now"},
    {"user_id": ""},
    {"user_id": "   "},
    {"user_id": None, "sub": None},
    {"user_id": 42},
    {"user_id": ["admin"]},
    {"user_id": {"id": "admin"}},
    {"user_id": "x" * 300},
    {"aud": "someone"},
    {"sub": 5},
    {"jti": 5},
]


class FuzzSeed:
    """Valid tokens and the secret that signed them; its repr shows neither."""

    def __init__(self, bases: list[str], secret: str) -> None:
        self.bases = bases
        self.secret = secret

    def __repr__(self) -> str:
        return f"FuzzSeed(<{len(self.bases)} tokens and a secret, hidden>)"


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CONFUSABLES = ["е", "Ε", "０", "ｅ", "\u200b", "\u202e", "\ufeff", "\x00", "é", "🔑"]
_PREFIXES = ["", " ", "\t", "Bearer ", "bearer ", "BEARER  ", "Bearer Bearer ", "Basic ", "Token "]
_PREFIXES += ["\x00", "\u00a0"]
_SUFFIXES = ["", " ", "\n", "\x00", ".", "..", "\u200b"]


@dataclass(frozen=True)
class _Parts:
    """A base token taken apart, and the real secret (for hostile re-signing)."""

    token: str
    head: str
    payload: str
    signature: str
    key: bytes

    @property
    def claims(self) -> dict[str, Any]:
        return _payload(self.payload)


def _bitflip(draw: st.DrawFn, p: _Parts) -> object:
    chars = list(p.token)
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(chars) - 1))
        chars[index] = chr(ord(chars[index]) ^ (1 << draw(st.integers(0, 7))))
    return "".join(chars)


def _edit(draw: st.DrawFn, p: _Parts) -> object:
    index = draw(st.integers(0, len(p.token)))
    cut = draw(st.integers(0, 4))
    return p.token[:index] + draw(_text(6)) + p.token[index + cut :]


def _segments(draw: st.DrawFn, p: _Parts) -> object:
    parts = [p.head, p.payload, p.signature]
    op = draw(st.sampled_from(["swap", "drop", "duplicate", "extra", "empty", "reverse"]))
    if op == "swap":
        i, j = draw(st.permutations([0, 1, 2]))[:2]
        parts[i], parts[j] = parts[j], parts[i]
    elif op == "drop":
        del parts[draw(st.integers(0, 2))]
    elif op == "duplicate":
        parts.insert(draw(st.integers(0, 3)), parts[draw(st.integers(0, 2))])
    elif op == "extra":
        pieces = st.sampled_from([p.head, p.payload, p.signature, "", "AAAA"])
        parts += draw(st.lists(pieces, min_size=1, max_size=3))
    elif op == "empty":
        parts[draw(st.integers(0, 2))] = ""
    else:
        parts.reverse()
    return ".".join(parts)


def _base64(draw: st.DrawFn, p: _Parts) -> object:
    parts = [p.head, p.payload, p.signature]
    which = draw(st.integers(0, 2))
    segment = parts[which]
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    variant = draw(st.sampled_from(["std", "padded", "noncanonical", "space", "percent", "case"]))
    if variant == "std":
        segment = base64.b64encode(raw).decode().rstrip("=")
    elif variant == "padded":
        segment = base64.urlsafe_b64encode(raw).decode() + "=" * draw(st.integers(0, 2))
    elif variant == "noncanonical":
        last = _ALPHABET.index(segment[-1]) ^ draw(st.integers(1, 3))
        segment = segment[:-1] + _ALPHABET[last]
    elif variant == "space":
        at = draw(st.integers(1, max(1, len(segment) - 1)))
        segment = segment[:at] + draw(st.sampled_from([" ", "\n", "\t", "\r\n"])) + segment[at:]
    elif variant == "percent":
        segment = segment.replace("-", "%2D").replace("_", "%5F") + "%3D"
    else:
        segment = segment.swapcase()
    parts[which] = segment
    return ".".join(parts)


def _header(draw: st.DrawFn, p: _Parts) -> object:
    header = draw(st.sampled_from(_HEADER_VARIANTS))
    signing_input = f"{b64json(header)}.{p.payload}"
    if isinstance(header, dict) and ("jwk" in header or "jku" in header):
        signer = "embedded"  # the attack: sign with the key the header points to
    else:
        signer = draw(st.sampled_from(["secret", "original", "none", "HS384", "HS512"]))
    if signer == "original":
        return f"{signing_input}.{p.signature}"
    if signer == "none":
        return f"{signing_input}."
    key = _EMBEDDED_KEY if signer == "embedded" else p.key
    alg = signer if signer in ("HS384", "HS512") else "HS256"
    digest = hmac.new(key, signing_input.encode(), HMAC_HASHES[alg]).digest()
    return f"{signing_input}.{b64(digest)}"


def _claims(draw: st.DrawFn, p: _Parts, *, resign: bool) -> object:
    body = p.claims
    if draw(st.booleans()):
        body[draw(_text(8))] = draw(_text(40) | st.integers() | st.none())
    body.update(draw(st.sampled_from(_INVALIDATING_PATCHES)))  # last: it always applies
    if resign:
        return assemble({"alg": "HS256", "typ": "JWT"}, body, p.key)
    if draw(st.booleans()):  # a harmless-looking substitution under the old signature
        body = {**p.claims, "role": "admin"}
    return f"{p.head}.{b64json(body)}.{p.signature}"


def _nested_json(draw: st.DrawFn, p: _Parts) -> object:
    depth = draw(st.integers(10, 20_000))
    where = draw(st.sampled_from(["header", "payload", "claim"]))
    if where == "header":
        return assemble(_nested(depth), p.claims, p.key)
    if where == "payload":
        return assemble({"alg": "HS256"}, _nested(depth), p.key)
    body = {**p.claims, **draw(st.sampled_from(_INVALIDATING_PATCHES))}
    text = json.dumps(body, separators=(",", ":"))
    return assemble({"alg": "HS256"}, RawJson(f'{text[:-1]},"deep":{_nested(depth)}}}'), p.key)


def _huge(draw: st.DrawFn, p: _Parts) -> object:
    size = draw(st.sampled_from([8 * 1024 + 1, 9 * 1024, 64 * 1024, 1024 * 1024]))
    return assemble({"alg": "HS256", "typ": "JWT"}, {**p.claims, "pad": "A" * size}, p.key)


def _unicode(draw: st.DrawFn, p: _Parts) -> object:
    index = draw(st.integers(0, len(p.token)))
    return p.token[:index] + draw(st.sampled_from(_CONFUSABLES)) + p.token[index:]


def _wrap(draw: st.DrawFn, p: _Parts) -> object:
    return draw(st.sampled_from(_PREFIXES)) + p.token + draw(st.sampled_from(_SUFFIXES))


def _foreign(draw: st.DrawFn, p: _Parts) -> object:
    """Not a string at all (``validate_token`` gets it as is; JSON gets what it can carry)."""
    token = p.token
    return draw(
        st.sampled_from([None, 0, 1.5, True, b"x", token.encode(), [token], {"t": token}, (token,)])
    )


_KINDS = {
    "bitflip": _bitflip,
    "edit": _edit,
    "segments": _segments,
    "base64": _base64,
    "header": _header,
    "claims-unsigned": lambda draw, p: _claims(draw, p, resign=False),
    "claims-resigned": lambda draw, p: _claims(draw, p, resign=True),
    "nested": _nested_json,
    "huge": _huge,
    "unicode": _unicode,
    "wrap": _wrap,
    "foreign": _foreign,
}


@st.composite
def mutants(draw: st.DrawFn, seed: FuzzSeed) -> Mutant:
    """One hostile variation of one of the seed's valid tokens.

    Only the ``resign`` kinds and hostile headers use the real secret, and each of those
    carries a defect no signature can excuse (a bad claim, alg, ``crit``, size…), so a
    mutant may legitimately verify only when it *is* its base token after stripping.
    """
    base = draw(st.sampled_from(seed.bases))
    head, payload, signature = base.split(".")
    parts = _Parts(base, head, payload, signature, seed.secret.encode())
    kind = draw(st.sampled_from(sorted(_KINDS)))
    value = _KINDS[kind](draw, parts)
    must_reject = not isinstance(value, str) or canonical(value) != base
    return Mutant(value=value, kind=kind, base=base, must_reject=must_reject)
