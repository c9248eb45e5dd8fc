"""Which manifest names the project, and that a bad manifest never breaks detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from session_buddy.sessions.manifests import project_name


def test_name_comes_from_pyproject_project_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "from-pep621"\n')

    assert project_name(tmp_path) == ("from-pep621", "pyproject.toml")


def test_name_comes_from_poetry_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.poetry]\nname = "from-poetry"\n')

    assert project_name(tmp_path) == ("from-poetry", "pyproject.toml")


def test_name_comes_from_package_json(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "@scope/web", "version": "1.0.0"}')

    assert project_name(tmp_path) == ("@scope/web", "package.json")


def test_name_comes_from_cargo_toml(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "crabby"\nversion = "0.1.0"\n')

    assert project_name(tmp_path) == ("crabby", "Cargo.toml")


def test_pyproject_wins_over_package_json(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "py"\n')
    (tmp_path / "package.json").write_text('{"name": "js"}')

    assert project_name(tmp_path) == ("py", "pyproject.toml")


def test_name_falls_back_to_the_directory_name(tmp_path: Path) -> None:
    project = tmp_path / "my-project"
    project.mkdir()

    assert project_name(project) == ("my-project", "directory")


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("pyproject.toml", "[project\nname = "),
        ("pyproject.toml", "[project]\nname = 42\n"),
        ("pyproject.toml", '[project]\nname = "   "\n'),
        ("pyproject.toml", b"\xff\xfe\x00garbage"),
        ("package.json", "{not json"),
        ("package.json", '["a", "list"]'),
        ("package.json", '{"name": {"nested": true}}'),
        ("package.json", "[" * 100_000),
        ("Cargo.toml", "[workspace]\nmembers = []\n"),
    ],
)
def test_malformed_manifest_falls_back_to_the_directory_name(
    tmp_path: Path, file: str, content: str | bytes
) -> None:
    project = tmp_path / "fallback"
    project.mkdir()
    target = project / file
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)

    assert project_name(project) == ("fallback", "directory")


def test_a_manifest_that_is_a_directory_is_ignored(tmp_path: Path) -> None:
    project = tmp_path / "odd"
    (project / "pyproject.toml").mkdir(parents=True)

    assert project_name(project) == ("odd", "directory")


def test_an_unreadable_manifest_is_ignored(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    project = tmp_path / "locked"
    project.mkdir()
    manifest = project / "pyproject.toml"
    manifest.write_text('[project]\nname = "secret"\n')
    manifest.chmod(0)

    assert project_name(project) == ("locked", "directory")


def test_a_manifest_that_is_a_fifo_does_not_block_detection(tmp_path: Path) -> None:
    project = tmp_path / "piped"
    project.mkdir()
    os.mkfifo(project / "package.json")

    assert project_name(project) == ("piped", "directory")
