"""docs/DEPLOYMENT.md shows the PostgreSQL commands exactly as ``db backup`` and ``db restore``
print them (which the tests run against a real PostgreSQL)."""

from __future__ import annotations

import re
import shlex

from session_buddy.mcp.shutdown import STOP_WITHIN_SECONDS
from session_buddy.store.backup import pg_dump_command, pg_restore_command
from testkit.processes import REPO_ROOT

DEPLOYMENT = REPO_ROOT / "docs" / "DEPLOYMENT.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def shown(tool: str) -> list[str]:
    """The one bash block of the doc that runs ``tool``, as arguments."""
    blocks = [b for b in BLOCK.findall(DEPLOYMENT.read_text()) if b.startswith(f"{tool} ")]
    assert len(blocks) == 1, f"expected one {tool} block"
    return shlex.split(blocks[0].replace("\\\n", " "))


def option(arguments: list[str], name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in arguments if a.startswith(f"--{name}=")]
    return value


def test_the_documented_pg_dump_is_the_printed_one() -> None:
    documented = shown("pg_dump")
    url = option(documented, "dbname")

    assert documented == pg_dump_command(url, option(documented, "file"))


def test_the_documented_pg_restore_is_the_printed_one() -> None:
    documented = shown("pg_restore")

    assert documented == pg_restore_command(option(documented, "dbname"), documented[-1])


def test_the_stated_stop_bound_is_the_one_the_server_keeps() -> None:
    """Every "exits 0 within N s" the operator reads is ``STOP_WITHIN_SECONDS``, which the
    rolling-restart and systemd tests hold each instance to."""
    for doc in (DEPLOYMENT, REPO_ROOT / "README.md"):
        stated = {int(n) for n in re.findall(r"within (\d+) s", doc.read_text())} & set(
            range(5, 30)
        )
        assert stated == {STOP_WITHIN_SECONDS}, (doc.name, stated)


def test_the_load_balancer_section_is_complete() -> None:
    """The walk from one instance to three installs the shipped HAProxy file, and every
    figure the section promises is filled in."""
    text = DEPLOYMENT.read_text()
    assert "install -m 0644 deploy/haproxy/haproxy.cfg /etc/haproxy/haproxy.cfg" in text
    assert (REPO_ROOT / "deploy" / "haproxy" / "haproxy.cfg").is_file()
    assert not re.search(r"^[A-Z_]+_FIGURES$", text, re.MULTILINE)
    for heading in ("## Behind a load balancer", "### From one instance to three", "## Sizing"):
        assert heading in text
