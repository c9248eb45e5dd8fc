"""A real, throwaway PostgreSQL server for tests.

``PostgresServer`` runs ``initdb`` in a fresh temporary directory and the ``postgres`` postmaster
as a direct child process, on a free port of 127.0.0.1 (plus optional extra listen addresses)
and a unix socket inside that directory::

    with PostgresServer() as server:
        server.create_role("app", "secret")
        server.create_database("app", owner="app")
        url = server.url(user="app", password="secret", dbname="app")

TCP connections use scram-sha-256 password authentication (the superuser ``postgres`` has the
password ``server.superuser_password``); ``ssl=True`` turns SSL on with a certificate signed by a
throwaway CA (``server.ca_path``, for ``sslrootcert``) and accepts TCP connections only over SSL
(``hostssl``); connections over the unix socket, which lives in a
directory only root and the server's user can enter, are trusted and are what the admin helpers
(``connect``, ``execute``, ``psql``, ``create_role``, ...) use.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
(created by Debian's ``postgresql`` package); as any other user it runs as that user. The server
dies with the thread that started it (``PR_SET_PDEATHSIG``), ``close()`` (also called by the
context manager and at exit) stops it and removes the directory, and directories left by a
process that no longer exists are removed when the next server is created.

One server per test session is the intended use (see ``testkit.pytest_postgres``); databases
are cheap (``CREATE DATABASE ... TEMPLATE template0``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from testkit.processes import alive, children_of, die_with_parent, kill_and_wait
from testkit.server import free_port

__all__ = [
    "PostgresError",
    "PostgresNotInstalled",
    "PostgresServer",
    "find_bin_dir",
]

INSTALL_HINT = (
    "install it with: apt-get update && apt-get install -y postgresql "
    "(or point TESTKIT_PG_BIN at a directory holding initdb and postgres)"
)
SUPERUSER = "postgres"
DIR_PREFIX = "sbtk-pg-"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

#: Settings for a disposable server: nothing has to survive a machine crash, but what was
#: committed survives ``kill()`` (so ``synchronous_commit`` stays on: with it off, a commit
#: returns while its WAL is still in shared memory, which a SIGKILL of every process loses).
DEFAULT_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "100",
    "timezone": "'UTC'",
    "log_line_prefix": "'%m [%p] '",
    "log_min_messages": "warning",
    "password_encryption": "'scram-sha-256'",
}

_PG_HBA = """\
# testkit: the unix socket (in a directory only root and the server's user can enter) is trusted;
# every TCP connection needs a password{ssl_note}.
local all all trust
{host}  all all 0.0.0.0/0 scram-sha-256
{host}  all all ::/0      scram-sha-256
"""


def _pg_hba(ssl: bool) -> str:
    if ssl:
        return _PG_HBA.format(ssl_note=" and SSL", host="hostssl")
    return _PG_HBA.format(ssl_note="", host="host   ")


def _write_certificates(directory: Path, host: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signed for ``host`` (and localhost):
    (ca.crt, server.crt, server.key), the key readable by its owner only."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testkit CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = (directory / n for n in ("ca.crt", "server.crt", "server.key"))
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(certificate.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


class PostgresNotInstalled(RuntimeError):
    """The PostgreSQL server binaries (or the ``postgres`` system user) are missing."""


class PostgresError(RuntimeError):
    """The server could not be initialised, started or stopped; the message has the log tail."""


def find_bin_dir(root: str | os.PathLike[str] = "/usr/lib/postgresql") -> Path:
    """The ``bin`` directory of the newest PostgreSQL under ``root`` (Debian's layout).

    ``$TESTKIT_PG_BIN`` overrides the search.
    """
    override = os.environ.get("TESTKIT_PG_BIN")
    candidates = [Path(override)] if override else []
    if not override:
        found = [p.parent for p in Path(root).glob("*/bin/initdb")]
        candidates = sorted(found, key=lambda p: _version_key(p.parent.name), reverse=True)
    for bin_dir in candidates:
        if all(os.access(bin_dir / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return bin_dir
    where = override if override else f"{root}/*/bin"
    raise PostgresNotInstalled(f"PostgreSQL server binaries not found in {where}; {INSTALL_HINT}")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (-1,)


class _Account:
    """Whom the server runs as: ``postgres`` when we are root, else ourselves."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                entry = pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise PostgresNotInstalled(
                    "PostgreSQL refuses to run as root and there is no 'postgres' system user "
                    f"to run it as; {INSTALL_HINT}"
                ) from None
            self.uid, self.gid = entry.pw_uid, entry.pw_gid
            self.groups = {self.gid} | {g.gr_gid for g in grp.getgrall() if SUPERUSER in g.gr_mem}
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
            self.groups = {self.gid, *os.getgroups()}

    def popen_kwargs(self) -> dict[str, Any]:
        # SIGQUIT (PostgreSQL's immediate shutdown) when the thread that started it dies
        kwargs: dict[str, Any] = {
            "preexec_fn": functools.partial(die_with_parent, signal.SIGQUIT),
            "umask": 0o077,
        }
        if self.as_root:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        return kwargs

    def can_enter(self, path: Path) -> bool:
        """Whether every directory from / down to ``path`` can be traversed by this account."""
        for directory in [path, *path.parents]:
            try:
                st = directory.stat()
            except OSError:
                return False
            if st.st_uid == self.uid:
                ok = st.st_mode & stat.S_IXUSR
            elif st.st_gid in self.groups:
                ok = st.st_mode & stat.S_IXGRP
            else:
                ok = st.st_mode & stat.S_IXOTH
            if not ok:
                return False
        return True

    def chown(self, path: Path) -> None:
        if self.as_root:
            os.chown(path, self.uid, self.gid)


def _base_parent(account: _Account) -> Path:
    """A temporary directory the server's account can reach, with room for a socket path."""
    # /tmp as the fallback when $TMPDIR is private (e.g. 0700) or too long for a socket path
    for candidate in (Path(tempfile.gettempdir()), Path("/tmp")):  # noqa: S108
        # the socket path ".../sbtk-pg-<pid>-XXXXXXXX/.s.PGSQL.NNNNN" must stay under 107 bytes
        if account.can_enter(candidate) and len(str(candidate)) < 60:
            return candidate
    raise PostgresError(
        f"neither {tempfile.gettempdir()} nor /tmp can be entered by uid {account.uid}; "
        "the server's directory must be reachable by the postgres user"
    )


class PostgresServer:
    """A PostgreSQL server in its own temporary directory; see the module docstring.

    ``start()`` runs ``initdb`` the first time and then starts the postmaster on the same data
    directory and port every time; ``stop()`` is a fast shutdown, ``kill()`` a SIGKILL of the
    postmaster and its children (a crash), ``close()`` stops it for good and removes everything.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        listen_addresses: Sequence[str] = ("127.0.0.1",),
        superuser_password: str | None = None,
        settings: Mapping[str, str] | None = None,
        bin_dir: str | os.PathLike[str] | None = None,
        ssl: bool = False,
    ) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir is not None else find_bin_dir()
        self._account = _Account()
        self.port = port if port is not None else free_port()
        self._port_chosen = port is None
        self.listen_addresses: list[str] = list(listen_addresses)
        #: the address ``url()`` uses by default
        self.host = next(
            (a for a in self.listen_addresses if a in ("127.0.0.1", "localhost", "*")),
            self.listen_addresses[0] if self.listen_addresses else "127.0.0.1",
        )
        if self.host in ("localhost", "*"):
            self.host = "127.0.0.1"
        self.superuser = SUPERUSER
        self.superuser_password = superuser_password or secrets.token_urlsafe(18)
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.ssl = ssl
        #: with ``ssl``: the CA that signed the server's certificate (``sslrootcert=``)
        self.ca_path: Path | None = None
        self.base_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._initialised = False
        self._closed = False

    # -- paths -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base() / "socket"

    @property
    def log_path(self) -> Path:
        return self._base() / "postgres.log"

    def _base(self) -> Path:
        if self.base_dir is None:
            raise PostgresError("the server has not been started yet")
        return self.base_dir

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (running ``initdb`` the first time) and wait until it accepts."""
        if self._closed:
            raise PostgresError("the server has been closed")
        if self.running:
            return
        if not self._initialised:
            self._initdb()
        attempts = 3 if self._port_chosen else 1
        for attempt in range(attempts):
            try:
                self._start_postmaster()
                return
            except PostgresError as error:
                if attempt + 1 == attempts or "Address already in use" not in str(error):
                    raise
                self.port = free_port()  # someone took the port between choosing and binding

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, disconnect, checkpoint, exit."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise PostgresError(
                f"PostgreSQL did not stop within {timeout:.0f} s and was killed\n{self.log_tail()}"
            ) from None

    def restart(self, *, listen_addresses: Sequence[str] | None = None) -> None:
        """Stop and start again on the same data directory and port (new addresses, if given)."""
        self.stop()
        if listen_addresses is not None:
            self.listen_addresses = list(listen_addresses)
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster and its children, as in a crash; ``start()`` recovers."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        children = children_of(process.pid)
        process.kill()
        process.wait()
        kill_and_wait(children, timeout=10)

    def freeze(self) -> None:
        """SIGSTOP the postmaster and its children: a host that stopped answering, its
        connections open but silent. :meth:`thaw` resumes it."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped."""
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: int) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        for pid in [process.pid, *children_of(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def close(self) -> None:
        """Stop the server (killing it if it will not stop) and remove its directory."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        try:
            try:
                self.stop(timeout=10)
            except PostgresError:
                self.kill()
        finally:
            if self.base_dir is not None:
                _remove_shared_memory(self.data_dir)
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def _initdb(self) -> None:
        _remove_stale_dirs(_base_parent(self._account))
        self.base_dir = Path(
            tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-", dir=_base_parent(self._account))
        )
        _LIVE.add(self)
        self._account.chown(self.base_dir)
        self.socket_dir.mkdir(mode=0o700)
        self._account.chown(self.socket_dir)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        self._account.chown(pwfile)
        command = [
            str(self.bin_dir / "initdb"),
            f"--pgdata={self.data_dir}",
            f"--username={self.superuser}",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]
        result = subprocess.run(
            command,
            cwd=self.base_dir,
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
            **self._account.popen_kwargs(),
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise PostgresError(
                f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )
        (self.data_dir / "pg_hba.conf").write_text(_pg_hba(self.ssl))
        settings = dict(self.settings)
        if self.ssl:
            self.ca_path, cert, key = _write_certificates(self.base_dir, self.host)
            for path in (cert, key):
                self._account.chown(path)
            settings.update(ssl="on", ssl_cert_file=f"'{cert}'", ssl_key_file=f"'{key}'")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# testkit\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self._initialised = True

    def _start_postmaster(self) -> None:
        command = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={','.join(self.listen_addresses)}",
        ]
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self._base(),
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._account.popen_kwargs(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise PostgresError(
                    f"PostgreSQL exited with status {self._process.returncode} while starting "
                    f"on port {self.port}:\n{self.log_tail(start=log_start)}"
                )
            try:
                with self.connect(connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise PostgresError(
                        f"PostgreSQL did not accept connections within {START_TIMEOUT:.0f} s:\n"
                        f"{self.log_tail(start=log_start)}"
                    ) from None
                time.sleep(0.02)

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._base()),
            "LANG": "C",
            "LC_ALL": "C",
            "TZ": "UTC",
        }

    def log_tail(self, lines: int = 40, *, start: int = 0) -> str:
        """The last ``lines`` lines of the server log (from byte ``start``)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(start)
                text = log.read().decode(errors="replace")
        except (OSError, PostgresError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- addresses -------------------------------------------------------------------------

    def url(
        self,
        user: str | None = None,
        password: str | None = None,
        dbname: str = "postgres",
        host: str | None = None,
    ) -> str:
        """``postgresql://user:password@host:port/dbname`` for a TCP connection.

        Without ``user`` the URL is the superuser's, with its password; with a ``user`` and no
        ``password`` the URL has no password.
        """
        if user is None:
            user = self.superuser
            password = self.superuser_password if password is None else password
        host = host or self.host
        netloc_host = f"[{host}]" if ":" in host else host
        credentials = quote(user, safe="")
        if password is not None:
            credentials += ":" + quote(password, safe="")
        return f"postgresql://{credentials}@{netloc_host}:{self.port}/{quote(dbname, safe='')}"

    # -- admin helpers (superuser over the unix socket) ------------------------------------

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        """A superuser connection in autocommit mode over the unix socket."""
        params: dict[str, Any] = {
            "host": str(self.socket_dir),
            "port": self.port,
            "user": self.superuser,
            "dbname": dbname,
            "autocommit": True,
            **kwargs,
        }
        return psycopg.connect(**params)

    def execute(
        self,
        query: str | sql.Composable,
        params: Sequence[Any] | None = None,
        *,
        dbname: str = "postgres",
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser; the rows it returns (``[]`` when none)."""
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def psql(self, script: str, *, dbname: str = "postgres", check: bool = True) -> str:
        """Run ``script`` with the ``psql`` binary as the superuser; its unaligned output."""
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "--no-psqlrc",
                "--no-align",
                "--tuples-only",
                "--set=ON_ERROR_STOP=1",
                f"--host={self.socket_dir}",
                f"--port={self.port}",
                f"--username={self.superuser}",
                f"--dbname={dbname}",
                f"--command={script}",
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )
        if check and result.returncode != 0:
            raise PostgresError(f"psql failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def create_role(self, name: str, password: str | None, *, superuser: bool = False) -> None:
        """A login role with a (scram-sha-256) password."""
        options = sql.SQL("LOGIN SUPERUSER" if superuser else "LOGIN NOSUPERUSER")
        if password is not None:
            options = sql.SQL("{} PASSWORD {}").format(options, sql.Literal(password))
        self.execute(sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(name), options))

    def drop_role(self, name: str) -> None:
        self.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))

    def create_database(
        self, name: str, owner: str | None = None, *, template: str = "template0"
    ) -> None:
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
        if owner is not None:
            query = sql.SQL("{} OWNER {}").format(query, sql.Identifier(owner))
        self.execute(query)

    def drop_database(self, name: str) -> None:
        """Drop the database, disconnecting anyone still connected to it."""
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PostgresServer {self.host}:{self.port} {state} {self.base_dir}>"


# -- cleanup -------------------------------------------------------------------------------

_LIVE: set[PostgresServer] = set()


@atexit.register
def _close_all() -> None:
    for server in list(_LIVE):
        server.close()


def _remove_shared_memory(data_dir: Path) -> None:
    """After a crash the postmaster's small System V segment outlives it; remove it.

    ``postmaster.pid`` remains after an unclean exit and names the segment (line 7:
    ``key shmid``); a clean shutdown removes the file and the segment.
    """
    with contextlib.suppress(OSError, ValueError, IndexError):
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        if alive(int(lines[0])):
            return
        shmid = int(lines[6].split()[1])
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmctl(shmid, 0, None)  # IPC_RMID


def _remove_stale_dirs(parent: Path) -> None:
    """Remove server directories of processes that no longer exist, killing their servers."""
    for path in parent.glob(f"{DIR_PREFIX}*-*"):
        match = re.fullmatch(rf"{DIR_PREFIX}(\d+)-.*", path.name)
        if not match or alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((path / "data" / "postmaster.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{postmaster}/cmdline").read_bytes()
            if str(path).encode() in cmdline:
                os.kill(postmaster, signal.SIGQUIT)
                deadline = time.monotonic() + 10
                while alive(postmaster) and time.monotonic() < deadline:
                    time.sleep(0.02)
        _remove_shared_memory(path / "data")
        shutil.rmtree(path, ignore_errors=True)
