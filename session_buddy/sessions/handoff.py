"""The Markdown hand-off written when a session ends: what happened, for whoever comes next."""

from __future__ import annotations

from collections.abc import Sequence

from session_buddy.sessions.models import (
    CheckpointInfo,
    GitSnapshot,
    ProjectSnapshot,
    SessionInfo,
)
from session_buddy.text import format_duration, plural


def _git_position(git: GitSnapshot) -> str:
    if git.reported:
        if git.branch is None and git.commit is None:
            return "not reported"
        branch = f"`{git.branch}`" if git.branch else "(branch not reported)"
        commit = f"`{git.commit[:12]}`" if git.commit else "(commit not reported)"
        return f"{branch} @ {commit} (reported)"
    if not git.is_git_repo:
        return git.note or "not a git repository"
    branch = f"`{git.branch}`" if git.branch else "detached HEAD"
    commit = f"`{git.commit[:12]}`" if git.commit else "(no commits yet)"
    return f"{branch} @ {commit}"


def _project_line(session: SessionInfo) -> str:
    if session.project_path is None:
        return f"- **Project:** {session.project_name} (`{session.project_id}`, named by id)"
    line = f"- **Project:** {session.project_name} (`{session.project_path}`)"
    return line if session.project_id is None else f"{line}, id `{session.project_id}`"


def _indented(text: str) -> str:
    """Multi-line text kept inside its Markdown list item."""
    return "\n   ".join(line.rstrip() for line in text.strip().splitlines())


def render_handoff(
    session: SessionInfo,
    checkpoints: Sequence[CheckpointInfo],
    end_snapshot: ProjectSnapshot,
    *,
    summary: str | None,
    commits_during_session: int | None,
    ended_by: str,
) -> str:
    """The hand-off document of an ended ``session`` (whose ``ended_at`` is set)."""
    lines = [
        f"# Session hand-off: {session.project_name}",
        "",
        _project_line(session),
        f"- **User:** {session.user_id}",
    ]
    if ended_by != session.user_id:
        lines.append(f"- **Ended by:** {ended_by}")
    lines += [
        f"- **Session:** `{session.id}`",
        f"- **Started:** {session.started_at}",
        f"- **Ended:** {session.ended_at}",
        f"- **Duration:** {format_duration(session.duration_seconds)}",
        "",
        "## Summary",
        "",
        summary.strip() if summary and summary.strip() else "_No summary given._",
        "",
        f"## Checkpoints ({len(checkpoints)})",
        "",
    ]
    if not checkpoints:
        lines.append("_No checkpoints._")
    for checkpoint in checkpoints:
        facts = [f"+{format_duration(checkpoint.elapsed_seconds)}"]
        if checkpoint.commits_since_previous is not None:
            facts.append(plural(checkpoint.commits_since_previous, "commit"))
        if checkpoint.changed_files is not None:
            facts.append(plural(checkpoint.changed_files, "changed file"))
        note = _indented(checkpoint.note) if checkpoint.note else "_(no note)_"
        lines.append(f"{checkpoint.number}. {checkpoint.created_at} ({', '.join(facts)}): {note}")
    start_git = session.snapshot.git
    end_git = end_snapshot.git
    lines += [
        "",
        "## Git",
        "",
        f"- **Start:** {_git_position(start_git)}",
        f"- **End:** {_git_position(end_git)}",
    ]
    if commits_during_session is not None:
        lines.append(f"- **Commits during session:** {commits_during_session}")
    if end_git.changed_files is not None:
        lines.append(f"- **Uncommitted changes at end:** {plural(end_git.changed_files, 'file')}")
    if end_snapshot.markers is None:
        shown = "not inspected (the project is not on this server)"
    else:
        markers = end_snapshot.markers.present()
        shown = ", ".join(markers) if markers else "none found"
    lines += ["", "## Project", "", f"- **Markers:** {shown}", ""]
    return "\n".join(lines)
