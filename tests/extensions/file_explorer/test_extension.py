"""The File Explorer extension end to end: a real child process behind the Qt host."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

from symphony.extension_host.discovery import bundled_dir
from symphony.extension_host.host import READY, ExtensionHost
from symphony.protocol import ErrorCode, InvalidParamsError, ProtocolError

FE = "symphony.file_explorer"


def _spin(pred: Any, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    wake = QTimer()
    wake.start(20)
    try:
        while not pred():
            assert time.monotonic() < end
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
    finally:
        wake.stop()


def test_manifest_contributes_the_registry_node_types() -> None:
    import tomllib

    from symphony.extension_host.manifest import parse_manifest

    m = parse_manifest(bundled_dir() / "file_explorer")
    fixture = Path(__file__).parents[2] / "registry" / "fixtures" / "file_explorer.node_types.toml"
    ours = {t["id"]: {k: v for k, v in t.items() if k != "method"} for t in m.node_types}
    for expected in tomllib.loads(fixture.read_text())["node_types"]:
        assert ours[expected["id"]] == {k: v for k, v in expected.items() if k != "method"}
    assert m.permissions.filesystem == "workspace"
    assert m.permissions.network is False


def test_list_read_write_through_a_real_child(
    host: tuple[ExtensionHost, list[Any], Path],
) -> None:
    h, _, ws = host
    assert FE in h.activate("onWorkspace")
    (ws / "a.txt").write_bytes(b"alpha\n")
    for i in range(5):
        (ws / f"f{i}.txt").write_text(f"file {i}\n")
    w = h.request(FE, "files.write", {"path": "sub/b.bin", "create_parents": True}, b"\x00\xff")
    assert w.wait().result["size"] == 2
    assert h.state(FE) == READY
    assert (ws / "sub" / "b.bin").read_bytes() == b"\x00\xff"
    read = h.request(FE, "files.read", {"path": "a.txt"}).wait()
    assert read.body == b"alpha\n"
    first = h.request(FE, "files.list", {"path": "", "limit": 3}).wait().result
    assert len(first["entries"]) == 3
    assert first["next_cursor"]
    rest = h.request(FE, "files.list", {"cursor": first["next_cursor"], "limit": 100}).wait()
    names = [e["name"] for e in first["entries"] + rest.result["entries"]]
    assert sorted(names) == sorted(["a.txt", "sub", *(f"f{i}.txt" for i in range(5))])
    assert h.request(FE, "files.stat", {"path": "sub"}).wait().result["kind"] == "dir"
    assert "f3.txt" in h.request(FE, "files.glob", {"pattern": "*.txt"}).wait().result
    hits = h.request(FE, "files.search", {"query": "file 4"}).wait().result
    assert [m["path"] for m in hits] == ["f4.txt"]
    h.request(FE, "files.mkdir", {"path": "d"}).wait()
    h.request(FE, "files.rename", {"src": "a.txt", "dst": "d/a.txt"}).wait()
    h.request(FE, "files.delete", {"path": "d", "recursive": True}).wait()
    assert not (ws / "d").exists()


def test_watch_pushes_change_notifications(host: tuple[ExtensionHost, list[Any], Path]) -> None:
    h, changes, ws = host
    h.request(FE, "files.watch", {"path": ""}, replay=True).wait()
    (ws / "new.txt").write_text("x")
    _spin(lambda: any(c["path"] == "new.txt" for p in changes for c in p["changes"]))
    h.request(FE, "files.unwatch", {"path": ""}).wait()


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "a/../../x", "link/x"])
def test_path_escapes_are_refused_over_the_wire(
    host: tuple[ExtensionHost, list[Any], Path], path: str
) -> None:
    h, _, ws = host
    (ws / "link").symlink_to(ws.parent)
    (ws.parent / "outside.txt").write_text("secret")
    for method, params, body in (
        ("files.read", {"path": path}, b""),
        ("files.write", {"path": path}, b"pwned"),
    ):
        with pytest.raises(ProtocolError) as info:
            h.request(FE, method, params, body).wait()
        assert isinstance(info.value, InvalidParamsError)
        assert info.value.code == ErrorCode.INVALID_PARAMS
        assert info.value.data["code"] in ("outside_workspace", "invalid_path")
    assert (ws.parent / "outside.txt").read_text() == "secret"


def test_not_found_maps_to_a_request_error_with_its_code(
    host: tuple[ExtensionHost, list[Any], Path],
) -> None:
    h, _, _ = host
    with pytest.raises(ProtocolError) as info:
        h.request(FE, "files.read", {"path": "missing.txt"}).wait()
    assert info.value.code == ErrorCode.REQUEST_FAILED
    assert info.value.data == {"code": "not_found", "path": "missing.txt"}
