"""A project's name, read from its manifest: ``pyproject.toml``, ``package.json``, ``Cargo.toml``.

:func:`project_name` never fails over a manifest: one that is missing, larger than 1 MB,
not a regular file, unreadable, malformed or without a usable name is skipped, and the
directory name is the last resort. A name taken from a manifest is stripped, printable
and at most 200 characters long.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from session_buddy.sessions.models import NameSource

MAX_MANIFEST_BYTES = 1_000_000
MAX_NAME_CHARS = 200


def project_name(path: Path) -> tuple[str, NameSource]:
    """The project's name and the file it came from, first match wins.

    Order: ``pyproject.toml`` (``[project]``, then ``[tool.poetry]``), ``package.json``,
    ``Cargo.toml`` (``[package]``), then the directory name.
    """
    pyproject = _read_toml(path / "pyproject.toml")
    name = _clean_name(_dig(pyproject, "project", "name")) or _clean_name(
        _dig(pyproject, "tool", "poetry", "name")
    )
    if name:
        return name, "pyproject.toml"
    name = _clean_name(_dig(_read_json(path / "package.json"), "name"))
    if name:
        return name, "package.json"
    name = _clean_name(_dig(_read_toml(path / "Cargo.toml"), "package", "name"))
    if name:
        return name, "Cargo.toml"
    return path.name or str(path), "directory"


def _read_bytes(file: Path) -> bytes | None:
    try:
        if not file.is_file() or file.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        return file.read_bytes()
    except OSError:
        return None


def _read_toml(file: Path) -> object:
    data = _read_bytes(file)
    if data is None:
        return None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None


def _read_json(file: Path) -> object:
    data = _read_bytes(file)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _clean_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    name = "".join(ch for ch in value.strip() if ch.isprintable())
    return name[:MAX_NAME_CHARS] or None
