"""Which conventional files at the top of a project count as markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_buddy.sessions.markers import scan_markers


def test_no_markers_in_an_empty_directory(tmp_path: Path) -> None:
    assert scan_markers(tmp_path).present() == []


def test_markers_are_detected(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# hi")
    (tmp_path / "tests").mkdir()
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / "uv.lock").write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "LICENSE").write_text("MIT")

    markers = scan_markers(tmp_path)

    assert markers.readme and markers.tests and markers.ci
    assert markers.lock_file and markers.docs and markers.license


@pytest.mark.parametrize("name", [".gitlab-ci.yml", "Jenkinsfile", ".circleci", ".ci"])
def test_other_ci_configurations_count_as_ci(tmp_path: Path, name: str) -> None:
    if name.startswith(".c"):
        (tmp_path / name).mkdir()
    else:
        (tmp_path / name).write_text("")

    assert scan_markers(tmp_path).ci is True


@pytest.mark.parametrize(
    "name", ["poetry.lock", "package-lock.json", "Cargo.lock", "yarn.lock", "pnpm-lock.yaml"]
)
def test_other_lock_files_count_as_lock_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("")

    assert scan_markers(tmp_path).lock_file is True


def test_a_github_directory_without_workflows_is_not_ci(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()

    assert scan_markers(tmp_path).ci is False


def test_a_file_named_tests_is_not_a_tests_directory(tmp_path: Path) -> None:
    (tmp_path / "tests").write_text("")

    assert scan_markers(tmp_path).tests is False
