"""session-buddy JWT authentication end to end: `make demo` (python examples/jwt_auth_demo.py).

Needs no setup. It uses your SESSION_BUDDY_SECRET (environment, secret file or .env) when
you have one, and otherwise generates a throwaway secret for this run. Everything it
stores goes to a temporary directory (SESSION_BUDDY_DATA_DIR) deleted at the end; your
real sessions are never touched.

Each step prints ✅ when session-buddy behaved as documented, or ❌ when it did not.
The exit code is 0 only if every step passed.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import jwt

from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.auth.errors import RevokedTokenError
from session_buddy.client import SessionBuddyAuthError, SessionBuddyClient
from session_buddy.config import load_settings
from session_buddy.mcp.auth import (
    AuthConfig,
    JWTManager,
    generate_test_token,
    get_auth_error,
    is_authentication_enabled,
    reload_auth_config,
    validate_token,
)

DEMO_USER = "demo_user"


class Demo:
    """Runs steps, prints ✅/❌ for each, and remembers whether any failed."""

    def __init__(self) -> None:
        self.failures = 0
        self.passed = 0

    def section(self, title: str) -> None:
        print(f"\n── {title} " + "─" * max(0, 70 - len(title)))

    def step(self, title: str, action: Callable[[], str | None]) -> None:
        try:
            detail = action()
        except Exception as exc:
            self.fail(title, exc)
            return
        self.ok(title, detail)

    async def astep(self, title: str, action: Callable[[], Awaitable[str | None]]) -> None:
        try:
            detail = await action()
        except Exception as exc:
            self.fail(title, exc)
            return
        self.ok(title, detail)

    def ok(self, title: str, detail: str | None) -> None:
        self.passed += 1
        print(f"✅ {title}")
        if detail:
            print(textwrap.indent(detail, "   "))

    def fail(self, title: str, exc: BaseException) -> None:
        self.failures += 1
        print(f"❌ {title} — FAILED: {type(exc).__name__}: {exc}")
        if os.environ.get("DEMO_DEBUG"):
            traceback.print_exc()


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def prepare_environment(workdir: Path) -> tuple[str, str]:
    """A clean configuration for this process: your secret (or a new one), a temp data dir.

    Returns (secret, where it came from).
    """
    try:
        existing = load_settings().resolved_secret()
    except ValueError:  # an invalid setting or unreadable secret file: start clean
        existing = None
    for name in [n for n in os.environ if n.startswith("SESSION_BUDDY_")]:
        del os.environ[name]
    if existing:
        secret, origin = existing, "your SESSION_BUDDY_SECRET"
    else:
        secret, origin = secrets.token_urlsafe(32), "generated for this demo (not saved)"
    os.environ["SESSION_BUDDY_SECRET"] = secret
    os.environ["SESSION_BUDDY_DATA_DIR"] = str(workdir / "data")
    os.chdir(workdir)  # no stray .env from the directory the demo was started in
    return secret, origin


def make_git_repo(path: Path) -> str:
    path.mkdir()
    (path / "README.md").write_text("# demo project\n")
    if shutil.which("git") is None:
        return "git is not installed: using a plain directory"

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(path), "-c", "user.name=Demo", "-c", "user.email=demo@example.com",
             "-c", "commit.gpgsign=false", *args],
            check=True, capture_output=True,
        )  # fmt: skip

    git("init", "-q")
    git("add", "README.md")
    git("commit", "-q", "-m", "initial commit")
    return f"git repository at {path}"


def run(workdir: Path) -> int:
    demo = Demo()
    secret, origin = prepare_environment(workdir)
    reload_auth_config()  # the facade caches the configuration; read the demo's now
    print("session-buddy JWT authentication demo")
    print(f"Data dir (temporary): {os.environ['SESSION_BUDDY_DATA_DIR']}")
    if origin.startswith("generated"):
        print("SESSION_BUDDY_SECRET is not set: generated a secret for this demo process only.")
    else:
        print("Using your SESSION_BUDDY_SECRET (it is never printed).")

    demo.section("1. Secret and configuration")

    def generate_secret() -> str:
        fresh = secrets.token_urlsafe(32)
        expect(len(fresh) >= 32, "a token_urlsafe(32) secret has 43 characters")
        return (
            f"secrets.token_urlsafe(32) gives {len(fresh)} URL-safe characters "
            "(same as: session-buddy secret generate)"
        )

    demo.step("Generate a secret", generate_secret)

    def configuration() -> str:
        config = AuthConfig()
        expect(config.enabled and is_authentication_enabled(), "authentication is enabled")
        expect(config.algorithm == "HS256", "algorithm is HS256")
        expect(config.problem() is None, f"configuration is usable: {config.problem()}")
        return (
            f"Enabled: {config.enabled}, algorithm: {config.algorithm}, "
            f"expire minutes: {config.expire_minutes}, secret: {origin}"
        )

    demo.step("AuthConfig reads SESSION_BUDDY_SECRET", configuration)
    if demo.failures:
        print(
            "❌ Stopping: fix SESSION_BUDDY_SECRET (run: session-buddy auth status), "
            "or unset it to let the demo generate one."
        )
        return 1

    demo.section("2. Token lifecycle with JWTManager")
    manager = JWTManager()
    state: dict[str, str] = {}

    def create() -> str:
        state["token"] = manager.create_token(DEMO_USER, additional_claims={"role": "admin"})
        expect(state["token"].count(".") == 2, "a JWT has three parts")
        return f"token for {DEMO_USER} (role admin): {state['token'][:24]}…"

    def verify() -> str:
        claims = manager.verify_token(state["token"])
        expect(claims["user_id"] == DEMO_USER and claims["type"] == "access", "claims")
        return f"user_id={claims['user_id']}, role={claims['role']}, iss={claims['iss']}"

    def refresh() -> str:
        old = state["token"]
        state["token"] = manager.refresh_token(old)
        expect(manager.verify_token(state["token"])["user_id"] == DEMO_USER, "new token works")
        try:
            manager.verify_token(old)
        except RevokedTokenError as exc:
            return f"new token issued; the old one is now refused: {exc.user_message}"
        raise AssertionError("the refreshed (old) token was still accepted")

    def revoke() -> str:
        manager.revoke_token(state["token"])
        expect(validate_token(state["token"]) is None, "a revoked token is refused")
        return f"validate_token → None, get_auth_error() → {get_auth_error()!r}"

    demo.step("Create a token", create)
    demo.step("Verify it", verify)
    demo.step("Refresh it (the old token is revoked)", refresh)
    demo.step("Revoke it", revoke)

    demo.section("3. Tokens that must be rejected")

    def expired() -> str:
        now = datetime.now(tz=UTC)
        payload = {
            "user_id": DEMO_USER,
            "iat": now - timedelta(hours=2),
            "exp": now - timedelta(hours=1),
            "type": "access",
        }
        token = jwt.encode(payload, secret, algorithm="HS256")
        expect(validate_token(token) is None, "expired token refused")
        expect(get_auth_error() == "Token has expired", f"reason: {get_auth_error()}")
        return f"→ ❌ Authentication failed: {get_auth_error()}   (as expected)"

    def tampered() -> str:
        header, _, signature = generate_test_token(DEMO_USER).split(".")
        forged_claims = {"user_id": "admin", "exp": int(time.time()) + 3600, "type": "access"}
        forged = jwt.utils.base64url_encode(str(forged_claims).replace("'", '"').encode())
        token = f"{header}.{forged.decode()}.{signature}"
        expect(validate_token(token) is None, "tampered token refused")
        expect(get_auth_error() == "Invalid token", f"reason: {get_auth_error()}")
        return f"→ ❌ Authentication failed: {get_auth_error()}   (as expected)"

    demo.step("An expired token is rejected", expired)
    demo.step("A tampered token is rejected", tampered)

    demo.section("4. Interoperability with Mahavishnu")

    def mahavishnu_token() -> str:
        # Exactly the client-side example in docs/JWT_AUTHENTICATION.md, with plain PyJWT.
        payload = {
            "user_id": "mahavishnu",
            "exp": datetime.now(tz=UTC) + timedelta(minutes=60),
            "iat": datetime.now(tz=UTC),
            "type": "access",
            "iss": "mahavishnu",
            "role": "orchestrator",
        }
        token = jwt.encode(payload, secret, algorithm="HS256")
        claims = validate_token(token)
        expect(claims is not None, f"accepted (error: {get_auth_error()})")
        assert claims is not None
        return f"accepted: user_id={claims['user_id']}, iss={claims['iss']}, role={claims['role']}"

    def signed_message() -> str:
        auth = CrossProjectAuth(secret)
        message = {"action": "start_session", "project": "/path/to/project"}
        signature = auth.sign_message(message)
        expect(auth.verify_message(message, signature), "signature verifies")
        expect(not auth.verify_message({**message, "project": "/etc"}, signature), "tamper")
        return f"HMAC-SHA256 {signature[:16]}… verifies; a modified message does not"

    def replayed_envelope() -> str:
        auth = CrossProjectAuth(secret)
        envelope = auth.sign_envelope("mahavishnu", "session-buddy", {"action": "checkpoint"})
        expect(auth.verify_envelope(envelope), "first delivery accepted")
        expect(not auth.verify_envelope(envelope), "replay rejected")
        return "first delivery accepted; the same envelope again is rejected"

    demo.step("A Mahavishnu-style token made with plain PyJWT is accepted", mahavishnu_token)
    demo.step("Cross-project message signing", signed_message)
    demo.step("A replayed envelope is rejected", replayed_envelope)

    demo.section("5. Real round trip: MCP over stdio with SessionBuddyClient")
    project = workdir / "demo-project"
    repo_note = make_git_repo(project)
    print(f"   project: {repo_note}")
    anyio.run(round_trip, demo, secret, project, workdir / "server.log")

    total = demo.passed + demo.failures
    print()
    if demo.failures:
        print(f"❌ {demo.failures} of {total} steps did not behave as expected.")
        return 1
    print(f"✅ All {total} steps behaved as expected.")
    return 0


async def round_trip(demo: Demo, secret: str, project: Path, log_path: Path) -> None:
    """Start the real server over stdio and call its tools as Mahavishnu would."""
    with log_path.open("w") as log:
        try:
            async with SessionBuddyClient.stdio(secret=secret, server_log=log) as sb:
                print("   started `session-buddy serve` (stdio) in the temporary data dir")
                await run_tools(demo, sb, project)
        except Exception as exc:
            demo.fail("Talk to the session-buddy server", exc)
            log.flush()
            print(textwrap.indent(log_path.read_text()[-2000:], "   server log: "))


async def run_tools(demo: Demo, sb: SessionBuddyClient, project: Path) -> None:
    async def without_token() -> str:
        try:
            await sb.call_tool("start_session", {"working_directory": str(project), "token": None})
        except SessionBuddyAuthError as exc:
            expect(exc.reason == "Token required", f"reason: {exc.reason}")
            return f"→ {exc}   (as expected)"
        raise AssertionError("start_session ran without a token")

    async def with_token() -> str:
        info = await sb.start(working_directory=project)
        expect(info.created and info.user_id == "mahavishnu", "session started")
        return info.summary_text()

    async def checkpoint() -> str:
        (project / "notes.txt").write_text("work in progress\n")
        info = await sb.checkpoint(project, note="wrote the notes")
        expect(info.number == 1, "first checkpoint")
        return info.summary_text()

    async def end() -> str:
        handoff = await sb.end(project, summary="Demo finished: authentication works end to end.")
        expect(not handoff.session.active, "session ended")
        return "hand-off:\n" + textwrap.indent(handoff.markdown.strip(), "  │ ", lambda _: True)

    await demo.astep("start_session without a token is rejected", without_token)
    await demo.astep("start_session with a token is accepted", with_token)
    await demo.astep("checkpoint", checkpoint)
    await demo.astep("end_session returns the hand-off", end)


def main() -> int:
    # Rejected tokens are logged by session-buddy (for monitoring); the demo shows them
    # as step results instead.
    logging.getLogger("session_buddy").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="session-buddy-demo-") as tmp:
        return run(Path(tmp).resolve())


if __name__ == "__main__":
    sys.exit(main())
