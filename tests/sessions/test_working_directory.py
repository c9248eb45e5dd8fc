"""Which working directories are accepted, and what the refusals say."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions.errors import InvalidWorkingDirectoryError
from session_buddy.sessions.paths import MAX_PATH_CHARS, resolve_working_directory
from session_buddy.sessions.service import SessionService
from session_buddy.store import SqliteDatabase


def test_an_existing_absolute_directory_is_accepted(tmp_path: Path) -> None:
    assert resolve_working_directory(str(tmp_path), ()) == tmp_path.resolve()


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_path_is_refused(raw: str) -> None:
    with pytest.raises(InvalidWorkingDirectoryError, match="empty"):
        resolve_working_directory(raw, ())


@pytest.mark.parametrize("raw", ["project", "./project", "../x", "~/project"])
def test_a_relative_path_is_refused_and_named(raw: str) -> None:
    with pytest.raises(InvalidWorkingDirectoryError, match="absolute") as raised:
        resolve_working_directory(raw, ())
    assert raw in str(raised.value)


def test_a_missing_directory_is_refused_and_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"

    with pytest.raises(InvalidWorkingDirectoryError, match="does not exist") as raised:
        resolve_working_directory(str(missing), ())
    assert str(missing) in str(raised.value)


def test_a_file_is_refused_as_not_a_directory(tmp_path: Path) -> None:
    file = tmp_path / "file.txt"
    file.write_text("x")

    with pytest.raises(InvalidWorkingDirectoryError, match="not a directory") as raised:
        resolve_working_directory(str(file), ())
    assert str(file) in str(raised.value)


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "file.txt"
    file.write_text("x")

    with pytest.raises(InvalidWorkingDirectoryError):
        resolve_working_directory(str(file / "sub"), ())


def test_a_path_with_nul_is_refused_with_the_nul_escaped(tmp_path: Path) -> None:
    raw = f"{tmp_path}\x00/etc"

    with pytest.raises(InvalidWorkingDirectoryError, match="NUL") as raised:
        resolve_working_directory(raw, ())
    assert "\x00" not in str(raised.value)
    assert "\\x00" in str(raised.value)


def test_a_too_long_path_is_refused_with_its_length_and_a_shortened_echo() -> None:
    raw = "/" + "a" * (MAX_PATH_CHARS + 10)

    with pytest.raises(InvalidWorkingDirectoryError) as raised:
        resolve_working_directory(raw, ())
    message = str(raised.value)
    assert f"{len(raw):,}" in message
    assert "4,096" in message
    assert len(message) < 400


def test_a_long_missing_path_is_shortened_in_the_message(tmp_path: Path) -> None:
    raw = str(tmp_path / ("b" * 200) / ("c" * 200) / "end")

    with pytest.raises(InvalidWorkingDirectoryError) as raised:
        resolve_working_directory(raw, ())
    message = str(raised.value)
    assert "…" in message
    assert message.count("b") < 200
    assert len(message) < 300


def test_a_symlink_is_resolved_to_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)

    assert resolve_working_directory(str(link), ()) == real.resolve()


def test_a_directory_inside_an_allowed_root_is_accepted(tmp_path: Path) -> None:
    inner = tmp_path / "root" / "project"
    inner.mkdir(parents=True)

    assert resolve_working_directory(str(inner), [tmp_path / "root"]) == inner.resolve()


def test_an_allowed_root_itself_is_accepted(tmp_path: Path) -> None:
    assert resolve_working_directory(str(tmp_path), [tmp_path]) == tmp_path.resolve()


def test_a_directory_outside_the_allowed_roots_is_refused_and_named(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    with pytest.raises(InvalidWorkingDirectoryError, match="outside the allowed roots") as raised:
        resolve_working_directory(str(outside), [root])
    assert str(outside) in str(raised.value)
    assert "SESSION_BUDDY_ALLOWED_ROOTS" in str(raised.value)


def test_a_sibling_with_the_roots_name_as_prefix_is_outside(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    sibling = tmp_path / "root-evil"
    sibling.mkdir()

    with pytest.raises(InvalidWorkingDirectoryError):
        resolve_working_directory(str(sibling), [tmp_path / "root"])


def test_dot_dot_cannot_escape_an_allowed_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()

    with pytest.raises(InvalidWorkingDirectoryError):
        resolve_working_directory(f"{root}/..", [root])


def test_a_symlink_inside_a_root_pointing_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    link = root / "escape"
    link.symlink_to(outside)

    with pytest.raises(InvalidWorkingDirectoryError, match="outside the allowed roots") as raised:
        resolve_working_directory(str(link), [root])
    assert str(link) in str(raised.value)
    assert str(outside) not in str(raised.value)
    assert "resolves to" not in str(raised.value)


def test_a_symlink_loop_is_refused_without_naming_the_links(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden-name"
    hidden.symlink_to(tmp_path / "loop")
    (tmp_path / "loop").symlink_to(hidden)

    with pytest.raises(InvalidWorkingDirectoryError, match="symbolic links") as raised:
        resolve_working_directory(str(tmp_path / "loop"), ())
    assert "hidden-name" not in str(raised.value)


@pytest.mark.parametrize(
    "raw", ["/proc/self/cwd", "/proc/self/root/tmp", "/proc/1/cwd", "/dev/fd/0", "/proc/../proc"]
)
def test_a_path_into_proc_is_refused_without_resolving_it(raw: str) -> None:
    with pytest.raises(InvalidWorkingDirectoryError) as raised:
        resolve_working_directory(raw, ())
    assert str(raised.value) == (
        f"working directory {raw} leads into /proc; name the project directory itself"
    )


def test_a_symlink_chain_into_proc_is_refused(tmp_path: Path) -> None:
    (tmp_path / "second").symlink_to("/proc/self")
    (tmp_path / "first").symlink_to("second")

    raw = str(tmp_path / "first" / "cwd")

    with pytest.raises(InvalidWorkingDirectoryError) as raised:
        resolve_working_directory(raw, ())
    assert str(raised.value) == (
        f"working directory {raw} leads into /proc; name the project directory itself"
    )


def test_dot_dot_after_a_symlink_follows_the_link_first(tmp_path: Path) -> None:
    (tmp_path / "real" / "inner").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real" / "inner")

    assert resolve_working_directory(str(tmp_path / "link" / ".."), ()) == tmp_path / "real"


def test_a_symlinked_root_accepts_directories_under_its_target(tmp_path: Path) -> None:
    real_root = tmp_path / "real-root"
    (real_root / "project").mkdir(parents=True)
    root_link = tmp_path / "root-link"
    root_link.symlink_to(real_root)

    resolved = resolve_working_directory(str(real_root / "project"), [root_link])

    assert resolved == (real_root / "project").resolve()


def test_service_applies_allowed_roots_to_every_call(
    db: SqliteDatabase, clock, alice: Principal, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    service = SessionService(db, allowed_roots=[root], clock=clock)

    for call in (
        lambda: service.start(alice, str(outside)),
        lambda: service.status(alice, str(outside)),
        lambda: service.checkpoint(alice, str(outside), "n"),
        lambda: service.end(alice, str(outside)),
        lambda: service.list_sessions(alice, str(outside)),
    ):
        with pytest.raises(InvalidWorkingDirectoryError):
            call()
    assert service.list_sessions(alice).total == 0


def test_sessions_are_stored_under_the_resolved_path(
    service: SessionService, alice: Principal, project: Path, tmp_path: Path
) -> None:
    link = tmp_path / "shortcut"
    link.symlink_to(project)

    via_link = service.start(alice, str(link))
    direct = service.start(alice, str(project))

    assert via_link.project_path == str(project.resolve())
    assert direct.id == via_link.id
    assert direct.created is False


def test_paths_outside_the_allowed_roots_reveal_nothing_about_themselves(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    root.mkdir()
    outside_dir = tmp_path / "secret-dir"
    outside_dir.mkdir()
    outside_file = tmp_path / "secret-file"
    outside_file.write_text("x")
    messages = set()
    for probe in (outside_dir, outside_file, tmp_path / "missing"):
        with pytest.raises(InvalidWorkingDirectoryError) as info:
            resolve_working_directory(str(probe), [root])
        messages.add(str(info.value).replace(str(probe), "<path>"))
    assert len(messages) == 1
    assert "outside the allowed roots" in messages.pop()
