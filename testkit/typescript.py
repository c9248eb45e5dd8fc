"""The official TypeScript SDK client (npm ``@modelcontextprotocol/sdk``), driven from Python.

Claude Code, the MCP Inspector, Cursor and VS Code all use that client, and it is stricter
than the Python one: ``Client.callTool`` validates ``structuredContent`` against the tool's
output schema even on error results. :func:`run_typescript_client` starts
``testkit/node/tsclient/run.mjs`` (installed by ``make node``) with node, connects it over
stdio (:class:`Stdio`: the client spawns the server) or streamable HTTP (:class:`Http`,
optional extra headers such as ``Authorization``), runs a list of operations in order and
returns one :class:`Outcome` per operation — a failed one carries the exact message of the
error the SDK threw, which is what a user of those clients sees.

Operations are plain dictionaries built by the functions below (:func:`list_tools`,
:func:`call_tool`, :func:`request`, :func:`reconnect`, …), so a caller can script a whole
session (several connections in a row, each with its own ``mcp-session-id``) in one run.
The specification travels on the script's stdin, so tokens never appear in a command line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.processes import REPO_ROOT

NODE_DIR = REPO_ROOT / "testkit" / "node"
TSCLIENT_DIR = NODE_DIR / "tsclient"
SCRIPT = TSCLIENT_DIR / "run.mjs"
REQUEST_TIMEOUT = 30.0


class TypeScriptClientUnavailable(RuntimeError):
    """node, or the client's npm packages, are not installed (the message says how to fix)."""


def node_executable() -> str:
    """The ``node`` on PATH (Node.js 20 or later)."""
    node = shutil.which("node")
    if node is None:
        raise TypeScriptClientUnavailable("node is not on PATH: install Node.js 20 or later")
    return node


def require_installed(directory: Path = TSCLIENT_DIR) -> None:
    """Fail clearly when ``npm ci`` has not run in ``directory`` (``make node`` runs it)."""
    if not (directory / "node_modules").is_dir():
        raise TypeScriptClientUnavailable(
            f"{directory.relative_to(REPO_ROOT)}/node_modules is missing: run `make node`"
        )


# -- transports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stdio:
    """The client starts ``command`` and speaks MCP over its stdin/stdout.

    The server's stderr is appended to ``stderr_file`` (if given). The TypeScript SDK adds
    a few safe variables (``HOME``, ``PATH``, …) to ``env``, as it does for every user.
    """

    command: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    stderr_file: Path | None = None

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "stdio",
            "command": self.command[0],
            "args": list(self.command[1:]),
            "env": dict(self.env),
            "cwd": str(self.cwd),
            "stderrFile": None if self.stderr_file is None else str(self.stderr_file),
        }


@dataclass(frozen=True)
class Http:
    """Streamable HTTP at ``url``, with ``headers`` on every request."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        return {"kind": "http", "url": self.url, "headers": dict(self.headers)}


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


# -- operations ---------------------------------------------------------------------------


def list_tools() -> dict[str, Any]:
    """``tools/list``; the client then validates every later call of a tool with an output
    schema (as Claude Code does, since it lists tools first)."""
    return {"op": "listTools"}


def call_tool(name: str, **arguments: Any) -> dict[str, Any]:
    """``Client.callTool`` with ``arguments``."""
    return {"op": "callTool", "name": name, "arguments": arguments}


def ping() -> dict[str, Any]:
    return {"op": "ping"}


def list_prompts(**params: Any) -> dict[str, Any]:
    return {"op": "listPrompts", "params": params or None}


def get_prompt(name: str, **arguments: str) -> dict[str, Any]:
    return {"op": "getPrompt", "params": {"name": name, "arguments": arguments}}


def list_resources(**params: Any) -> dict[str, Any]:
    return {"op": "listResources", "params": params or None}


def request(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Any JSON-RPC request; its result is only checked to be an object."""
    return {"op": "request", "method": method, "params": params}


def session_id() -> dict[str, Any]:
    """The current HTTP connection's ``mcp-session-id`` (``None`` over stdio)."""
    return {"op": "sessionId"}


def terminate_session() -> dict[str, Any]:
    """HTTP ``DELETE`` of the current session."""
    return {"op": "terminateSession"}


def reconnect() -> dict[str, Any]:
    """Close the connection and open a new one (a new server process, or a new session)."""
    return {"op": "reconnect"}


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one operation gave: a result, or the error the SDK threw (``name``, ``message``,
    ``code`` for JSON-RPC errors, ``data``)."""

    op: str
    ok: bool
    result: Any = None
    error: Mapping[str, Any] | None = None

    @property
    def message(self) -> str:
        """The thrown error's message (``""`` for a success)."""
        return "" if self.error is None else str(self.error.get("message", ""))

    @property
    def code(self) -> int | None:
        return None if self.error is None else self.error.get("code")

    def value(self) -> Any:
        """The result of an operation that must have succeeded."""
        assert self.ok, f"{self.op} failed: {self.error}"
        return self.result


@dataclass(frozen=True)
class Run:
    """A whole run: the connection's outcome (server info, capabilities, protocol version,
    session id), one outcome per operation, and anything the transport reported."""

    connect: Outcome
    outcomes: list[Outcome]
    transport_errors: list[str]
    stderr: str

    def __getitem__(self, index: int) -> Outcome:
        return self.outcomes[index]


def tool_text(result: Mapping[str, Any]) -> str:
    """The text blocks of a ``tools/call`` result, one per line."""
    return "\n".join(
        str(block.get("text", ""))
        for block in result.get("content", [])
        if block.get("type") == "text"
    )


def run_typescript_client(
    transport: Stdio | Http,
    operations: Sequence[Mapping[str, Any]],
    *,
    request_timeout: float = REQUEST_TIMEOUT,
    timeout: float | None = None,
) -> Run:
    """Connect the TypeScript SDK client over ``transport`` and run ``operations`` in order.

    Each request may take ``request_timeout`` seconds; the whole run ``timeout`` (by
    default enough for every request). Raises :class:`TypeScriptClientUnavailable` when
    node or the npm packages are missing, :class:`RuntimeError` when the script itself
    fails (its stderr says why).
    """
    require_installed()
    spec = {
        "transport": transport.spec(),
        "timeoutMs": int(request_timeout * 1000),
        "operations": list(operations),
    }
    limit = timeout if timeout is not None else request_timeout * (len(operations) + 2) + 30
    completed = subprocess.run(
        [node_executable(), str(SCRIPT)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=TSCLIENT_DIR,
        timeout=limit,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"the TypeScript client exited with {completed.returncode}: {completed.stderr[-2000:]}"
        )
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    outcomes = [
        Outcome(line["op"], bool(line["ok"]), line.get("result"), line.get("error"))
        for line in lines
    ]
    transport_errors: list[str] = []
    if outcomes and outcomes[-1].op == "transportErrors":
        transport_errors = list(outcomes.pop().result)
    if not outcomes or outcomes[0].op != "connect":
        raise RuntimeError(
            f"the TypeScript client printed no connection line: {completed.stdout!r}"
        )
    return Run(outcomes[0], outcomes[1:], transport_errors, completed.stderr)
