"""Change notifications: inotify and the polling fallback report the same changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.extensions.file_explorer.watcher import Change, Watcher


def collect(w: Watcher, until: int, timeout: float = 5.0) -> list[Change]:
    got: list[Change] = []
    for _ in range(50):
        got += w.read(timeout / 50)
        if len(got) >= until:
            break
    return got


@pytest.fixture(params=["inotify", "polling"])
def watcher(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Watcher]:
    (tmp_path / "sub").mkdir()
    w = Watcher(tmp_path, force_polling=request.param == "polling")
    assert w.backend == request.param
    w.watch("")
    yield w
    w.close()


def test_create_modify_delete(watcher: Watcher, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("1")
    got = collect(watcher, 1)
    assert Change("created", "a.txt") in got
    with open(tmp_path / "a.txt", "a") as f:
        f.write("more")
        f.flush()
        os.utime(f.fileno(), (1, 1))  # polling compares mtimes; make the change visible at once
    assert any(c.kind == "modified" and c.path == "a.txt" for c in collect(watcher, 1))
    (tmp_path / "a.txt").unlink()
    assert Change("deleted", "a.txt") in collect(watcher, 1)


def test_new_folders_are_watched_recursively(watcher: Watcher, tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir()
    assert Change("created", "sub/deep", True) in collect(watcher, 1)
    (tmp_path / "sub" / "deep" / "f.py").write_text("x")
    assert Change("created", "sub/deep/f.py") in collect(watcher, 1)


def test_moves_inside_and_out(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a").write_text("x")
    (tmp_path / "ws" / "b").write_text("y")
    with Watcher(tmp_path / "ws") as w:
        w.watch("")
        os.rename(tmp_path / "ws" / "a", tmp_path / "ws" / "c")
        assert Change("moved", "a", False, "c") in collect(w, 1)
        os.rename(tmp_path / "ws" / "b", tmp_path / "gone")
        assert Change("deleted", "b") in collect(w, 1)


def test_unwatch_stops_reports(watcher: Watcher, tmp_path: Path) -> None:
    watcher.unwatch("")
    (tmp_path / "quiet.txt").write_text("x")
    assert watcher.read(0.3) == []
