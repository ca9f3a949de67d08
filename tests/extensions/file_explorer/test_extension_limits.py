"""The File Explorer child behind a real host: slow searches, workspace errors, big reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication

from symphony.extension_host.discovery import bundled_dir
from symphony.extension_host.host import READY, ExtensionHost, HostConfig
from symphony.extensions.file_explorer.service import DEFAULT_MAX_READ
from symphony.protocol import ErrorCode, InvalidParamsError, ProtocolError

FE = "symphony.file_explorer"


def _host(workspace: Path, config: HostConfig | None = None) -> ExtensionHost:
    if QCoreApplication.instance() is None:
        QCoreApplication([])
    return ExtensionHost([bundled_dir()], workspace=workspace, config=config)


def test_a_regex_that_backtracks_forever_does_not_get_the_extension_killed(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.txt").write_text("a" * 40 + "b\n")
    # a ping unanswered for 1.5 s kills the child; the search may run for about 4 s
    h = _host(tmp_path, HostConfig(unresponsive_after=1.0, kill_unresponsive_after=0.5))
    try:
        future = h.request(FE, "files.search", {"query": "(a+)+$", "regex": True}, timeout=4.0)
        with pytest.raises(ProtocolError) as info:
            future.wait()
        assert isinstance(info.value, InvalidParamsError)
        assert "the regular expression '(a+)+$' did not finish" in info.value.message
        assert h.state(FE) == READY
        assert h.starts(FE) == 1
        # and the extension still answers
        assert h.request(FE, "files.search", {"query": "ab"}).wait().result[0]["path"] == "r.txt"
    finally:
        h.shutdown(grace=5)


def test_a_workspace_that_cannot_be_opened_is_the_error_of_every_request(
    tmp_path: Path,
) -> None:
    h = _host(tmp_path / "gone")
    try:
        with pytest.raises(ProtocolError) as info:
            h.request(FE, "files.list", {"path": ""}).wait()
        assert info.value.code == ErrorCode.REQUEST_FAILED
        assert "cannot be opened: it does not exist" in info.value.message
        assert "initialize failed" in h.last_error(FE)
        assert "cannot be opened" in h.last_error(FE)
    finally:
        h.shutdown(grace=5)


def test_a_relative_workspace_is_resolved_against_the_host_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.txt").write_text("alpha")
    monkeypatch.chdir(tmp_path)
    h = _host(Path("ws"))
    try:
        assert h.request(FE, "files.read", {"path": "a.txt"}).wait().body == b"alpha"
    finally:
        h.shutdown(grace=5)


def test_the_largest_read_the_error_recommends_fits_a_reply(tmp_path: Path) -> None:
    with (tmp_path / "huge.bin").open("wb") as f:
        f.truncate(DEFAULT_MAX_READ + 1000)
    h = _host(tmp_path)
    try:
        with pytest.raises(ProtocolError) as info:
            h.request(FE, "files.read", {"path": "huge.bin"}).wait()
        assert f"a length of at most {DEFAULT_MAX_READ}" in info.value.message
        params = {"path": "huge.bin", "offset": 0, "length": DEFAULT_MAX_READ}
        assert len(h.request(FE, "files.read", params).wait(60).body) == DEFAULT_MAX_READ
        with pytest.raises(ProtocolError, match="offset must be a whole number, got '1'"):
            h.request(FE, "files.read", {"path": "huge.bin", "offset": "1"}).wait()
    finally:
        h.shutdown(grace=5)
