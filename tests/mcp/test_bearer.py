"""BearerAuthMiddleware: optional bearer identity, 401 on bad headers, 429 for blocked clients,
503 (with Retry-After) when the server itself cannot check a header."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from starlette.responses import JSONResponse
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from session_buddy.auth import errors
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.revocation import MAX_STALE_SECONDS, RevocationStore
from session_buddy.auth.throttle import AuthFailureThrottle
from session_buddy.auth.trail import AuthDecision, Recorders
from session_buddy.config import load_settings
from session_buddy.mcp.bearer import BearerAuthMiddleware
from session_buddy.mcp.request import AUTH_FAILURE_REPORTER_KEY, BEARER_STATE_KEY
from session_buddy.mcp.tools import SessionTools
from session_buddy.store import SqliteDatabase, StorageError
from session_buddy.store.revocations import RevocationRepository
from testkit.clock import FixedClock
from testkit.environment import new_secret
from testkit.mcp import tools_call
from testkit.tokens import mint

SECRET = new_secret()


class RecordingApp:
    """The app behind the middleware: records what reached it and echoes the caller."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        state = scope.get("state", {})
        principal = state.get(BEARER_STATE_KEY)
        if scope["path"] == "/tool-failed":
            state[AUTH_FAILURE_REPORTER_KEY](errors.InvalidSignatureError())
        if scope["path"] == "/token-missing":
            state[AUTH_FAILURE_REPORTER_KEY](errors.TokenRequiredError())
        self.calls.append({"path": scope["path"], "principal": principal, "body": body})
        user = principal.user_id if principal is not None else None
        await JSONResponse({"user": user, "body": body.decode()})(scope, receive, send)


class Collected:
    """A decision recorder that keeps what it is told."""

    def __init__(self) -> None:
        self.decisions: list[AuthDecision] = []

    def record(self, decision: AuthDecision) -> None:
        self.decisions.append(decision)


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        *,
        secret: str | None = SECRET,
        revocations: RevocationStore | None = None,
    ) -> None:
        settings = load_settings(secret=secret or "", data_dir=tmp_path / "data")
        self.decisions = Collected()
        self.manager = JWTManager(
            AuthConfig(settings), revocations=revocations, decisions=Recorders([self.decisions])
        )
        self.clock = FixedClock()
        self.throttle = AuthFailureThrottle(clock=self.clock)
        self.app = RecordingApp()
        self.middleware = BearerAuthMiddleware(
            self.app,
            manager=self.manager,
            throttle=self.throttle,
            tools=SessionTools.names(),
            max_body_bytes=64 * 1024,
        )
        self.client = TestClient(self.middleware, client=("10.9.8.7", 4321))

    def post(
        self, path: str = "/mcp", authorization: str | None = None, payload: Any = None
    ) -> Any:
        headers = {"Authorization": authorization} if authorization is not None else {}
        return self.client.post(path, headers=headers, json=payload or {"jsonrpc": "2.0"})

    def post_bytes(self, body: bytes, authorization: str) -> Any:
        """POST ``body`` as it is (``json=`` cannot carry a lone surrogate)."""
        headers = {"Authorization": authorization, "Content-Type": "application/json"}
        return self.client.post("/mcp", headers=headers, content=body)

    def block(self) -> None:
        for _ in range(20):
            self.throttle.record_failure("10.9.8.7")


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def whoami(token: object) -> dict[str, Any]:
    return tools_call("whoami", {"token": token})


# -- identity ------------------------------------------------------------------------------


def test_request_without_header_passes_through_without_identity(harness: Harness) -> None:
    response = harness.post()
    assert response.status_code == 200
    assert response.json()["user"] is None


def test_valid_bearer_puts_the_principal_in_the_scope_state(harness: Harness) -> None:
    response = harness.post(authorization=f"Bearer {mint(SECRET, 'alice', role='admin')}")
    assert response.status_code == 200
    principal = harness.app.calls[-1]["principal"]
    assert (principal.user_id, principal.role, principal.authenticated) == ("alice", "admin", True)


def test_scheme_is_case_insensitive(harness: Harness) -> None:
    response = harness.post(authorization=f"BEARER {mint(SECRET, 'alice')}")
    assert response.json()["user"] == "alice"


def test_every_request_gets_a_failure_reporter(harness: Harness) -> None:
    harness.post()
    assert harness.app.calls[-1]["principal"] is None
    assert harness.post("/token-missing").status_code == 200


# -- 401 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "description"),
    [
        (f"Bearer {mint(SECRET, 'alice', lifetime=-10)}", "Token has expired"),
        (f"Bearer {mint(new_secret(), 'alice')}", "Invalid token"),
        ("Bearer not-a-jwt", "Invalid token"),
        ("Bearer ", "Invalid token"),
        ("Basic YWxpY2U6cGFzc3dvcmQ=", "Invalid token"),
    ],
)
def test_bad_header_gets_401_and_never_reaches_the_app(
    harness: Harness, authorization: str, description: str
) -> None:
    response = harness.post(authorization=authorization)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="session-buddy", error="invalid_token", error_description="{description}"'
    )
    assert response.json() == {
        "error": "invalid_token",
        "error_description": description,
        "message": f"❌ Authentication failed: {description}",
    }
    assert harness.app.calls == []


def test_revoked_bearer_gets_401(harness: Harness) -> None:
    token = harness.manager.create_token("alice")
    harness.manager.revoke_token(token)
    response = harness.post(authorization=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["error_description"] == "Token has been revoked"


def test_bad_header_is_logged_rate_limited_without_the_token(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    forged = mint(new_secret(), "alice")
    with caplog.at_level("WARNING", logger="session_buddy.auth"):
        for _ in range(5):
            harness.post(authorization=f"Bearer {forged}")
    lines = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(lines) == 1
    assert "reason=bad_signature" in lines[0]
    assert "tool=Authorization header client=10.9.8.7 token_fp=" in lines[0]
    assert forged not in lines[0]


def test_with_authentication_disabled_the_header_is_ignored(tmp_path: Path) -> None:
    harness = Harness(tmp_path, secret=None)
    response = harness.post(authorization="Bearer not-a-jwt")
    assert response.status_code == 200
    assert response.json()["user"] is None


# -- what a refusal is audited as ---------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "action"),
    [
        (tools_call("session_status", {}), "session_status"),
        (tools_call("no_such_tool", {}), "unknown"),
        (tools_call("\ud800", {}), "unknown"),
        (tools_call("start\x00session", {}), "unknown"),
        (tools_call("\x1b]0;owned\x07", {}), "unknown"),
        (tools_call("x" * 50_000, {}), "unknown"),
        (tools_call(42, {}), "unknown"),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}, "unknown"),
        ([tools_call("whoami", {}), tools_call("checkpoint", {})], "whoami"),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, "tools/list"),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, "notifications/initialized"),
        ({"jsonrpc": "2.0", "id": 1, "method": "\ud800/\x00"}, "unknown"),
        ({"jsonrpc": "2.0", "id": 1, "method": ["tools/call"]}, "unknown"),
        ({"jsonrpc": "2.0", "id": 1}, "unknown"),
        ("not a message", "http"),
    ],
)
def test_a_refusal_is_audited_as_a_tool_of_the_server_a_method_or_unknown(
    harness: Harness, message: Any, action: str
) -> None:
    response = harness.post_bytes(json.dumps(message).encode(), "Bearer nope")

    assert response.status_code == 401
    (decision,) = harness.decisions.decisions
    assert (decision.action, decision.reason) == (action, "malformed")


def test_a_body_that_is_not_json_is_audited_as_http(harness: Harness) -> None:
    harness.post_bytes(b"\xff{", "Bearer nope")
    assert [d.action for d in harness.decisions.decisions] == ["http"]


def test_throttled_requests_are_audited_as_one_action_whatever_they_named(
    harness: Harness,
) -> None:
    harness.block()
    for name in ("whoami", "tool-1", "tool-2"):
        body = json.dumps(tools_call(name, {"token": "bad"})).encode()
        assert harness.post_bytes(body, "Bearer nope").status_code == 429
        assert harness.post(payload=tools_call(name, {"token": "bad"})).status_code == 429

    assert {(d.action, d.reason) for d in harness.decisions.decisions} == {("*", "throttled")}
    assert len(harness.decisions.decisions) == 6


# -- 503 -----------------------------------------------------------------------------------


def test_a_header_the_server_cannot_check_for_its_database_gets_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not 401 ``invalid_token``: a client would take that for a dead token (Claude Code
    starts OAuth); the token is fine, the server's database is not."""
    tick = [0.0]
    database = SqliteDatabase(tmp_path / "r.db")
    harness = Harness(tmp_path, revocations=RevocationStore(database, monotonic=lambda: tick[0]))
    token = mint(SECRET, "alice")
    assert harness.post(authorization=f"Bearer {token}").status_code == 200

    def unreadable(repository: RevocationRepository, seq: int) -> object:
        raise StorageError(f"database {tmp_path / 'r.db'}: disk I/O error", kind="failed")

    monkeypatch.setattr(RevocationRepository, "since", unreadable)
    tick[0] += MAX_STALE_SECONDS + 1
    responses = [harness.post(authorization=f"Bearer {token}") for _ in range(25)]

    response = responses[0]
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "WWW-Authenticate" not in response.headers
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": "Authentication unavailable: revocation store cannot be read",
        "message": f"❌ Storage unavailable: database {tmp_path / 'r.db'}: disk I/O error",
    }
    assert {r.status_code for r in responses} == {503}  # never counted as bad credentials
    assert harness.app.calls == [harness.app.calls[0]]
    database.close()


def test_a_header_refused_for_an_unusable_secret_gets_503(tmp_path: Path) -> None:
    harness = Harness(tmp_path, secret="too-short")
    response = harness.post(authorization=f"Bearer {mint('too-short', 'alice')}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert response.json()["message"] == "❌ JWT secret must be at least 32 characters long"
    assert harness.app.calls == []


# -- 429 -----------------------------------------------------------------------------------


def test_twenty_bad_headers_block_the_client_with_retry_after(harness: Harness) -> None:
    statuses = [harness.post(authorization="Bearer nope").status_code for _ in range(20)]
    assert statuses == [401] * 20
    response = harness.post(authorization="Bearer nope")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    harness.clock.now += 45.5
    assert harness.post(authorization="Bearer nope").headers["Retry-After"] == "15"


def test_block_expires_after_sixty_seconds(harness: Harness) -> None:
    harness.block()
    harness.clock.now += 60
    assert harness.post(authorization="Bearer nope").status_code == 401


def test_valid_bearer_passes_while_blocked(harness: Harness) -> None:
    harness.block()
    response = harness.post(authorization=f"Bearer {mint(SECRET, 'alice')}")
    assert response.status_code == 200
    assert response.json()["user"] == "alice"


def test_tool_level_failures_count_towards_the_block(harness: Harness) -> None:
    for _ in range(20):
        assert harness.post("/tool-failed").status_code == 200
    assert harness.post(authorization="Bearer nope").status_code == 429


def test_missing_token_reports_do_not_count(harness: Harness) -> None:
    for _ in range(25):
        harness.post("/token-missing")
    assert harness.post(authorization="Bearer nope").status_code == 401


def test_blocked_client_with_bad_token_argument_gets_429(harness: Harness) -> None:
    harness.block()
    response = harness.post(payload=whoami("not-a-jwt"))
    assert response.status_code == 429
    assert harness.app.calls == []


def test_blocked_client_with_valid_token_argument_passes_with_its_body_intact(
    harness: Harness,
) -> None:
    harness.block()
    payload = whoami(mint(SECRET, "alice"))
    response = harness.post(payload=payload)
    assert response.status_code == 200
    assert json.loads(harness.app.calls[-1]["body"]) == payload


def test_blocked_client_without_any_token_passes(harness: Harness) -> None:
    harness.block()
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert harness.post(payload=listing).status_code == 200
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami"}}
    assert harness.post(payload=call).status_code == 200


def test_blocked_client_with_a_bad_token_inside_a_batch_gets_429(harness: Harness) -> None:
    harness.block()
    batch = [whoami(mint(SECRET, "alice")), whoami("not-a-jwt")]
    assert harness.post(payload=batch).status_code == 429


def test_blocked_client_with_an_oversized_body_gets_429(harness: Harness) -> None:
    harness.block()
    payload = {"jsonrpc": "2.0", "padding": "x" * 100_000}
    assert harness.post(payload=payload).status_code == 429


def test_an_unblocked_client_is_never_asked_for_its_body(harness: Harness) -> None:
    payload = {"jsonrpc": "2.0", "padding": "x" * 100_000}
    assert harness.post(payload=payload).status_code == 200


class ThreadHops:
    """Counts the middleware's trips to a worker thread (and still makes them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        run_sync = anyio.to_thread.run_sync

        async def counting(func: Any, *args: Any) -> Any:
            self.count += 1
            return await run_sync(func, *args)

        monkeypatch.setattr(anyio.to_thread, "run_sync", counting)


def test_a_token_seen_before_is_verified_without_a_thread(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops = ThreadHops(monkeypatch)
    token = mint(SECRET, "alice")
    assert harness.post(authorization=f"Bearer {token}").json()["user"] == "alice"
    assert hops.count == 1  # first sight: the signature is computed off the event loop
    for _ in range(3):
        assert harness.post(authorization=f"Bearer {token}").json()["user"] == "alice"
    assert hops.count == 1
    assert harness.post(authorization=f"Bearer {mint(SECRET, 'bob')}").json()["user"] == "bob"
    assert hops.count == 2


def test_a_token_seen_before_and_revoked_since_is_refused_without_a_thread(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops = ThreadHops(monkeypatch)
    token = harness.manager.create_token("alice")
    assert harness.post(authorization=f"Bearer {token}").status_code == 200
    harness.manager.revoke_token(token)
    response = harness.post(authorization=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["error_description"] == "Token has been revoked"
    assert hops.count == 1
    for _ in range(19):  # counted like any bad header: it was the 20th
        harness.throttle.record_failure("10.9.8.7")
    assert harness.throttle.retry_after("10.9.8.7") is not None


def test_a_token_seen_before_goes_to_a_thread_when_revocations_must_be_read(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops = ThreadHops(monkeypatch)
    token = mint(SECRET, "alice")
    harness.post(authorization=f"Bearer {token}")
    revocations = harness.manager.revocations
    monkeypatch.setattr(type(revocations), "sync_due", property(lambda self: True))
    assert harness.post(authorization=f"Bearer {token}").json()["user"] == "alice"
    assert hops.count == 2


def test_verification_of_a_valid_header_is_fast(harness: Harness) -> None:
    token = mint(SECRET, "alice")
    harness.post(authorization=f"Bearer {token}")
    started = time.perf_counter()
    for _ in range(50):
        harness.post(authorization=f"Bearer {token}")
    assert (time.perf_counter() - started) / 50 < 0.05
