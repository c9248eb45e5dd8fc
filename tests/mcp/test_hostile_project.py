"""A caller's project is hostile: its git config names programs, its paths are symlinks.

Real servers over stdio (authentication on, the secret in their environment), each started
in a working directory of its own whose name must never reach a caller. The session tools
must run no program a repository's configuration names, and their refusals must name paths
only as the caller spelled them: never where a symlink leads, never the server's directory.
What the server writes about those projects is readable by its user only.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal

from testkit import git as gitops
from testkit.environment import new_secret, server_environment
from testkit.mcp import McpConnection, connect, ok, stdio_transport, text_of
from testkit.tokens import mint

pytestmark = pytest.mark.e2e

SERVER_DIRECTORY = "server-cwd-do-not-reveal"


@dataclass
class Deployment:
    conn: McpConnection
    token: str
    cwd: Path

    def call(self, tool: str, **arguments: object) -> tuple[bool, str]:
        result = self.conn.call(tool, token=self.token, **arguments)
        return result.is_error, text_of(result)


def _serve(portal: BlockingPortal, workdir: Path, **settings: str) -> Iterator[Deployment]:
    secret = new_secret()
    cwd = workdir / SERVER_DIRECTORY
    cwd.mkdir()
    env = server_environment(workdir / "data", secret, **settings)
    with (workdir / "stderr.log").open("w") as errlog:
        conn = connect(portal, stdio_transport(env, cwd, errlog))
        try:
            yield Deployment(conn, mint(secret, "alice"), cwd)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def anywhere(
    portal: BlockingPortal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A server that accepts any directory (no allowed roots)."""
    yield from _serve(portal, tmp_path_factory.mktemp("anywhere"))


@pytest.fixture(scope="module")
def rooted(
    portal: BlockingPortal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A server whose allowed root is ``<workdir>/roots``."""
    workdir = tmp_path_factory.mktemp("rooted")
    (workdir / "roots").mkdir()
    yield from _serve(portal, workdir, SESSION_BUDDY_ALLOWED_ROOTS=str(workdir / "roots"))


# -- git runs nothing the repository configures ------------------------------------------


def test_the_session_tools_run_no_program_from_the_repository_config(
    anywhere: Deployment, repo: Path, tmp_path: Path
) -> None:
    record = tmp_path / "program-ran.log"
    program = gitops.recording_program(tmp_path / "program.sh", record)
    gitops.commit_filtered_file(repo)
    gitops.git(repo, "config", "filter.evil.clean", str(program))
    gitops.git(repo, "config", "core.fsmonitor", str(program))
    gitops.make_stat_dirty(repo, "file.txt")
    assert gitops.plain_status_runs(repo, record)

    started = ok(
        anywhere.conn.call("start_session", working_directory=str(repo), token=anywhere.token)
    )
    gitops.make_stat_dirty(repo, "file.txt")
    ok(anywhere.conn.call("checkpoint", working_directory=str(repo), token=anywhere.token))
    gitops.make_stat_dirty(repo, "file.txt")
    ok(anywhere.conn.call("end_session", working_directory=str(repo), token=anywhere.token))

    assert not record.exists()
    assert started["snapshot"]["git"]["changed_files"] == 0


# -- what the server writes is private -----------------------------------------------------


def test_the_data_dir_the_server_creates_and_its_files_are_private(
    anywhere: Deployment, repo: Path
) -> None:
    ok(anywhere.conn.call("start_session", working_directory=str(repo), token=anywhere.token))
    data_dir = anywhere.cwd.parent / "data"

    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in data_dir.iterdir()}

    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert {"session-buddy.db", "session-buddy.db-wal", "session-buddy.db-shm"} <= modes.keys()
    assert set(modes.values()) == {0o600}, modes


# -- refusals name paths as the caller spelled them ---------------------------------------


def test_a_symlink_out_of_the_roots_is_refused_without_its_target(
    rooted: Deployment, tmp_path: Path
) -> None:
    target = tmp_path / "target-do-not-reveal"
    target.mkdir()
    link = rooted.cwd.parent / "roots" / "escape"
    link.symlink_to(target)

    for tool in ("start_session", "session_status", "checkpoint", "end_session"):
        failed, text = rooted.call(tool, working_directory=str(link))
        assert failed, tool
        assert "outside the allowed roots" in text
        assert "target-do-not-reveal" not in text
        assert "resolves to" not in text


@pytest.mark.parametrize("raw", ["/proc/self/cwd", "/proc/self/cwd/..", "/dev/fd/../cwd"])
def test_the_servers_working_directory_is_never_shown(
    anywhere: Deployment, rooted: Deployment, raw: str
) -> None:
    for server in (anywhere, rooted):
        for tool in ("start_session", "session_status", "checkpoint", "list_sessions"):
            failed, text = server.call(tool, working_directory=raw)
            assert failed, (tool, text)
            assert SERVER_DIRECTORY not in text
            assert str(server.cwd.parent) not in text.replace(str(server.cwd.parent / "roots"), "")


def test_a_symlink_to_the_servers_directory_is_refused_without_naming_it(
    anywhere: Deployment, tmp_path: Path
) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/proc/self/cwd")

    failed, text = anywhere.call("start_session", working_directory=str(link))

    assert failed
    assert text.endswith(
        f"working directory {link} leads into /proc; name the project directory itself"
    )


def test_no_session_messages_name_the_link_not_its_target(
    anywhere: Deployment, repo: Path, tmp_path: Path
) -> None:
    link = tmp_path / "shortcut"
    link.symlink_to(repo)

    _, status = anywhere.call("session_status", working_directory=str(link))
    failed, checkpoint = anywhere.call("checkpoint", working_directory=str(link))

    assert f"No active session for {link};" in status
    assert str(repo) not in status
    assert failed
    assert f"No active session for {link};" in checkpoint
    assert str(repo) not in checkpoint
