"""Project ids, branches and commits a caller reports: checked, bounded and normalised.

A *project id* names a project independently of any disk: its git remote URL or a plain
name. :func:`parse_project_id` makes equal what names the same repository:

* a URL (``https``, ``http``, ``ssh``, ``git``, ``git+ssh``) or git's scp-style
  ``[user@]host:path`` becomes ``host/path``: the scheme, the user info, the port, the
  query and the fragment are dropped, the host is lowercased, repeated and trailing ``/``
  and a trailing ``.git`` are removed. So ``https://github.com/Owner/repo.git``,
  ``git@github.com:Owner/repo`` and ``ssh://git@GitHub.com:22/Owner/repo/`` are all
  ``github.com/Owner/repo`` (the path keeps its case);
* anything else is a plain name, kept as given (``session-buddy``, ``team/service``).

User info is never kept: a password, or any user name of an ``http``/``https``/``git``
URL (``https://<token>@host/…`` is how tokens travel), is reported as removed
(:attr:`ProjectId.removed`) so the caller can be told; the ssh login name of ``git@host``
is an ordinary part of such URLs and is dropped silently. Every refusal is an
:class:`InvalidProjectError` naming the argument; no message shows the caller's text
before its user info is gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from session_buddy.sessions.errors import InvalidProjectError
from session_buddy.text import shorten

MAX_PROJECT_ID_CHARS = 512
MAX_BRANCH_CHARS = 255
MIN_COMMIT_CHARS = 4
MAX_COMMIT_CHARS = 64
MAX_CHANGED_FILES = 10_000_000

URL_SCHEMES = ("https", "http", "ssh", "git", "git+ssh", "ssh+git")
# Schemes whose user name is a login, not a secret (unless a password follows it).
_LOGIN_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git", "scp"})
_DEFAULT_PREFIX = "a project id such as its git remote URL (https://host/owner/repo) or a name"
# What a normalised id may hold besides letters and digits: URL path characters.
_ID_PUNCTUATION = frozenset("-._~/+@:%!$&'()*,;=")
_HOST = re.compile(r"^(?:\[[0-9a-f:.]+\]|[^\W_](?:[\w.-]*[^\W_])?)$")
_BRANCH_FORBIDDEN = frozenset("~^:?*[\\")


@dataclass(frozen=True, slots=True)
class ProjectId:
    """A normalised project id; ``removed`` names what of the caller's text was dropped
    and stored nowhere (``"credentials"``, ``"query"``, ``"fragment"``)."""

    value: str
    removed: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """A short name for people: the last segment (``github.com/o/repo`` → ``repo``)."""
        return self.value.rstrip("/").rsplit("/", 1)[-1] or self.value


def parse_project_id(raw: object, field: str = "project") -> ProjectId:
    """The normalised id ``raw`` names (see the module doc), or InvalidProjectError."""
    text = _bounded_printable(raw, field, MAX_PROJECT_ID_CHARS, what=_DEFAULT_PREFIX)
    if text.startswith(("/", "./", "../", "~/")) or text in (".", "..", "~"):
        raise InvalidProjectError(
            f"{field} looks like a path; pass a directory on this server as "
            f"working_directory, or {_DEFAULT_PREFIX}",
            field,
        )
    if "://" in text:
        value, removed = _from_url(text, field)
    elif (scp := _scp_parts(text)) is not None:
        value, removed = _from_scp(*scp, field=field)
    else:
        if "@" in text[1:]:  # "token@host/path" without a scheme: never kept, never shown
            raise InvalidProjectError(
                f"{field} has an '@' but no URL scheme; give a URL (https://host/owner/repo, "
                "git@host:owner/repo) or a name without '@'",
                field,
            )
        value, removed = text.strip("/"), ()
    _check_characters(value, field)
    if not value:
        raise InvalidProjectError(f"{field} names nothing; pass {_DEFAULT_PREFIX}", field)
    return ProjectId(value, removed)


def parse_branch(raw: object) -> str | None:
    """A git branch name (``refs/heads/`` dropped), by ``git check-ref-format --branch``'s
    rules, at most 255 characters; None for None."""
    if raw is None:
        return None
    text = _bounded_printable(raw, "branch", MAX_BRANCH_CHARS, what="a git branch name")
    name = text.removeprefix("refs/heads/")
    problem = _branch_problem(name)
    if problem is not None:
        raise InvalidProjectError(
            f"branch {shorten(text, 80)!r} is not a valid git branch name: {problem}", "branch"
        )
    return name


def parse_commit(raw: object) -> str | None:
    """A commit id or its prefix: 4 to 64 hexadecimal characters, lowercased; None for None."""
    if raw is None:
        return None
    wanted = f"{MIN_COMMIT_CHARS} to {MAX_COMMIT_CHARS} hexadecimal characters"
    if not isinstance(raw, str):
        raise InvalidProjectError(f"commit must be a string of {wanted}", "commit")
    if not MIN_COMMIT_CHARS <= len(raw) <= MAX_COMMIT_CHARS or not all(
        ch in "0123456789abcdefABCDEF" for ch in raw
    ):
        raise InvalidProjectError(
            f"commit must be {wanted} (a git commit id or its prefix), "
            f"got {shorten(raw, 80)!r} ({len(raw):,} characters)",
            "commit",
        )
    return raw.lower()


def parse_changed_files(raw: object) -> int | None:
    """A count of changed files: a whole number from 0 to 10,000,000; None for None."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_CHANGED_FILES:
        raise InvalidProjectError(
            f"changed_files must be a whole number from 0 to {MAX_CHANGED_FILES:,}",
            "changed_files",
        )
    return raw


# -- helpers ------------------------------------------------------------------------------


def _bounded_printable(raw: object, field: str, limit: int, *, what: str) -> str:
    """``raw`` if it is a non-blank string within ``limit`` characters, without control
    characters or whitespace; the messages never show the text itself."""
    if not isinstance(raw, str) or not raw:
        raise InvalidProjectError(f"{field} is empty; pass {what}", field)
    if len(raw) > limit:
        raise InvalidProjectError(
            f"{field} is {len(raw):,} characters long; the limit is {limit:,}", field
        )
    for position, ch in enumerate(raw, start=1):
        if ch.isspace():
            kind = "whitespace"
        elif not ch.isprintable():
            kind = "a control character"
        else:
            continue
        raise InvalidProjectError(
            f"{field} contains {kind} (U+{ord(ch):04X}) at position {position}", field
        )
    return raw


def _check_characters(value: str, field: str) -> None:
    for position, ch in enumerate(value, start=1):
        if not (ch.isalnum() or ch in _ID_PUNCTUATION):
            raise InvalidProjectError(
                f"{field} {shorten(value, 80)!r} contains {ch!r} (U+{ord(ch):04X}) at "
                f"position {position}; a project id holds letters, digits and "
                f"{''.join(sorted(_ID_PUNCTUATION))}",
                field,
            )


def _scp_parts(text: str) -> tuple[str, str, str] | None:
    """``(userinfo, host, path)`` of git's scp-style ``[user@]host:path``: a colon before
    any slash. None when ``text`` is not in that form."""
    colon = text.find(":")
    slash = text.find("/")
    if colon < 0 or (0 <= slash < colon):
        return None
    head, path = text[:colon], text[colon + 1 :]
    # A password holds no "/", so the user info ends at the last "@" before the path's first "/".
    before_slash = text if slash < 0 else text[:slash]
    at = before_slash.rfind("@")
    if at >= 0:
        userinfo = text[:at]
        rest = text[at + 1 :]
        host, _, path = rest.partition(":")
        return userinfo, host, path
    return "", head, path


def _from_scp(userinfo: str, host: str, path: str, *, field: str) -> tuple[str, tuple[str, ...]]:
    if len(host) == 1 and host.isalpha():
        raise InvalidProjectError(
            f"{field} looks like a Windows path ({host}:…); pass {_DEFAULT_PREFIX}", field
        )
    removed = ("credentials",) if _is_credential("scp", userinfo) else ()
    return _host_and_path(host.lower(), path, field), removed


def _from_url(text: str, field: str) -> tuple[str, tuple[str, ...]]:
    scheme = text.split("://", 1)[0].lower()
    if scheme == "file":
        raise InvalidProjectError(
            f"{field} is a file:// URL, which names a directory on one machine; pass the "
            "project's remote URL or a name",
            field,
        )
    if scheme not in URL_SCHEMES:
        raise InvalidProjectError(
            f"{field} URL scheme {shorten(scheme, 20)!r} is not supported; use "
            f"{', '.join(URL_SCHEMES)}, or host:path",
            field,
        )
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InvalidProjectError(f"{field} is not a valid URL", field) from None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    removed: list[str] = []
    if _is_credential(scheme, userinfo):
        removed.append("credentials")
    if parts.query:
        removed.append("query")
    if parts.fragment:
        removed.append("fragment")
    host = _host_of(hostport, field)
    return _host_and_path(host, parts.path, field), tuple(removed)


def _host_of(hostport: str, field: str) -> str:
    if hostport.startswith("["):  # IPv6 literal, maybe with a port after "]"
        host = hostport[: hostport.find("]") + 1] if "]" in hostport else hostport
    else:
        host = hostport.split(":", 1)[0]
    if not host:
        raise InvalidProjectError(f"{field} URL has no host", field)
    return host.lower()


def _host_and_path(host: str, path: str, field: str) -> str:
    if not _HOST.match(host):
        raise InvalidProjectError(
            f"{field} host {shorten(host, 80)!r} is not a valid host name", field
        )
    segments = [segment for segment in path.split("/") if segment]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][: -len(".git")]
        if not segments[-1]:
            segments.pop()
    if not segments:
        raise InvalidProjectError(
            f"{field} URL names no repository (nothing after the host {host})", field
        )
    return "/".join([host, *segments])


def _is_credential(scheme: str, userinfo: str) -> bool:
    """Whether user info may be a secret: any password, and any user name outside ssh."""
    if not userinfo:
        return False
    return ":" in userinfo or scheme not in _LOGIN_SCHEMES


def _branch_problem(name: str) -> str | None:
    """Why ``name`` is not a branch name git would accept, or None."""
    if not name:
        return "it is empty"
    if name == "@":
        return "it is '@'"
    if name.startswith("-"):
        return "it starts with '-'"
    forbidden = sorted({ch for ch in name if ch in _BRANCH_FORBIDDEN})
    if forbidden:
        return f"it contains {', '.join(repr(ch) for ch in forbidden)}"
    for sequence in ("..", "@{", "//"):
        if sequence in name:
            return f"it contains {sequence!r}"
    if name.endswith(("/", ".")):
        return f"it ends with {name[-1]!r}"
    for component in name.split("/"):
        if component.startswith("."):
            return "a component starts with '.'"
        if component.endswith(".lock"):
            return "a component ends with '.lock'"
    return None
