"""Line matching, and the forked helper that runs user regular expressions so they can be killed."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from symphony.extensions.file_explorer.matching import (
    MAX_PIECE_CHARS,
    ForkedMatcher,
    MatchTimeoutError,
    match_file,
)

REDOS = re.compile(r"(a+)+$")


def test_match_file_reports_line_column_and_skips_non_text(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("alpha\nbeta alpha\n")
    assert match_file(re.compile("alpha"), str(text), 10) == [
        (1, 1, "alpha"),
        (2, 6, "beta alpha"),
    ]
    assert match_file(re.compile("alpha"), str(text), 1) == [(1, 1, "alpha")]
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"alpha\n\xff\xfe\n")
    assert match_file(re.compile("alpha"), str(binary), 10) is None
    assert match_file(re.compile("alpha"), str(tmp_path / "missing"), 10) is None


def test_a_line_longer_than_a_piece_keeps_its_line_number_and_column(tmp_path: Path) -> None:
    f = tmp_path / "long.txt"
    f.write_text("x" * (MAX_PIECE_CHARS + 10) + "NEEDLE\nnext NEEDLE\n")
    hits = match_file(re.compile("NEEDLE"), str(f), 10)
    assert hits is not None
    assert [(line, col) for line, col, _ in hits] == [(1, MAX_PIECE_CHARS + 11), (2, 6)]


def test_the_helper_matches_like_match_file(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("one\ntwo one\n")
    rx = re.compile("o(ne)")
    with ForkedMatcher(rx) as helper:
        deadline = time.monotonic() + 30
        assert helper.match(str(f), 10, deadline) == match_file(rx, str(f), 10)
        assert helper.match(str(tmp_path / "missing"), 10, deadline) is None


def test_a_regex_that_backtracks_forever_is_killed_at_the_deadline(tmp_path: Path) -> None:
    f = tmp_path / "r.txt"
    f.write_text("a" * 40 + "b\n")
    ticks: list[float] = []
    helper = ForkedMatcher(REDOS)
    pid = helper._pid
    with pytest.raises(MatchTimeoutError):
        helper.match(str(f), 10, time.monotonic() + 0.5, lambda: ticks.append(1))
    # the caller kept control while waiting (where the extension answers pings) ...
    assert len(ticks) >= 2
    # ... and the helper is gone, not left burning a core
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_an_exception_from_tick_kills_the_helper(tmp_path: Path) -> None:
    f = tmp_path / "r.txt"
    f.write_text("a" * 40 + "b\n")

    class Cancelled(Exception):
        pass

    def cancel() -> None:
        raise Cancelled

    helper = ForkedMatcher(REDOS)
    pid = helper._pid
    with pytest.raises(Cancelled):
        helper.match(str(f), 10, time.monotonic() + 60, cancel)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
