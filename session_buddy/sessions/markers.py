"""The conventional files at the top of a project: README, tests, docs, CI, lock file, license.

:func:`scan_markers` lists only the top-level directory (at most 5,000 entries, names
compared case-insensitively) plus one ``.github/workflows`` check; a directory it cannot
list reports no markers.
"""

from __future__ import annotations

import os
from pathlib import Path

from session_buddy.sessions.models import ProjectMarkers

MAX_LISTED_ENTRIES = 5_000

README_PREFIXES = ("readme",)
LICENSE_PREFIXES = ("license", "licence", "copying")
TEST_DIRS = frozenset({"tests", "test", "spec", "specs", "__tests__"})
DOC_DIRS = frozenset({"docs", "doc", "documentation"})
CI_FILES = frozenset(
    {
        ".gitlab-ci.yml",
        ".ci",
        "jenkinsfile",
        ".circleci",
        ".travis.yml",
        "azure-pipelines.yml",
        "bitbucket-pipelines.yml",
        ".drone.yml",
        ".woodpecker.yml",
        ".woodpecker",
        ".buildkite",
    }
)
LOCK_FILES = frozenset(
    {
        "uv.lock",
        "poetry.lock",
        "pdm.lock",
        "pipfile.lock",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lock",
        "bun.lockb",
        "cargo.lock",
        "go.sum",
        "gemfile.lock",
        "composer.lock",
        "flake.lock",
    }
)


def scan_markers(path: Path) -> ProjectMarkers:
    """The markers present in the directory ``path``; tests and docs count only as directories."""
    files: set[str] = set()
    dirs: set[str] = set()
    try:
        with os.scandir(path) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_LISTED_ENTRIES:
                    break
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                (dirs if is_dir else files).add(entry.name.lower())
    except OSError:
        return ProjectMarkers()
    names = files | dirs
    return ProjectMarkers(
        readme=any(name.startswith(README_PREFIXES) for name in files),
        tests=bool(dirs & TEST_DIRS),
        ci=bool(names & CI_FILES) or (path / ".github" / "workflows").is_dir(),
        lock_file=bool(files & LOCK_FILES),
        docs=bool(dirs & DOC_DIRS),
        license=any(name.startswith(LICENSE_PREFIXES) for name in files),
    )
