"""The File Explorer's node types: the functions, the manifest contract and a real child."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from symphony.extension_host.discovery import bundled_dir
from symphony.extension_host.host import ExtensionHost
from symphony.extension_host.manifest import parse_manifest
from symphony.extensions.file_explorer import main as fe_main
from symphony.extensions.file_explorer.nodes import (
    DEFAULTS,
    NODES,
    NodeInputError,
    list_files,
    method_name,
    read_files,
    search_files,
    write_file,
)
from symphony.extensions.file_explorer.service import FileService, WorkspaceError
from symphony.protocol import ErrorCode, InvalidParamsError, ProtocolError
from symphony.registry.descriptions import description_from_dict

FE = "symphony.file_explorer"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "src" / "a.py").write_text("import os\nprint('hello')\n")
    (root / "src" / "b.txt").write_text("notes\n")
    (root / "src" / "pkg" / "c.py").write_text("HELLO = 1\n")
    (root / "docs" / "readme.md").write_text("# Title\nhello world\n")
    (root / "top.py").write_text("x = 1\n")
    return root


@pytest.fixture
def fs(ws: Path) -> FileService:
    return FileService(ws)


def _node(inputs: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    return {"inputs": inputs or {}, "config": config, "options": {}}


# -- the manifest contract ------------------------------------------------------------------------


def test_every_node_type_names_a_registered_method_and_the_defaults_agree() -> None:
    m = parse_manifest(bundled_dir() / "file_explorer")
    types = {t["id"]: t for t in m.node_types}
    assert set(types) == set(NODES)
    for type_id, table in types.items():
        description = description_from_dict(table)
        assert description.method == method_name(type_id) == table["method"]
        assert method_name(type_id) in fe_main.extension.methods
        manifest_defaults = {
            f.name: f.default for f in description.config if f.default not in ("", None)
        }
        ours = {k: v for k, v in DEFAULTS[type_id].items() if v != ""}
        assert ours == manifest_defaults, type_id
    spec = fe_main.extension.methods
    assert spec["node.files.list"].idempotent
    assert not spec["node.files.write"].idempotent  # append must not run twice after a crash


def _declared_outputs(type_id: str) -> set[str]:
    m = parse_manifest(bundled_dir() / "file_explorer")
    table = next(t for t in m.node_types if t["id"] == type_id)
    return {p["name"] for p in table["outputs"]}


# -- files.list -------------------------------------------------------------------------------


def test_list_recursive_by_name_pattern(fs: FileService) -> None:
    out = list_files(fs, _node(pattern="*.py"))
    assert set(out) == {"outputs"}
    assert set(out["outputs"]) == _declared_outputs("files.list")
    assert out["outputs"]["files"] == ["top.py", "src/a.py", "src/pkg/c.py"]


def test_list_input_folder_overrides_config_and_non_recursive(fs: FileService) -> None:
    out = list_files(fs, _node({"folder": "src"}, folder="docs", recursive=False))
    assert out["outputs"]["files"] == ["src/a.py", "src/b.txt"]
    # A null input (not connected) leaves the config in charge.
    out = list_files(fs, _node({"folder": None}, folder="docs"))
    assert out["outputs"]["files"] == ["docs/readme.md"]


def test_list_path_pattern_spans_folders(fs: FileService) -> None:
    out = list_files(fs, _node(folder="src", pattern="**/*.py"))
    assert out["outputs"]["files"] == ["src/a.py", "src/pkg/c.py"]
    out = list_files(fs, _node(folder="src", pattern="pkg/*.py"))
    assert out["outputs"]["files"] == ["src/pkg/c.py"]


def test_list_over_max_files_is_an_error_naming_the_limit(fs: FileService) -> None:
    with pytest.raises(WorkspaceError, match=r"more than 2 files in \. match '\*'") as info:
        list_files(fs, _node(max_files=2))
    assert info.value.code == "too_large"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (_node(folder="../x"), "uses '..'"),
        (_node(folder="/etc"), "is absolute"),
        (_node(folder="missing"), "missing does not exist"),
        (_node(folder="top.py"), "top.py is not a folder"),
        (_node(pattern="../*"), "uses '..'"),
    ],
)
def test_list_refuses_bad_folders(fs: FileService, params: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkspaceError, match=message):
        list_files(fs, params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (_node(max_files=0), "config 'max_files' must be a whole number from 1 to 10000, got 0"),
        (_node(max_files="9"), "config 'max_files' must be a whole number"),
        (_node(recursive="yes"), "config 'recursive' must be true or false"),
        (_node({"folder": 3}), "input 'folder' must be text, got 3"),
        ({"inputs": [], "config": {}}, "'inputs' must be an object"),
        ({"inputs": {}, "config": "x"}, "'config' must be an object"),
    ],
)
def test_list_bad_values_name_the_field(
    fs: FileService, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(NodeInputError, match=message) as info:
        list_files(fs, params)
    assert str(info.value).startswith("files.list: ")


def test_list_accepts_whole_float_counts(fs: FileService) -> None:
    assert list_files(fs, _node(max_files=3.0, pattern="*.py"))["outputs"]["files"]


# -- files.read -------------------------------------------------------------------------------


def test_read_one_path_passes_the_text_as_is(fs: FileService) -> None:
    out = read_files(fs, _node({"path": "src/a.py"}, path="top.py"))
    assert set(out["outputs"]) == _declared_outputs("files.read")
    assert out["outputs"]["text"] == "import os\nprint('hello')\n"
    assert out["outputs"]["files"] == [{"path": "src/a.py", "text": "import os\nprint('hello')\n"}]
    assert read_files(fs, _node(path="./top.py"))["outputs"]["files"][0]["path"] == "top.py"


def test_read_paths_join_under_headings(fs: FileService) -> None:
    out = read_files(fs, _node({"paths": ["top.py", "src/b.txt"]}))
    assert out["outputs"]["text"] == "## top.py\n\nx = 1\n\n\n## src/b.txt\n\nnotes\n"
    assert [f["path"] for f in out["outputs"]["files"]] == ["top.py", "src/b.txt"]
    # path and paths both connected: path first, all under headings.
    out = read_files(fs, _node({"path": "src/b.txt", "paths": ["top.py"]}))
    assert out["outputs"]["text"].startswith("## src/b.txt\n\nnotes\n")
    # An empty list reads nothing (e.g. a files.list that found none).
    assert read_files(fs, _node({"paths": []}))["outputs"] == {"text": "", "files": []}


def test_read_feeds_from_list(fs: FileService) -> None:
    listed = list_files(fs, _node(folder="src", pattern="*.py"))["outputs"]["files"]
    out = read_files(fs, _node({"paths": listed}))
    assert "## src/pkg/c.py\n\nHELLO = 1\n" in out["outputs"]["text"]


def test_read_errors(fs: FileService, ws: Path) -> None:
    (ws / "bin.dat").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(NodeInputError, match="no file to read: connect 'path' or 'paths'"):
        read_files(fs, _node())
    with pytest.raises(NodeInputError, match="input 'paths' must be a list of workspace paths"):
        read_files(fs, _node({"paths": "top.py"}))
    with pytest.raises(WorkspaceError, match="bin.dat is not UTF-8 text"):
        read_files(fs, _node(path="bin.dat"))
    with pytest.raises(WorkspaceError, match=r"src/a\.py is 25 bytes, over the node's limit of 4"):
        read_files(fs, _node(path="src/a.py", max_bytes=4))
    with pytest.raises(WorkspaceError, match="src is a folder"):
        read_files(fs, _node(path="src"))
    with pytest.raises(WorkspaceError, match="nope.txt does not exist"):
        read_files(fs, _node({"paths": ["top.py", "nope.txt"]}))
    with pytest.raises(WorkspaceError, match="uses '..'"):
        read_files(fs, _node({"path": "../ws/top.py"}))


# -- files.write ------------------------------------------------------------------------------


def test_write_modes(fs: FileService, ws: Path) -> None:
    out = write_file(fs, _node({"content": "one\n"}, path="out/./r.md"))
    assert out == {"outputs": {"path": "out/r.md"}}
    assert set(out["outputs"]) == _declared_outputs("files.write")
    assert (ws / "out" / "r.md").read_text() == "one\n"
    write_file(fs, _node({"content": "two\n"}, path="out/r.md", mode="append"))
    assert (ws / "out" / "r.md").read_text() == "one\ntwo\n"
    write_file(fs, _node({"content": "new\n"}, path="out/r.md", mode="overwrite"))
    assert (ws / "out" / "r.md").read_text() == "new\n"
    with pytest.raises(WorkspaceError, match="out/r.md already exists") as info:
        write_file(fs, _node({"content": "x"}, path="out/r.md", mode="fail"))
    assert info.value.code == "exists"
    assert (ws / "out" / "r.md").read_text() == "new\n"
    write_file(fs, _node({"content": "fresh"}, path="fresh.txt", mode="fail"))
    write_file(fs, _node({"content": "appended"}, path="made.txt", mode="append"))
    assert (ws / "fresh.txt").read_text() == "fresh"
    assert (ws / "made.txt").read_text() == "appended"
    assert not [p for p in ws.rglob("*.tmp")]


def test_append_is_atomic_for_readers(fs: FileService, ws: Path) -> None:
    """A reader racing appends sees whole versions only (old or new, never a torn prefix)."""
    target = ws / "log.txt"
    target.write_text("")
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(target.read_text())

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(30):
            write_file(fs, _node({"content": f"{i:02d}|"}, path="log.txt", mode="append"))
    finally:
        stop.set()
        t.join()
    assert target.read_text() == "".join(f"{i:02d}|" for i in range(30))
    assert all(len(s) % 3 == 0 for s in seen)


@pytest.mark.parametrize(
    ("params", "message", "error"),
    [
        (_node(path="a.txt"), "input 'content' is required", NodeInputError),
        (
            _node({"content": {"a": 1}}, path="a.txt"),
            "input 'content' must be text",
            NodeInputError,
        ),
        (_node({"content": "x"}), "config 'path' must be text, got None", NodeInputError),
        (_node({"content": "x"}, path=" "), "config 'path' is empty", NodeInputError),
        (
            _node({"content": "x"}, path="a.txt", mode="merge"),
            "config 'mode' must be overwrite or append or fail, got 'merge'",
            NodeInputError,
        ),
        (_node({"content": "x"}, path="../a.txt"), "uses '..'", WorkspaceError),
        (_node({"content": "x"}, path="src"), "src is a folder", WorkspaceError),
    ],
)
def test_write_errors(
    fs: FileService, ws: Path, params: dict[str, Any], message: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match=message):
        write_file(fs, params)
    assert not (ws.parent / "a.txt").exists()
    assert not (ws / "a.txt").exists()


# -- files.search -----------------------------------------------------------------------------


def test_search(fs: FileService) -> None:
    out = search_files(fs, _node(query="hello"))
    assert set(out["outputs"]) == _declared_outputs("files.search")
    assert out["outputs"]["files"] == ["docs/readme.md", "src/a.py", "src/pkg/c.py"]
    assert out["outputs"]["matches"][0] == {
        "path": "docs/readme.md",
        "line": 2,
        "column": 1,
        "text": "hello world",
    }
    out = search_files(fs, _node({"query": "HELLO"}, query="nothing", case_sensitive=True))
    assert out["outputs"]["files"] == ["src/pkg/c.py"]
    out = search_files(fs, _node(query=r"^x = \d", regex=True, glob="*.py"))
    assert out["outputs"]["files"] == ["top.py"]
    assert len(search_files(fs, _node(query="l", max_results=2))["outputs"]["matches"]) == 2


def test_search_errors(fs: FileService) -> None:
    with pytest.raises(NodeInputError, match="nothing to search for"):
        search_files(fs, _node())
    with pytest.raises(WorkspaceError, match="invalid regular expression"):
        search_files(fs, _node(query="(", regex=True))


# -- through a real child -------------------------------------------------------------------------


def test_nodes_run_through_a_real_child(
    host: tuple[ExtensionHost, list[Any], Path],
) -> None:
    h, _, ws = host
    (ws / "src").mkdir()
    (ws / "src" / "m.py").write_text("def f():\n    return 42\n")
    (ws / "src" / "n.py").write_text("N = 'answer'\n")
    listed = h.request(FE, "node.files.list", _node({"folder": "src"}, pattern="*.py")).wait()
    assert listed.result == {"outputs": {"files": ["src/m.py", "src/n.py"]}}
    read = h.request(FE, "node.files.read", _node({"paths": listed.result["outputs"]["files"]}))
    text = read.wait().result["outputs"]["text"]
    assert text == "## src/m.py\n\ndef f():\n    return 42\n\n\n## src/n.py\n\nN = 'answer'\n"
    wrote = h.request(FE, "node.files.write", _node({"content": text}, path="out/all.md")).wait()
    assert wrote.result == {"outputs": {"path": "out/all.md"}}
    assert (ws / "out" / "all.md").read_text() == text
    found = h.request(FE, "node.files.search", _node({"query": "answer"})).wait().result
    assert found["outputs"]["files"] == ["out/all.md", "src/n.py"]


def test_node_errors_over_the_wire_name_the_problem(
    host: tuple[ExtensionHost, list[Any], Path],
) -> None:
    h, _, ws = host
    with pytest.raises(InvalidParamsError, match="files.list: config 'max_files' must be"):
        h.request(FE, "node.files.list", _node(max_files=-1)).wait()
    with pytest.raises(ProtocolError) as info:
        h.request(FE, "node.files.write", _node({"content": "x"}, path="/etc/x")).wait()
    assert info.value.code == ErrorCode.INVALID_PARAMS
    assert info.value.data == {"code": "outside_workspace", "path": "/etc/x"}
    with pytest.raises(ProtocolError) as info:
        h.request(FE, "node.files.read", _node(path="gone.txt")).wait()
    assert info.value.code == ErrorCode.REQUEST_FAILED
    assert "gone.txt does not exist" in info.value.message
    with pytest.raises(InvalidParamsError, match="params must be an object"):
        h.request(FE, "node.files.list", ["not", "an", "object"]).wait()
