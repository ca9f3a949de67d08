"""The File Explorer service's limits and messages: search bounds, read sizes, named errors."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from symphony.extensions.file_explorer.matching import ForkedMatcher, MatchTimeoutError
from symphony.extensions.file_explorer.nodes import read_files, search_files
from symphony.extensions.file_explorer.service import (
    DEFAULT_MAX_READ,
    MAX_PATH_CHARS,
    FileService,
    WorkspaceError,
)
from symphony.protocol.codec import DEFAULT_MAX_FRAME, encode
from symphony.protocol.messages import Response


@pytest.fixture
def fs(tmp_path: Path) -> FileService:
    root = tmp_path / "ws"
    root.mkdir()
    return FileService(root)


def test_a_catastrophic_regex_is_an_error_naming_the_pattern(fs: FileService) -> None:
    (fs.root / "r.txt").write_text("a" * 40 + "b\n")
    checks: list[int] = []
    with pytest.raises(WorkspaceError) as info:
        fs.search("(a+)+$", regex=True, timeout=0.5, check=lambda: checks.append(1))
    assert info.value.code == "invalid_argument"
    assert "'(a+)+$'" in str(info.value)
    assert "r.txt" in str(info.value)
    assert len(checks) >= 2  # the caller was called back while the pattern ran


def test_a_regex_search_still_finds_matches(fs: FileService) -> None:
    (fs.root / "a.txt").write_text("x = 1\ny = 22\n")
    hits = fs.search(r"\d{2}", regex=True)
    assert [(m.path, m.line, m.column) for m in hits] == [("a.txt", 2, 5)]


def test_a_cancel_from_check_stops_a_walk(fs: FileService) -> None:
    for i in range(3):
        (fs.root / f"d{i}").mkdir()
        (fs.root / f"d{i}" / "f.txt").write_text("hello\n")

    class Cancelled(Exception):
        pass

    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        fs.glob("**", check=check)
    calls.clear()
    with pytest.raises(Cancelled):
        fs.search("hello", check=check)


def test_files_over_one_mib_are_searched_and_binary_files_reported(fs: FileService) -> None:
    (fs.root / "big.log").write_text("NEEDLE at the top\n" + "filler line\n" * 200_000)
    (fs.root / "bin.dat").write_bytes(b"NEEDLE\n\xff\xfe\n")
    skipped: list[str] = []
    hits = fs.search("NEEDLE", skipped=skipped)
    assert [(m.path, m.line) for m in hits] == [("big.log", 1)]
    assert skipped == ["bin.dat"]
    skipped.clear()
    assert fs.search("NEEDLE", max_file_bytes=1000, skipped=skipped) == []
    assert sorted(skipped) == ["big.log", "bin.dat"]


def test_the_search_node_names_the_files_it_did_not_search(fs: FileService) -> None:
    (fs.root / "big.log").write_text("NEEDLE\n" + "x" * (2 << 20) + "\n")
    (fs.root / "bin.dat").write_bytes(b"\xff\xfeNEEDLE")
    result = search_files(fs, {"inputs": {}, "config": {"query": "NEEDLE"}})
    assert result["outputs"]["files"] == ["big.log"]
    assert result["skipped"] == ["bin.dat"]


def test_the_largest_read_fits_a_frame_with_the_longest_path() -> None:
    # 4096 characters that JSON escapes six-fold: the worst header a read reply can have
    path = "\x01" * MAX_PATH_CHARS
    reply = Response(1, {"path": path, "size": DEFAULT_MAX_READ}, b"\0" * DEFAULT_MAX_READ)
    assert len(encode(reply, DEFAULT_MAX_FRAME)) <= DEFAULT_MAX_FRAME


def test_a_too_large_read_names_a_chunk_size_that_works(fs: FileService) -> None:
    big = fs.root / "huge.bin"
    with big.open("wb") as f:
        f.truncate(DEFAULT_MAX_READ + 10)
    with pytest.raises(WorkspaceError, match=f"length of at most {DEFAULT_MAX_READ}"):
        fs.read("huge.bin")
    assert len(fs.read("huge.bin", offset=0, length=DEFAULT_MAX_READ)) == DEFAULT_MAX_READ


def test_a_long_length_on_a_short_file_reads_what_is_there(fs: FileService) -> None:
    (fs.root / "a.txt").write_bytes(b"abc")
    assert fs.read("a.txt", length=DEFAULT_MAX_READ * 4) == b"abc"
    assert fs.read("a.txt", offset=1, length=1 << 40) == b"bc"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda fs: fs.read("a.txt", offset="1"), "offset"),
        (lambda fs: fs.read("a.txt", length="5"), "length"),
        (lambda fs: fs.list_dir("", limit="5"), "limit"),
        (lambda fs: fs.glob("*", limit=None), "limit"),
        (lambda fs: fs.search("a", max_results="3"), "max_results"),
        (lambda fs: fs.search("a", regex="yes"), "regex"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_field(
    fs: FileService, call: object, field: str
) -> None:
    (fs.root / "a.txt").write_text("a")
    with pytest.raises(WorkspaceError, match=f"^{field} must be") as info:
        call(fs)  # type: ignore[operator]
    assert info.value.code == "invalid_argument"


def test_a_file_name_too_long_is_named(fs: FileService) -> None:
    name = "n" * 300
    with pytest.raises(WorkspaceError) as info:
        fs.write(name, b"x")
    assert info.value.path == name
    assert str(info.value) == f"{name} has a name that is too long for the file system"
    assert info.value.code == "invalid_path"


def test_a_refused_rename_names_both_sides(
    fs: FileService, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fs.root / "imm.txt").write_text("keep")

    def refuse(*args: object, **kw: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)  # an immutable file (chattr +i)
    with pytest.raises(WorkspaceError) as info:
        fs.rename("imm.txt", "imm2.txt")
    assert str(info.value) == "cannot rename imm.txt to imm2.txt: operation not permitted"
    assert info.value.code == "permission_denied"
    assert (fs.root / "imm.txt").read_text() == "keep"


def test_a_missing_workspace_says_it_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="cannot be opened: it does not exist"):
        FileService(tmp_path / "gone")
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkspaceError, match="cannot be opened: it is not a folder"):
        FileService(tmp_path / "file")


def test_the_read_node_refuses_limits_its_reply_cannot_carry(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    small = FileService(root, max_read_bytes=1000)
    with pytest.raises(ValueError, match="'max_bytes' must be a whole number from 1 to 500"):
        read_files(small, {"config": {"path": "a.txt", "max_bytes": 1000}})
    # 400 bytes of control characters become 2,400 bytes of JSON, twice over
    (root / "a.txt").write_text("\x01" * 400)
    with pytest.raises(WorkspaceError, match="over the 1000-byte limit of one message"):
        read_files(small, {"config": {"path": "a.txt", "max_bytes": 500}})
    (root / "b.txt").write_text("plain text")
    out = read_files(small, {"config": {"path": "b.txt", "max_bytes": 500}})
    assert out["outputs"]["text"] == "plain text"
    assert os.path.exists(root / "a.txt")


# ------------------------------------------------------------------------------ qa4 bug 6
# Running out of a search's time limit over many files is "too large", whatever the mode; only a
# single file that took most of the limit blames the pattern.


def _many(fs: FileService, n: int = 30) -> None:
    for i in range(n):
        (fs.root / f"f{i:03}.txt").write_text(f"foo{i}\n")


def _slow_caller() -> None:
    time.sleep(0.02)  # a caller slow to answer: the search's time runs out between files


@pytest.mark.parametrize(("query", "regex"), [("foo1", False), (r"foo\d", True)])
def test_a_search_out_of_time_over_many_files_is_too_large_not_the_patterns_fault(
    fs: FileService, query: str, regex: bool
) -> None:
    _many(fs)
    with pytest.raises(WorkspaceError) as info:
        fs.search(query, regex=regex, timeout=0.1, check=_slow_caller)
    assert info.value.code == "too_large"
    assert "the search took longer than its time limit of 0.1 s (stopped in f0" in str(info.value)
    assert "simplify" not in str(info.value)


def test_a_file_match_cut_short_by_the_limit_is_not_blamed_on_the_pattern(
    fs: FileService, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fs.root / "a.txt").write_text("foo1\n")

    def out_of_time(self: ForkedMatcher, path: str, *args: object) -> None:
        raise MatchTimeoutError(path)  # the limit ran out the moment this file started

    monkeypatch.setattr(ForkedMatcher, "match", out_of_time)
    with pytest.raises(WorkspaceError) as info:
        fs.search(r"foo\d", regex=True, timeout=5.0)
    assert info.value.code == "too_large"
    assert "(stopped in a.txt)" in str(info.value)
