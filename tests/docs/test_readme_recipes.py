"""The README's recipes work as a user runs them: the quick start leaves one secret that the
server and Claude Code's ``headersHelper`` share; the raw-HTTP (curl) recipe talks to a real
server as written; the tool reference names every tool with its real arguments and scope.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest

from session_buddy.config import load_settings
from session_buddy.mcp.server import build_server
from session_buddy.mcp.tools import SessionTools
from session_buddy.runtime import Runtime
from testkit.environment import clean_environment, new_secret
from testkit.mcp import INITIALIZE, JSON_RPC_HEADERS, tools_call
from testkit.processes import REPO_ROOT
from testkit.server import SCRIPT, launch_http_server

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
RECIPE_MARKER = "<!-- runnable against a server: bash -->"
DOC_PORT = "8678"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def recipe() -> str:
    text = readme()
    after = text[text.index(RECIPE_MARKER) + len(RECIPE_MARKER) :].lstrip("\n")
    assert after.startswith("```bash\n")
    return after.removeprefix("```bash\n").split("\n```", 1)[0]


def user_environment(home: Path) -> dict[str, str]:
    """A new user's shell: their own home (so the default data dir is theirs), the
    installed command on PATH, no session-buddy settings at all."""
    env = clean_environment(
        HOME=str(home), PATH=f"{SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    env.pop("XDG_DATA_HOME", None)
    return env


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_the_quick_start_leaves_one_secret_for_the_server_and_the_headers_helper(
    tmp_path: Path,
) -> None:
    env = user_environment(tmp_path / "home")
    saved = run(env, tmp_path, "secret", "generate", "--save")  # step 2
    assert saved.returncode == 0, saved.stderr
    status = run(env, tmp_path, "auth", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Authentication is enabled and correctly configured" in status.stdout
    with launch_http_server(env, tmp_path, port=None) as server:  # step 3, over HTTP
        helper = run(env, tmp_path, "token", "header", "claude", "--scope", "read")  # step 4
        assert helper.returncode == 0, helper.stderr
        headers = {**JSON_RPC_HEADERS, **json.loads(helper.stdout)}
        with httpx.Client(headers=headers, timeout=10) as client:
            opened = client.post(server.url, json=INITIALIZE)
            assert opened.status_code == 200, opened.text
            session = {"mcp-session-id": opened.headers["mcp-session-id"]}
            answer = client.post(server.url, json=tools_call("whoami", {}), headers=session)
    assert answer.status_code == 200
    assert '"user_id":"claude"' in answer.text.replace(" ", "")


def test_the_raw_http_recipe_runs_as_written(tmp_path: Path) -> None:
    env = user_environment(tmp_path / "home")
    env["SESSION_BUDDY_SECRET"] = new_secret()
    with launch_http_server(env, tmp_path) as server:
        script = recipe().replace(DOC_PORT, str(server.port))
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["result"]["isError"] is False
    assert answer["result"]["structuredContent"]["user_id"] == "curl"


def _reference_rows() -> dict[str, tuple[set[str], str]]:
    """The README's tool table: tool -> (argument names, scope cell)."""
    text = readme()
    table = text[text.index("| Tool | Arguments | Scope |") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        tool, arguments, scope, _ = (cell.strip() for cell in line.strip("|").split(" | "))
        arguments = re.sub(r"\(.*?\)", "", arguments)  # explanations may hold `names` too
        scope = re.sub(r"\s*\(.*?\)$", "", scope)  # and the scope an explanation after it
        rows[tool.strip("`")] = (set(re.findall(r"`(\w+)`", arguments)), scope)
    return rows


def test_the_tool_reference_names_every_tool_its_arguments_and_its_scope(
    tmp_path: Path,
) -> None:
    runtime = Runtime.build(load_settings(secret=new_secret(), data_dir=tmp_path))
    tools = anyio.run(build_server(runtime).list_tools)
    specs = {
        method.__name__: spec
        for method, spec in SessionTools(runtime.sessions, runtime.manager).specs().items()
    }
    rows = _reference_rows()
    assert set(rows) == {tool.name for tool in tools}
    for tool in tools:
        arguments, scope = rows[tool.name]
        assert arguments == set(tool.input_schema["properties"]) - {"token"}, tool.name
        expected = specs[tool.name].scope
        assert scope == (f"`{expected}`" if expected else "none: any caller, or none at all")
    runtime.close()
