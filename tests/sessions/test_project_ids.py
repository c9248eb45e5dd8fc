"""Project ids, branches and commits a caller reports: normalised, bounded, never a secret kept."""

from __future__ import annotations

import pytest

from session_buddy.sessions.errors import InvalidProjectError
from session_buddy.sessions.identity import (
    MAX_PROJECT_ID_CHARS,
    parse_branch,
    parse_changed_files,
    parse_commit,
    parse_project_id,
)
from session_buddy.sessions.target import ReportedProject, choose_filter, choose_project

TOKEN = "ghp_S3cr3tT0kenValue1234567890abcdef"


@pytest.mark.parametrize(
    "raw",
    [
        "https://github.com/Owner/repo",
        "https://github.com/Owner/repo.git",
        "https://GitHub.COM/Owner/repo/",
        "http://github.com:80/Owner/repo.git",
        "git@github.com:Owner/repo.git",
        "github.com:Owner/repo",
        "ssh://git@github.com/Owner/repo.git",
        "ssh://git@GitHub.com:22/Owner/repo/",
        "git+ssh://git@github.com/Owner//repo.git",
        "git://github.com/Owner/repo",
        "HTTPS://github.com/Owner/repo",
        "github.com/Owner/repo",
    ],
)
def test_every_spelling_of_one_repository_is_one_id(raw: str) -> None:
    assert parse_project_id(raw).value == "github.com/Owner/repo"


def test_the_path_keeps_its_case_and_a_plain_name_is_kept_as_given() -> None:
    assert parse_project_id("https://h.example/A/B").value == "h.example/A/B"
    assert parse_project_id("session-buddy").value == "session-buddy"
    assert parse_project_id("team/Service_2").value == "team/Service_2"
    assert parse_project_id("@scope/pkg").value == "@scope/pkg"


def test_a_short_name_is_the_last_segment() -> None:
    assert parse_project_id("git@gitlab.com:group/sub/app.git").name == "app"
    assert parse_project_id("demo").name == "demo"


@pytest.mark.parametrize(
    ("raw", "removed"),
    [
        (f"https://alice:{TOKEN}@github.com/o/r.git", ("credentials",)),
        (f"https://{TOKEN}@github.com/o/r", ("credentials",)),
        (f"https://x-access-token:{TOKEN}@github.com/o/r", ("credentials",)),
        (f"ssh://git:{TOKEN}@github.com/o/r", ("credentials",)),
        (f"git:{TOKEN}@github.com:o/r", ("credentials",)),
        (f"https://github.com/o/r?private_token={TOKEN}", ("query",)),
        (f"https://github.com/o/r#{TOKEN}", ("fragment",)),
        (f"https://u:{TOKEN}@github.com/o/r?t={TOKEN}", ("credentials", "query")),
    ],
)
def test_credentials_query_and_fragment_are_removed_and_reported(
    raw: str, removed: tuple[str, ...]
) -> None:
    parsed = parse_project_id(raw)

    assert parsed.value == "github.com/o/r"
    assert parsed.removed == removed
    assert TOKEN not in repr(parsed)


def test_an_ssh_login_name_is_dropped_without_a_report() -> None:
    assert parse_project_id("git@github.com:o/r").removed == ()
    assert parse_project_id("ssh://deploy@github.com/o/r").removed == ()


def refusal(raw: object, field: str = "project") -> InvalidProjectError:
    with pytest.raises(InvalidProjectError) as raised:
        if field == "project":
            parse_project_id(raw)
        elif field == "branch":
            parse_branch(raw)
        elif field == "commit":
            parse_commit(raw)
        else:
            parse_changed_files(raw)
    assert raised.value.field == field
    assert raised.value.reason == "invalid_project"
    return raised.value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "project is empty; pass a project id such as its git remote URL"),
        ("x" * (MAX_PROJECT_ID_CHARS + 1), "project is 513 characters long; the limit is 512"),
        ("demo\x00", "project contains a control character (U+0000) at position 5"),
        ("de\x1b[2Jmo", "project contains a control character (U+001B) at position 3"),
        ("de\u202emo", "project contains a control character (U+202E) at position 3"),
        ("my project", "project contains whitespace (U+0020) at position 3"),
        ("/home/me/repo", "project looks like a path; pass a directory on this server"),
        ("../repo", "project looks like a path"),
        ("file:///srv/git/repo.git", "project is a file:// URL"),
        ("ftp://host/o/r", "project URL scheme 'ftp' is not supported"),
        ("https:///o/r", "project URL has no host"),
        ("https://github.com/", "project URL names no repository (nothing after the host"),
        ("https://github.com/.git", "project URL names no repository"),
        ("C:/Users/me/repo", "project looks like a Windows path"),
        ("https://bad_host!/o/r", "project host 'bad_host!' is not a valid host name"),
        ("team/<script>", "project 'team/<script>' contains '<' (U+003C) at position 6"),
        ("demo`rm`", "contains '`' (U+0060) at position 5"),
    ],
)
def test_a_malformed_project_id_is_refused_with_a_precise_message(raw: str, message: str) -> None:
    assert message in str(refusal(raw))


def test_a_project_id_that_is_not_a_string_is_refused() -> None:
    assert "project is empty" in str(refusal(123))


@pytest.mark.parametrize(
    "raw",
    [
        f"{TOKEN}@github.com/o/r",  # a token without a scheme
        f"https://u:{TOKEN} x@github.com/o/r",  # whitespace in the password
        f"https://u:{TOKEN}\x07@github.com/o/r",
        f"ftp://u:{TOKEN}@host/o/r",
        f"https://u:{TOKEN}@/o/r",
        f"https://u:{TOKEN}@github.com/",
        f"https://u:{TOKEN}@github.com/o/<r>",
        f"https://u:{TOKEN}@" + "h" * 600 + "/o/r",
    ],
)
def test_no_refusal_shows_a_credential(raw: str) -> None:
    assert TOKEN not in str(refusal(raw))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("main", "main"), ("feature/x-1", "feature/x-1"), ("refs/heads/dev", "dev"), ("v1.2", "v1.2")],
)
def test_a_sane_branch_name_is_accepted(raw: str, expected: str) -> None:
    assert parse_branch(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "branch is empty"),
        ("b" * 256, "branch is 256 characters long; the limit is 255"),
        ("a b", "branch contains whitespace (U+0020) at position 2"),
        ("a\x00b", "branch contains a control character (U+0000) at position 2"),
        ("a..b", "branch 'a..b' is not a valid git branch name: it contains '..'"),
        ("-rf", "it starts with '-'"),
        ("a~1", "it contains '~'"),
        ("x@{1}", "it contains '@{'"),
        ("feature/", "it ends with '/'"),
        ("a/.hidden", "a component starts with '.'"),
        ("main.lock", "a component ends with '.lock'"),
        ("@", "it is '@'"),
    ],
)
def test_a_malformed_branch_is_refused_with_a_precise_message(raw: str, message: str) -> None:
    assert message in str(refusal(raw, "branch"))


def test_a_commit_is_4_to_64_hex_characters_lowercased() -> None:
    assert parse_commit("ABCD") == "abcd"
    assert parse_commit("a" * 64) == "a" * 64
    assert parse_commit(None) is None


@pytest.mark.parametrize("raw", ["abc", "a" * 65, "xyz123", "abcd\n", "", "0x1234"])
def test_a_malformed_commit_is_refused(raw: str) -> None:
    assert "commit must be 4 to 64 hexadecimal characters" in str(refusal(raw, "commit"))


@pytest.mark.parametrize("raw", [-1, 10_000_001, True, "3", 1.5])
def test_a_changed_file_count_is_a_bounded_whole_number(raw: object) -> None:
    message = str(refusal(raw, "changed_files"))
    assert message == "changed_files must be a whole number from 0 to 10,000,000"


# -- naming the project: exactly one way --------------------------------------------------


def test_a_working_directory_alone_names_a_directory() -> None:
    assert choose_project("/srv/p", None) == "/srv/p"


def test_a_project_id_names_a_reported_project_with_its_state() -> None:
    chosen = choose_project(
        None, "git@github.com:o/r.git", branch="main", commit="ABCDEF12", changed_files=3
    )

    assert chosen == ReportedProject(parse_project_id("github.com/o/r"), "main", "abcdef12", 3)


def test_an_empty_argument_counts_as_not_given() -> None:
    assert choose_project("/srv/p", "", branch="", commit="") == "/srv/p"
    assert choose_project("", "demo", branch="") == ReportedProject(parse_project_id("demo"))
    with pytest.raises(InvalidProjectError, match="no project named"):
        choose_project("", "")


def test_naming_no_project_is_refused_saying_how() -> None:
    with pytest.raises(InvalidProjectError) as raised:
        choose_project(None, None)

    assert str(raised.value) == (
        "no project named; pass working_directory (a directory on this server) or project "
        "(a project id such as its git remote URL)"
    )


def test_naming_both_is_refused() -> None:
    with pytest.raises(InvalidProjectError) as raised:
        choose_project("/srv/p", "demo")

    assert str(raised.value) == "pass either working_directory or project, not both"


def test_reported_state_beside_a_working_directory_is_refused() -> None:
    with pytest.raises(InvalidProjectError) as raised:
        choose_project("/srv/p", None, branch="main", commit="abcd")

    assert str(raised.value).startswith("branch and commit describe a project named by project id")
    assert raised.value.field == "branch"


def test_a_listing_filter_is_optional_but_never_both() -> None:
    assert choose_filter(None, None) is None
    assert choose_filter(None, "demo") == ReportedProject(parse_project_id("demo"))
    with pytest.raises(InvalidProjectError):
        choose_filter("/srv/p", "demo")
