"""HAProxy (Debian's package) running the balancer configuration that ships in ``deploy/``.

:func:`launch_balancer` starts ``haproxy -db -f deploy/haproxy/haproxy.cfg`` — the shipped
file itself, never a copy — with the addresses in the environment variables the file
reads (``SB_BALANCER_BIND``, ``SB_INSTANCE_1`` … ``_3``, ``SB_BALANCER_SOCKET``),
optionally inside a network namespace (``prefix``: :attr:`testkit.netns.Host.exec_prefix`).
Its log (one line per request, naming the instance that answered it) goes to a file;
:class:`Balancer` reads it and the runtime API (``show stat``: each instance's state and
counts; ``disable server`` / ``enable server``), and stops HAProxy when the block ends.

HAProxy comes from Debian (``apt-get install haproxy``; ``.ci/run`` installs it when it is
missing); without it the tests fail (:class:`HaproxyUnavailable`) rather than skip.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testkit.processes import REPO_ROOT

CONFIG = REPO_ROOT / "deploy" / "haproxy" / "haproxy.cfg"
BACKEND = "session_buddy"
SERVERS = ("sb1", "sb2", "sb3")  # the shipped file's server lines, in order
_PATHS = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
# httplog: '... frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes ... "METHOD /path HTTP/1.1"'
_LOG_LINE = re.compile(
    r"(?P<client>\S+):(?P<port>\d+) \[[^\]]+\] \S+ (?P<backend>[^/\s]+)/(?P<server>\S+) "
    r"\S+ (?P<status>-?\d+) \S+ \S+ \S+ (?P<termination>\S+) .*\"(?P<method>[A-Z]+) "
    r"(?P<path>\S+)"
)


class HaproxyUnavailable(RuntimeError):
    """HAProxy is not installed (the message says how to install it)."""


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or next((p for p in _PATHS if os.access(p, os.X_OK)), None)
    if found is None:
        raise HaproxyUnavailable("HAProxy is not installed (apt-get install haproxy)")
    return found


def environment(
    bind: str, instances: Sequence[str], socket_path: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables the shipped configuration reads: where it listens, the instances
    (``address:port``, at most three) and its runtime API socket."""
    if len(instances) > len(SERVERS):
        raise ValueError(f"the shipped configuration has {len(SERVERS)} server lines")
    env = dict(os.environ if base is None else base)
    env["SB_BALANCER_BIND"] = bind
    env["SB_BALANCER_SOCKET"] = str(socket_path)
    for number, address in enumerate(instances, start=1):
        env[f"SB_INSTANCE_{number}"] = address
    return env


def check_configuration(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``haproxy -c`` of the shipped file with ``env``."""
    return subprocess.run(
        [haproxy_binary(), "-c", "-f", str(CONFIG)],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclass(frozen=True)
class Request:
    """One line of HAProxy's request log."""

    client: str
    client_port: int
    server: str
    status: int
    termination: str
    method: str
    path: str


@dataclass
class Balancer:
    """A running HAProxy: its process, where clients reach it, its runtime API and log."""

    process: subprocess.Popen[bytes]
    address: str
    port: int
    socket_path: Path
    log_path: Path
    instances: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/mcp"

    def command(self, line: str) -> str:
        """One runtime API command (``show stat``, ``disable server session_buddy/sb2``)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend's servers: name -> the CSV's columns (``status``:
        ``UP``, ``DOWN``, ``MAINT``, ``UP 1/2`` …; ``stot``: requests sent to it …)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(text.splitlines())
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def states(self) -> dict[str, str]:
        return {name: row["status"] for name, row in self.stats().items()}

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], *, timeout: float = 15.0
    ) -> float:
        """Seconds until ``predicate(states())`` holds; ``TimeoutError`` with the states."""
        started = time.monotonic()
        while True:
            states = self.states()
            if predicate(states):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"HAProxy's servers stayed {states} for {timeout:g} s")
            time.sleep(0.02)

    def wait_all_up(self, *, timeout: float = 15.0) -> float:
        return self.wait_for(lambda s: all(v == "UP" for v in s.values()), timeout=timeout)

    def requests(self) -> list[Request]:
        """Every request logged so far (health checks are not logged)."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = _LOG_LINE.search(line)
            if match is not None and match["backend"] == BACKEND:
                found.append(
                    Request(
                        client=match["client"],
                        client_port=int(match["port"]),
                        server=match["server"],
                        status=int(match["status"]),
                        termination=match["termination"],
                        method=match["method"],
                        path=match["path"],
                    )
                )
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> Balancer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def launch_balancer(
    instances: Sequence[str],
    *,
    address: str,
    port: int,
    workdir: Path,
    prefix: Sequence[str] = (),
    timeout: float = 15.0,
) -> Balancer:
    """Start HAProxy with the shipped configuration in front of ``instances``
    (``address:port`` each) and wait until it accepts connections (not until the instances
    are up: :meth:`Balancer.wait_all_up`)."""
    socket_path = workdir / "haproxy.sock"
    log_path = workdir / "haproxy.log"
    env = environment(f"{address}:{port}", instances, socket_path)
    checked = check_configuration(env)
    if checked.returncode != 0:
        raise RuntimeError(f"haproxy -c refused the shipped configuration: {checked.stderr}")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*prefix, haproxy_binary(), "-db", "-f", str(CONFIG)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    balancer = Balancer(process, address, port, socket_path, log_path, list(instances))
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited with {process.returncode}: {log_path.read_text()}")
        try:
            balancer.states()
            with socket.create_connection((address, port), timeout=1):
                return balancer
        except OSError:
            if time.monotonic() > deadline:
                balancer.stop()
                raise
            time.sleep(0.05)
