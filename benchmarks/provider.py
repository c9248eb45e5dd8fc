"""Part ``provider``: an identity provider's access tokens (SESSION_BUDDY_OAUTH_ISSUER), against
a real OpenID provider (testkit.oidc), in the same process and rounds as their baseline.

Per call, ``TokenVerification.verify`` of the server's runtime (verifier by issuer, keys from
the JWKS, revocation) against PyJWT with ``PyJWKClient`` doing the same work (the key by
``kid`` from its cached JWKS, ``jwt.decode`` with the key's algorithm, audience, issuer and
required claims):

* same token (RS256, ES256): a client reusing its token — our cache answers;
* distinct tokens (RS256, ES256): each token once, after the cache is full;
* forged tokens: a published ``kid`` with a signature its key did not make (refused by both
  after one signature check; a forged ``kid`` is tested, not timed: PyJWKClient fetches
  the JWKS again for each one, we at most three times a minute).

Then over HTTP, one server taking both: tool calls/s with a provider token as the bearer
header / with an HS256 token, interleaved rounds (target >= 0.97).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt

from benchmarks.harness import (
    Profile,
    Row,
    Runner,
    calibrate,
    interleave,
    median,
    progress,
    ratios,
    spread,
)
from benchmarks.micro import Pool
from session_buddy.config import load_settings
from session_buddy.runtime import Runtime, forget_shared_state
from testkit.environment import new_secret, server_environment
from testkit.mcp import connected
from testkit.oidc import OpenIDProvider, generate_key, sign, standard_clients
from testkit.server import free_port, launch_http_server
from testkit.tokens import mint

PART = "provider"
HTTP_TARGET = 0.97
REQUIRED = ["exp", "iat", "iss", "aud", "sub"]


def run(profile: Profile) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-provider-") as name:
        directory = Path(name)
        with OpenIDProvider(directory, clients=standard_clients()) as op:
            rows = _micro(profile, op, directory)
            rows.append(_http(profile, op, directory))
            return rows


def _micro(profile: Profile, op: OpenIDProvider, directory: Path) -> list[Row]:
    resource = "http://127.0.0.1:8678/mcp"
    settings = load_settings(
        data_dir=directory / "data", SESSION_BUDDY_OAUTH_ISSUER=op.issuer, resource_url=resource
    )
    runtime = Runtime.build(settings)
    try:
        return _measure(profile, op, runtime, resource)
    finally:
        runtime.close()
        forget_shared_state()


def _measure(profile: Profile, op: OpenIDProvider, runtime: Runtime, resource: str) -> list[Row]:
    verify = runtime.verification.verify
    jwks = jwt.PyJWKClient(op.jwks_uri)

    def baseline_decode(token: str) -> None:
        key = jwks.get_signing_key_from_jwt(token)
        jwt.decode(
            token,
            key,
            algorithms=[str(key.algorithm_name)],
            audience=resource,
            issuer=op.issuer,
            options={"require": REQUIRED},
        )

    def mint_pool(alg: str, count: int) -> list[str]:
        key = op.private_key(alg=alg)  # imported once: op.forge imports it per token
        return [sign(op.access_token_claims(resource=resource), key) for _ in range(count)]

    same = {alg: mint_pool(alg, 1)[0] for alg in ("RS256", "ES256")}
    forged_claims = op.access_token_claims(resource=resource)
    for token in same.values():  # the verdicts first (and the keys fetched once by both)
        verify(token)
        baseline_decode(token)

    def refuses(run: Callable[[str], None], token: str) -> None:
        try:
            run(token)
        except (jwt.InvalidTokenError, ValueError):
            return
        raise RuntimeError("a forged token was accepted")

    def repeat(call: Callable[[str], object], token: str) -> Runner:
        def run(n: int) -> None:
            for _ in range(n):
                call(token)

        return run

    def each(call: Callable[[str], object], pool: Pool) -> Runner:
        def run(n: int) -> None:
            for token in pool.take(n):
                call(token)

        return run

    def each_refused(call: Callable[[str], None], pool: Pool) -> Runner:
        def run(n: int) -> None:
            for token in pool.take(n):
                refuses(call, token)

        return run

    batches = profile.rounds + profile.warmup_rounds
    probe = 60
    ops = {
        "pyjwt_rs256": calibrate(repeat(baseline_decode, same["RS256"]), profile.batch_seconds),
        "pyjwt_es256": calibrate(repeat(baseline_decode, same["ES256"]), profile.batch_seconds),
    }
    ops["rs256_same"] = ops["es256_same"] = 20 * ops["pyjwt_es256"]
    for alg in ("rs256", "es256"):
        ops[f"{alg}_distinct"] = ops[f"pyjwt_{alg}_distinct"] = max(probe, ops[f"pyjwt_{alg}"])
    ops["forged"] = ops["pyjwt_forged"] = max(probe, ops["pyjwt_rs256"])
    progress(f"provider: minting pools ({batches} batches), ops {ops}")
    impostor = generate_key("RS256", kid=op.signing_kid("RS256"))  # a published kid
    pools = {
        name: Pool(mint_pool("ES256" if "es256" in name else "RS256", batches * ops[name]))
        for name in (
            "rs256_distinct",
            "pyjwt_rs256_distinct",
            "es256_distinct",
            "pyjwt_es256_distinct",
        )
    }
    forged = {
        name: Pool([sign(forged_claims, impostor) for _ in range(batches * ops[name])])
        for name in ("forged", "pyjwt_forged")
    }
    runners: dict[str, Runner] = {
        "pyjwt_rs256": repeat(baseline_decode, same["RS256"]),
        "pyjwt_es256": repeat(baseline_decode, same["ES256"]),
        "rs256_same": repeat(verify, same["RS256"]),
        "es256_same": repeat(verify, same["ES256"]),
        "rs256_distinct": each(verify, pools["rs256_distinct"]),
        "pyjwt_rs256_distinct": each(baseline_decode, pools["pyjwt_rs256_distinct"]),
        "es256_distinct": each(verify, pools["es256_distinct"]),
        "pyjwt_es256_distinct": each(baseline_decode, pools["pyjwt_es256_distinct"]),
        "forged": each_refused(verify, forged["forged"]),
        "pyjwt_forged": each_refused(baseline_decode, forged["pyjwt_forged"]),
    }
    progress(f"provider: {profile.rounds} rounds (+{profile.warmup_rounds} warm-up)")
    fetched = op.request_count(op.jwks_uri)
    per_op = interleave(runners, ops, profile.rounds, profile.warmup_rounds)
    if op.request_count(op.jwks_uri) != fetched:  # both work from their cached keys
        raise RuntimeError("the JWKS was fetched while timing")

    compared = {
        "rs256_same": ("pyjwt_rs256", "RS256, same token (cache hit) / PyJWT + PyJWKClient"),
        "es256_same": ("pyjwt_es256", "ES256, same token (cache hit) / PyJWT + PyJWKClient"),
        "rs256_distinct": ("pyjwt_rs256_distinct", "RS256, distinct tokens / PyJWT + PyJWKClient"),
        "es256_distinct": ("pyjwt_es256_distinct", "ES256, distinct tokens / PyJWT + PyJWKClient"),
        "forged": ("pyjwt_forged", "forged (published kid, bad signature) / PyJWT + PyJWKClient"),
    }
    rows = []
    for name, (base, what) in compared.items():
        rows.append(
            Row(
                PART,
                name,
                what,
                median(ratios(per_op[name], per_op[base])),
                details={
                    "absolute": f"{median(per_op[name]) / 1000:.2f} µs vs "
                    f"{median(per_op[base]) / 1000:.2f} µs",
                    "ns_per_op": spread(per_op[name]),
                    "baseline_ns_per_op": spread(per_op[base]),
                    "ops_per_round": ops[name],
                },
            )
        )
    return rows


def _http(profile: Profile, op: OpenIDProvider, directory: Path) -> Row:
    """Tool calls/s over HTTP with a provider token / with an HS256 token, one server."""
    secret = new_secret()
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    env = server_environment(directory / "http-data", secret, SESSION_BUDDY_OAUTH_ISSUER=op.issuer)
    provider_token = op.client_credentials("svc-admin", resource=resource).access_token
    hs256_token = mint(secret, "bench-user")
    calls = profile.e2e_calls
    per_call: dict[str, list[float]] = {"provider": [], "hs256": []}
    with (
        launch_http_server(env, directory, port=port) as server,
        connected(server.url, bearer=provider_token) as with_provider,
        connected(server.url, bearer=hs256_token) as with_hs256,
    ):
        clients = {"provider": with_provider, "hs256": with_hs256}
        for client in clients.values():  # warm both (the provider's keys fetched)
            client.call("whoami")
        for number in range(profile.e2e_rounds + 1):
            order = list(clients) if number % 2 else list(reversed(clients))
            for name in order:
                start = time.perf_counter()
                for _ in range(calls):
                    result = clients[name].call("whoami")
                    if result.is_error:
                        raise RuntimeError(f"{name}: whoami refused")
                if number:  # the first round warms up
                    per_call[name].append((time.perf_counter() - start) / calls)
    ratio = ratios(per_call["hs256"], per_call["provider"])  # calls/s provider / hs256
    return Row(
        PART,
        "http_provider_vs_hs256",
        "HTTP whoami calls/s: provider token / HS256 token (one server, bearer header)",
        median(ratio),
        op=">=",
        target=HTTP_TARGET,
        details={
            "calls_per_s_provider": round(1 / median(per_call["provider"]), 1),
            "calls_per_s_hs256": round(1 / median(per_call["hs256"]), 1),
            "ratio_per_round": [round(r, 4) for r in ratio],
            "calls_per_round": calls,
        },
    )
