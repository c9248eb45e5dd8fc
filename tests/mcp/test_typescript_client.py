"""The official TypeScript SDK client — what Claude Code, the Inspector and Cursor use —
against the real server over stdio and streamable HTTP.

That client validates ``structuredContent`` against a tool's output schema even when
``isError`` is true, so an error result carrying anything else turns our message into
"Structured content does not match the tool's output schema …". Here every refusal must
reach it as our exact text, and every success must pass its schema validation (it lists
the tools first, as Claude Code does, so every call below is validated).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.mcp.error_meta import ERROR_META_KEY
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.server import SERVE, ServerProcess, launch_http_server
from testkit.tokens import mint
from testkit.typescript import (
    Http,
    Outcome,
    Stdio,
    bearer,
    call_tool,
    list_tools,
    run_typescript_client,
    tool_text,
)

pytestmark = pytest.mark.e2e

SECRET = new_secret()
TOKEN_REQUIRED = "❌ Authentication failed: Token required"
MISSING_WRITE = "❌ Authorization failed: missing scope 'write'"


def full_token() -> str:
    return mint(SECRET, "claude", scopes=["read", "write"])


def read_only_token() -> str:
    return mint(SECRET, "reader", scopes=["read"])


def script(project: Path) -> dict[str, dict[str, Any]]:
    """A whole session as a client drives it, refusals first; every tool succeeds once."""
    token = full_token()
    where = str(project)
    envelope = CrossProjectAuth(SECRET).sign_envelope("mahavishnu", "session-buddy", {"n": 1})
    return {
        "tools": list_tools(),
        "no token": call_tool("start_session", working_directory=where),
        "read-only token": call_tool(
            "start_session", working_directory=where, token=read_only_token()
        ),
        "no active session": call_tool("checkpoint", working_directory=where, token=token),
        "start": call_tool("start_session", working_directory=where, token=token),
        "checkpoint": call_tool("checkpoint", working_directory=where, note="n", token=token),
        "status": call_tool("session_status", working_directory=where, token=token),
        "list": call_tool("list_sessions", token=token),
        "end": call_tool("end_session", working_directory=where, summary="s", token=token),
        "whoami": call_tool("whoami", token=token),
        "envelope": call_tool("verify_envelope", envelope=envelope, token=token),
    }


def run_script(transport: Stdio | Http, steps: Mapping[str, dict[str, Any]]) -> dict[str, Outcome]:
    run = run_typescript_client(transport, list(steps.values()))
    assert run.connect.ok, run.connect.error
    assert len(run.outcomes) == len(steps)
    return dict(zip(steps, run.outcomes, strict=True))


@pytest.fixture(scope="module")
def http_server(workdir: Path) -> Iterator[ServerProcess]:
    env = server_environment(workdir / "http-data", SECRET)
    with launch_http_server(env, workdir) as server:
        yield server


@pytest.fixture(scope="module", params=["stdio", "http"])
def session(
    request: pytest.FixtureRequest, workdir: Path, http_server: ServerProcess
) -> dict[str, Outcome]:
    """The script's outcomes, one TypeScript client run per transport."""
    project = make_git_repo(workdir / f"project-{request.param}")
    if request.param == "stdio":
        env = server_environment(workdir / "stdio-data", SECRET)
        transport: Stdio | Http = Stdio(SERVE, env, workdir, workdir / "stdio.log")
    else:
        transport = Http(http_server.url)
    return run_script(transport, script(project))


def refusal(outcome: Outcome) -> str:
    """The text of an error result the client accepted (it threw nothing)."""
    result = outcome.value()
    assert result["isError"] is True, result
    return tool_text(result)


def test_a_call_without_a_token_shows_our_message(session: dict[str, Outcome]) -> None:
    assert refusal(session["no token"]) == TOKEN_REQUIRED


def test_a_token_without_write_shows_our_message(session: dict[str, Outcome]) -> None:
    assert refusal(session["read-only token"]) == MISSING_WRITE


def test_a_session_error_shows_its_message(session: dict[str, Outcome]) -> None:
    assert refusal(session["no active session"]).startswith("No active session for ")


def test_error_results_carry_no_structured_content(session: dict[str, Outcome]) -> None:
    for name in ("no token", "read-only token", "no active session"):
        assert "structuredContent" not in session[name].value(), name


def test_error_results_carry_kind_and_reason_in_meta(session: dict[str, Outcome]) -> None:
    assert session["no token"].value()["_meta"][ERROR_META_KEY] == {
        "kind": "authentication",
        "reason": "token_required",
        "message": "Token required",
    }
    assert session["read-only token"].value()["_meta"][ERROR_META_KEY]["kind"] == "authorization"
    assert session["no active session"].value()["_meta"][ERROR_META_KEY]["reason"] == (
        "no_active_session"
    )


def test_every_tool_publishes_an_output_schema(session: dict[str, Outcome]) -> None:
    tools = session["tools"].value()["tools"]
    assert len(tools) == 7
    assert all("outputSchema" in tool for tool in tools)


@pytest.mark.parametrize(
    "step", ["start", "checkpoint", "status", "list", "end", "whoami", "envelope"]
)
def test_every_success_passes_the_clients_schema_validation(
    session: dict[str, Outcome], step: str
) -> None:
    result = session[step].value()
    assert result.get("isError") is not True, tool_text(result)
    assert isinstance(result["structuredContent"], dict)


def test_over_http_a_bearer_without_write_gets_the_403_step_up_with_our_message(
    http_server: ServerProcess, workdir: Path
) -> None:
    """The TypeScript client throws the HTTP 403 (the spec's step-up) with our JSON-RPC
    error in its message, and the connection keeps serving what the token allows."""
    project = make_git_repo(workdir / "project-bearer")
    steps = {
        "tools": list_tools(),
        "start": call_tool("start_session", working_directory=str(project)),
        "whoami": call_tool("whoami"),
        "list": call_tool("list_sessions"),
    }
    outcomes = run_script(Http(http_server.url, bearer(read_only_token())), steps)
    start = outcomes["start"]
    assert not start.ok and start.code == 403
    assert MISSING_WRITE in start.message and '"error":"insufficient_scope"' in start.message
    assert outcomes["whoami"].value()["structuredContent"]["user_id"] == "reader"
    assert outcomes["list"].value()["structuredContent"]["sessions"] == []
