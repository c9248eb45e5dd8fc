"""Git movement recorded by checkpoints, and the Markdown hand-off written at the end."""

from __future__ import annotations

from pathlib import Path

from session_buddy.auth.principal import Principal
from session_buddy.sessions.service import SessionService
from testkit import git as gitops


def test_first_checkpoint_counts_commits_since_the_session_start(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    gitops.commit(project)
    gitops.commit(project)

    checkpoint = service.checkpoint(alice, str(project))

    assert checkpoint.commits_since_previous == 2
    assert checkpoint.snapshot.git.commit == gitops.head(project)


def test_later_checkpoints_count_commits_since_the_previous_checkpoint(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    gitops.commit(project)
    service.checkpoint(alice, str(project))
    for _ in range(3):
        gitops.commit(project)

    second = service.checkpoint(alice, str(project))
    third = service.checkpoint(alice, str(project))

    assert second.commits_since_previous == 3
    assert third.commits_since_previous == 0


def test_checkpoint_records_the_changed_file_count(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))
    (project / "a.txt").write_text("a")
    (project / "b.txt").write_text("b")

    assert service.checkpoint(alice, str(project)).changed_files == 2


def test_commit_count_is_none_outside_git(
    service: SessionService, alice: Principal, plain_dir: Path
) -> None:
    service.start(alice, str(plain_dir))

    checkpoint = service.checkpoint(alice, str(plain_dir), "no git here")

    assert checkpoint.commits_since_previous is None
    assert checkpoint.changed_files is None
    assert checkpoint.snapshot.git.is_git_repo is False


def test_commit_count_is_none_when_the_session_started_before_the_first_commit(
    service: SessionService, alice: Principal, tmp_path: Path
) -> None:
    repo = gitops.init(tmp_path / "fresh")
    service.start(alice, str(repo))
    gitops.commit(repo)

    checkpoint = service.checkpoint(alice, str(repo))

    assert checkpoint.commits_since_previous is None
    assert checkpoint.snapshot.git.commit == gitops.head(repo)


def test_a_session_works_without_git_installed(
    db, clock, alice: Principal, project: Path, tmp_path: Path
) -> None:
    service = SessionService(db, clock=clock, git=str(tmp_path / "missing-git"))

    service.start(alice, str(project))
    checkpoint = service.checkpoint(alice, str(project), "still fine")
    handoff = service.end(alice, str(project))

    assert checkpoint.commits_since_previous is None
    assert handoff.commits_during_session is None
    assert "git is not available" in handoff.markdown


def test_handoff_lists_project_user_duration_checkpoints_git_and_summary(
    service: SessionService, alice: Principal, project: Path, clock
) -> None:
    start_sha = gitops.head(project)
    session = service.start(alice, str(project))
    clock.advance(20 * 60)
    gitops.commit(project)
    service.checkpoint(alice, str(project), "parser written")
    clock.advance(45 * 60)
    gitops.git(project, "checkout", "-q", "-b", "feature")
    gitops.commit(project)
    end_sha = gitops.commit(project)
    service.checkpoint(alice, str(project), "line one\nline two")
    (project / "wip.txt").write_text("unfinished")

    handoff = service.end(alice, str(project), "Parser and tests done; next: docs.")
    markdown = handoff.markdown

    assert markdown.startswith("# Session hand-off: demo")
    assert f"`{project}`" in markdown
    assert "**User:** alice" in markdown
    assert f"`{session.id}`" in markdown
    assert "**Duration:** 1 h 5 min" in markdown
    assert "## Checkpoints (2)" in markdown
    assert "1. 2025-06-15T15:26:40+00:00 (+20 min, 1 commit, 0 changed files): parser written" in (
        markdown
    )
    assert "2. " in markdown
    assert "line one\n   line two" in markdown
    assert f"**Start:** `main` @ `{start_sha[:12]}`" in markdown
    assert f"**End:** `feature` @ `{end_sha[:12]}`" in markdown
    assert "**Commits during session:** 3" in markdown
    assert "**Uncommitted changes at end:** 1 file" in markdown
    assert "Parser and tests done; next: docs." in markdown
    assert "Ended by" not in markdown
    assert handoff.commits_during_session == 3
    assert [c.note for c in handoff.checkpoints] == ["parser written", "line one\nline two"]


def test_handoff_without_checkpoints_or_summary_says_so(
    service: SessionService, alice: Principal, project: Path
) -> None:
    service.start(alice, str(project))

    markdown = service.end(alice, str(project)).markdown

    assert "_No summary given._" in markdown
    assert "_No checkpoints._" in markdown
    assert "**Commits during session:** 0" in markdown


def test_handoff_outside_git_reports_no_repository(
    service: SessionService, alice: Principal, plain_dir: Path
) -> None:
    service.start(alice, str(plain_dir))

    markdown = service.end(alice, str(plain_dir)).markdown

    assert "**Start:** not a git repository" in markdown
    assert "Commits during session" not in markdown
