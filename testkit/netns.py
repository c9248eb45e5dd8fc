"""Network namespaces as separate "hosts" on one machine.

``Host("a")`` creates a namespace with a veth pair: ``eth0`` inside has ``host.address``
(``10.231.X.2/24``) and the root-namespace end, ``host.veth``, has ``host.gateway``
(``10.231.X.1``)::

    with Host("a") as a, Host("b") as b:
        server = a.popen(["python3", "-m", "http.server", "8000", "--bind", a.address])
        a.wait_for_port(8000)                       # reachable from the root namespace
        b.run(["curl", f"http://{a.address}:8000/"])   # and from host b, through the root

Each namespace has loopback up and one route, to ``BASE_NETWORK`` (10.231.0.0/16) through its
gateway: a host reaches the root namespace's veth addresses and the other hosts, and nothing
else (no default route, no NAT). Host-to-host packets are forwarded by the root namespace only
because forwarding is switched on for the hosts' own veths (``net.ipv4.conf.<veth>.forwarding``);
the global ``net.ipv4.ip_forward`` is left alone. A server in the root namespace that should be
reachable from a host listens on ``host.gateway``.

Names carry the creating process's pid (``sbtk-<pid>-<n>-<label>``, veth ``sbtk<pid>h<n>``): a
``Host`` is removed by ``close()``, by the context manager or at exit, and namespaces and links
left by a process that no longer exists are removed before the first host is created. The
/24 of each host is chosen, under a lock, among those that no address or route of the root
namespace overlaps.

Network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2;
``netns_unavailable_reason()`` says why they cannot be used here (``None`` when they can), for a
``pytest.skip``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from testkit.processes import alive, kill_and_wait  # the standard library only, like this module

__all__ = [
    "BASE_NETWORK",
    "Host",
    "NetnsError",
    "NetnsUnavailable",
    "netns_unavailable_reason",
    "remove_stale",
    "require_netns",
]

BASE_NETWORK = ipaddress.IPv4Network("10.231.0.0/16")
PREFIX = "sbtk"
_NETNS_RE = re.compile(rf"{PREFIX}-(\d+)-\S*")
_LINK_RE = re.compile(rf"{PREFIX}(\d+)h\w+")
_IFNAMSIZ = 15


class NetnsError(RuntimeError):
    """An ``ip`` command failed while creating or removing a host."""


class NetnsUnavailable(NetnsError):
    """Network namespaces cannot be used here; the message says why."""


# -- running ip ----------------------------------------------------------------------------


_IP_PATHS = ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip")  # when not on $PATH


def _ip_binary() -> str:
    found = shutil.which("ip") or next((p for p in _IP_PATHS if os.access(p, os.X_OK)), None)
    if found is None:
        raise NetnsUnavailable("iproute2's `ip` is not installed (apt-get install -y iproute2)")
    return found


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [_ip_binary(), *args], capture_output=True, text=True, check=False, timeout=30
    )
    if check and result.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()]


def _links() -> list[str]:
    names = []
    for line in _ip("-o", "link", "show").stdout.splitlines():
        match = re.match(r"\d+:\s+([^:@\s]+)", line)
        if match:
            names.append(match.group(1))
    return names


def _kill_namespace_processes(name: str) -> None:
    pids = [int(p) for p in _ip("netns", "pids", name, check=False).stdout.split() if p.isdigit()]
    kill_and_wait(pids, timeout=5)


def _remove(name: str, veth: str | None) -> None:
    _kill_namespace_processes(name)
    if veth is not None:
        _ip("link", "del", veth, check=False)
    _ip("netns", "del", name, check=False)


# -- availability and stale hosts ----------------------------------------------------------

_unavailable: list[str | None] = []  # the cached probe result


def netns_unavailable_reason() -> str | None:
    """Why network namespaces cannot be used here, or ``None`` when they can (cached)."""
    if not _unavailable:
        _unavailable.append(_probe())
    return _unavailable[0]


def require_netns() -> None:
    """Raise ``NetnsUnavailable`` (with the reason) unless network namespaces can be used."""
    reason = netns_unavailable_reason()
    if reason is not None:
        raise NetnsUnavailable(reason)


def _probe() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux-only (this is {sys.platform})"
    try:
        _ip_binary()
    except NetnsUnavailable as error:
        return str(error)
    name, veth = f"{PREFIX}-{os.getpid()}-probe", f"{PREFIX}{os.getpid()}hp"
    steps: list[tuple[str, Sequence[str]]] = [
        ("create a network namespace", ("netns", "add", name)),
        (
            "create a veth pair",
            ("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name),
        ),
        ("enter a network namespace", ("netns", "exec", name, "true")),
    ]
    try:
        for what, args in steps:
            result = _ip(*args, check=False)
            if result.returncode != 0:
                return (
                    f"cannot {what} (`ip {' '.join(args)}`: {result.stderr.strip()}); network "
                    "namespaces need root, or CAP_SYS_ADMIN and CAP_NET_ADMIN"
                )
        try:
            _enable_forwarding(veth)
        except OSError as error:
            return f"cannot enable forwarding on a veth, so hosts cannot reach each other: {error}"
        return None
    finally:
        _remove(name, veth)


def remove_stale() -> list[str]:
    """Remove namespaces and veths whose creating process no longer exists; their names."""
    removed = []
    for name in _namespaces():
        match = _NETNS_RE.fullmatch(name)
        if match and not alive(int(match.group(1))):
            _remove(name, None)
            removed.append(name)
    for link in _links():
        match = _LINK_RE.fullmatch(link)
        if not match or alive(int(match.group(1))):
            continue
        # deleting one end of a veth deletes both, so the second end may be gone already
        if _ip("link", "del", link, check=False).returncode == 0:
            removed.append(link)
    return removed


# -- addresses -----------------------------------------------------------------------------


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    """Serialises choosing a /24 between processes (other checkouts run these tests too)."""
    directory = "/run/lock" if os.access("/run/lock", os.W_OK) else tempfile.gettempdir()
    with open(Path(directory) / f"{PREFIX}-netns.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        match = re.search(r"\binet (\S+)", line)
        if match:
            used.append(ipaddress.IPv4Interface(match.group(1)).network)
    route_types = {"local", "broadcast", "unicast", "unreachable", "prohibit", "blackhole", "throw"}
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        words = line.split()
        if words and words[0] in route_types:
            words = words[1:]
        if words and words[0] != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(words[0], strict=False))
    return used


def _free_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    subnets = list(BASE_NETWORK.subnets(new_prefix=24))[1:-1]
    start = os.getpid() % len(subnets)  # concurrent runs start at different places
    for subnet in subnets[start:] + subnets[:start]:
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise NetnsError(f"no /24 of {BASE_NETWORK} is free of this machine's addresses and routes")


def _enable_forwarding(veth: str) -> None:
    Path(f"/proc/sys/net/ipv4/conf/{veth}/forwarding").write_text("1\n")


# -- hosts ---------------------------------------------------------------------------------

_LIVE: set[Host] = set()
_counter = itertools.count(1)
_stale_removed: list[bool] = []


class Host:
    """A network namespace with one veth to the root namespace; see the module docstring."""

    def __init__(self, label: str = "host") -> None:
        require_netns()
        if not _stale_removed:
            remove_stale()
            _stale_removed.append(True)
        n = next(_counter) % 1000
        self.label = re.sub(r"[^a-z0-9]", "", label.lower())[:20] or "host"
        self.name = f"{PREFIX}-{os.getpid()}-{n}-{self.label}"
        self.veth = f"{PREFIX}{os.getpid()}h{n}"
        assert len(self.veth) <= _IFNAMSIZ, self.veth
        self._processes: list[subprocess.Popen[Any]] = []
        self._root_addresses = 0
        self._closed = False
        _LIVE.add(self)
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        _ip("netns", "add", self.name)
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        with _allocation_lock():
            self.network = _free_subnet()
            self.gateway = str(self.network.network_address + 1)
            self.address = str(self.network.network_address + 2)
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.veth)
        _enable_forwarding(self.veth)
        _ip("link", "set", self.veth, "up")
        inside = ("-n", self.name)
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "addr", "add", f"{self.address}/24", "dev", "eth0")
        _ip(*inside, "link", "set", "eth0", "up")
        _ip(*inside, "route", "add", str(BASE_NETWORK), "via", self.gateway)

    def add_root_address(self) -> str:
        """One more address of the root namespace, in this host's /24 (``.3`` upwards, on
        ``veth``), removed with the host.

        A client in the root namespace bound to it reaches this host and every other one (they
        route ``BASE_NETWORK`` through the root namespace), and each of them sees it as the
        same client: the way to be several distinct clients, or one client of several hosts.
        """
        number = 3 + self._root_addresses
        if number > self.network.num_addresses - 2:
            raise NetnsError(f"no more addresses in {self.network} for {self.name}")
        self._root_addresses += 1
        address = str(self.network.network_address + number)
        _ip("addr", "add", f"{address}/32", "dev", self.veth)
        return address

    @property
    def exec_prefix(self) -> list[str]:
        """Prepend to a command to run it inside this host."""
        return [_ip_binary(), "netns", "exec", self.name]

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 30, **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` inside the host (output captured as text unless told otherwise)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run([*self.exec_prefix, *argv], check=check, timeout=timeout, **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` inside the host; the process is killed when the host closes."""
        process = subprocess.Popen([*self.exec_prefix, *argv], **kwargs)
        self._processes.append(process)
        return process

    def wait_for_port(self, port: int, *, address: str | None = None, timeout: float = 10) -> None:
        """Wait until something in the host accepts TCP connections on ``port``, connecting
        from the root namespace to ``address`` (the host's own by default)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((address or self.address, port), timeout=1):
                    return
            except OSError as error:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"nothing accepted connections on {address or self.address}:{port} "
                        f"in {self.name} within {timeout} s: {error}"
                    ) from None
                time.sleep(0.02)

    def close(self) -> None:
        """Kill everything running inside, then remove the namespace and the veth pair."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(3)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        _remove(self.name, self.veth)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        address = getattr(self, "address", "?")
        return f"<Host {self.name} {address} via {getattr(self, 'gateway', '?')}>"


@atexit.register
def _close_all() -> None:
    for host in list(_LIVE):
        host.close()
