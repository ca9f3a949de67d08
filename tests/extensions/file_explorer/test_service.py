"""The File Explorer's service: confinement to the workspace, and every operation."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from symphony.extensions.file_explorer.service import FileService, WorkspaceError


@pytest.fixture
def ws(tmp_path: Path) -> FileService:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "a.py").write_text("import os\nprint('Hello')\n")
    (root / "README.md").write_text("# Title\nhello world\n")
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_text("x")
    os.symlink(tmp_path / "secret.txt", root / "leak")
    os.symlink(tmp_path / "outside", root / "door")
    os.symlink("src/pkg", root / "shortcut")  # inside: allowed
    os.symlink("../../..", root / "src" / "up")
    os.symlink(tmp_path / "missing-outside", root / "dangling")
    return FileService(root)


ESCAPES = [
    "../secret.txt",
    "src/../../secret.txt",
    "/etc/passwd",
    "//etc/passwd",
    "C:/Windows",
    "c:secret",
    "..",
    "./..",
    "src/pkg/../../..",
    "leak",
    "door/x.txt",
    "door",
    "src/up/secret.txt",
    "src/up",
    "shortcut/../../secret.txt",
    "dangling",
    "readme\x00.md",
    "..\\secret.txt",
    "src\\..\\..\\secret.txt",
    "a" * 5000,
]


#: Escapes that are a link by their last component: renaming that name renames the link itself
#: (see test_renaming_a_link_renames_the_link_not_its_target).
LINK_NAMES = {"leak", "door", "src/up", "dangling"}


@pytest.mark.parametrize("path", ESCAPES)
def test_every_escape_is_refused_for_every_operation(ws: FileService, path: str) -> None:
    operations: list[Callable[[], object]] = [
        lambda: ws.stat(path),
        lambda: ws.read(path),
        lambda: ws.write(path, b"pwned"),
        lambda: ws.mkdir(path),
        lambda: ws.list_dir(path),
    ]
    if path not in LINK_NAMES:
        operations += [lambda: ws.rename("README.md", path), lambda: ws.rename(path, "moved")]
    for op in operations:
        with pytest.raises(WorkspaceError) as info:
            op()
        assert info.value.code in {"outside_workspace", "invalid_path", "not_found"}, (
            path,
            info.value,
        )
    assert (ws.root.parent / "secret.txt").read_text() == "top secret"
    assert not (ws.root.parent / "pwned").exists()


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        ("../secret.txt", "outside_workspace", "'..'"),
        ("/etc/passwd", "outside_workspace", "absolute"),
        ("leak", "outside_workspace", "symbolic link"),
        ("a\x00b", "invalid_path", "NUL byte"),
        ("a\\b", "invalid_path", "backslash"),
    ],
)
def test_refusals_name_the_path_and_reason(
    ws: FileService, path: str, code: str, words: str
) -> None:
    with pytest.raises(WorkspaceError) as info:
        ws.read(path)
    assert info.value.code == code
    assert words in str(info.value)


def test_non_string_path_is_refused(ws: FileService) -> None:
    with pytest.raises(WorkspaceError, match="must be a string, got int"):
        ws.stat(3)  # type: ignore[arg-type]


def test_deleting_an_outward_link_removes_only_the_link(ws: FileService) -> None:
    ws.delete("leak")
    ws.delete("door")
    assert (ws.root.parent / "secret.txt").exists()
    assert (ws.root.parent / "outside" / "x.txt").exists()
    with pytest.raises(WorkspaceError, match="cannot be deleted"):
        ws.delete("")


def test_renaming_a_link_renames_the_link_not_its_target(ws: FileService) -> None:
    root = ws.root
    (root / "target.txt").write_text("target content\n")
    os.symlink("target.txt", root / "link.txt")
    entry = ws.rename("link.txt", "link2.txt")
    assert (entry.path, entry.kind) == ("link2.txt", "file")  # described by its target
    assert os.readlink(root / "link2.txt") == "target.txt"
    assert not os.path.lexists(root / "link.txt")
    assert (root / "target.txt").read_text() == "target content\n"
    assert not (root / "target.txt").is_symlink()
    # A folder link: the folder it points to stays where it is, with its content.
    assert ws.rename("shortcut", "shortcut2").kind == "dir"
    assert os.readlink(root / "shortcut2") == "src/pkg"
    assert (root / "src" / "pkg" / "a.py").is_file()
    assert ws.read("shortcut2/a.py").startswith(b"import os")
    # Links leading outside or nowhere are renamed as links too; nothing outside is touched.
    for name in sorted(LINK_NAMES):
        before = os.readlink(root / name)
        entry = ws.rename(name, f"{name}-renamed")
        assert (entry.path, entry.kind) == (f"{name}-renamed", "symlink")
        assert os.readlink(root / f"{name}-renamed") == before
        assert not os.path.lexists(root / name)
    assert (root.parent / "secret.txt").read_text() == "top secret"
    assert (root.parent / "outside" / "x.txt").read_text() == "x"
    assert not (root.parent / "moved").exists()


def test_a_link_as_the_destination_is_the_name_not_its_target(ws: FileService) -> None:
    root = ws.root
    (root / "target.txt").write_text("target content\n")
    os.symlink("target.txt", root / "link.txt")
    os.symlink("nowhere.txt", root / "dl")  # dangling, inside
    for dst in ("link.txt", "dl", "leak"):
        with pytest.raises(WorkspaceError, match=f"{dst} already exists"):
            ws.rename("README.md", dst)
    assert not (root / "nowhere.txt").exists()
    assert (root / "target.txt").read_text() == "target content\n"
    # overwrite replaces the name (the link), never what it points to.
    ws.rename("README.md", "link.txt", overwrite=True)
    ws.write("other.md", "other\n")
    ws.rename("other.md", "leak", overwrite=True)
    assert not (root / "link.txt").is_symlink()
    assert (root / "link.txt").read_text() == "# Title\nhello world\n"
    assert (root / "target.txt").read_text() == "target content\n"
    assert (root / "leak").read_text() == "other\n"
    assert (root.parent / "secret.txt").read_text() == "top secret"


def test_creating_over_a_dangling_link_name_is_refused(ws: FileService) -> None:
    os.symlink("nowhere", ws.root / "dl")
    with pytest.raises(WorkspaceError, match="dl already exists"):
        ws.write("dl", b"", overwrite=False)
    with pytest.raises(WorkspaceError, match="dl already exists"):
        ws.mkdir("dl")
    with pytest.raises(WorkspaceError, match="dl already exists"):
        ws.mkdir("dl", parents=True)
    assert not os.path.lexists(ws.root / "nowhere")
    assert os.readlink(ws.root / "dl") == "nowhere"


def test_stat_of_a_dangling_link_says_so(ws: FileService) -> None:
    os.symlink("nowhere.txt", ws.root / "dl")
    with pytest.raises(WorkspaceError, match=r"dl is a symbolic link whose target \(nowhere.txt\)"):
        ws.stat("dl")
    with pytest.raises(WorkspaceError, match="leads outside the workspace"):
        ws.stat("leak")
    with pytest.raises(WorkspaceError, match="^missing.txt does not exist$"):
        ws.stat("missing.txt")


def test_symlinks_inside_the_workspace_work(ws: FileService) -> None:
    assert ws.read("shortcut/a.py").startswith(b"import os")
    assert ws.stat("shortcut").kind == "dir"


def test_list_pages_sorted_and_marks_links(ws: FileService) -> None:
    page = ws.list_dir("", limit=3)
    assert [e.name for e in page.entries] == ["README.md", "dangling", "door"]
    assert page.next_cursor == "door"
    rest = ws.list_dir("", cursor=page.next_cursor, limit=100)
    assert [e.name for e in rest.entries] == ["leak", "shortcut", "src"]
    assert rest.next_cursor is None
    kinds = {e.name: e.kind for e in page.entries + rest.entries}
    assert kinds == {
        "README.md": "file",
        "dangling": "symlink",
        "door": "symlink",
        "leak": "symlink",
        "shortcut": "dir",
        "src": "dir",
    }
    with pytest.raises(WorkspaceError, match="not a folder"):
        ws.list_dir("README.md")
    with pytest.raises(WorkspaceError, match="limit must be"):
        ws.list_dir("", limit=0)


@pytest.mark.slow
def test_paged_listing_of_a_100k_file_folder(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    for i in range(100_000):
        (big / f"f{i:06d}").touch()
    svc = FileService(tmp_path)
    seen = 0
    cursor = None
    pages = 0
    while True:
        page = svc.list_dir("big", cursor=cursor, limit=5000)
        seen += len(page.entries)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert (seen, pages) == (100_000, 20)


def test_read_limits_and_kinds(ws: FileService) -> None:
    small = FileService(ws.root, max_read_bytes=8)
    with pytest.raises(WorkspaceError, match="read it in parts") as info:
        small.read("README.md")
    assert info.value.code == "too_large"
    assert small.read("README.md", offset=2, length=5) == b"Title"
    with pytest.raises(WorkspaceError, match="is a folder"):
        ws.read("src")
    with pytest.raises(WorkspaceError, match="does not exist") as info:
        ws.read("nope.txt")
    assert info.value.code == "not_found"
    os.mkfifo(ws.root / "pipe")
    with pytest.raises(WorkspaceError, match="not a regular file"):
        ws.read("pipe")  # must not block
    (ws.root / "bin").write_bytes(b"\xff\xfe")
    with pytest.raises(WorkspaceError, match="not utf-8 text"):
        ws.read_text("bin")


def test_write_is_atomic_and_respects_flags(ws: FileService) -> None:
    e = ws.write("notes/today.md", "hi", create_parents=True)
    assert (e.kind, e.size) == ("file", 2)
    assert ws.read_text("notes/today.md") == "hi"
    ws.write("notes/today.md", b"again")
    assert ws.read("notes/today.md") == b"again"
    with pytest.raises(WorkspaceError, match="already exists"):
        ws.write("notes/today.md", b"x", overwrite=False)
    with pytest.raises(WorkspaceError) as info:
        ws.write("missing/dir/file.txt", b"x")
    assert info.value.code == "not_found"
    with pytest.raises(WorkspaceError, match="is a folder"):
        ws.write("src", b"x")
    limited = FileService(ws.root, max_write_bytes=3)
    with pytest.raises(WorkspaceError, match="exceeds the 3-byte limit"):
        limited.write("big.bin", b"1234")
    leftovers = [p for p in ws.root.rglob("*.tmp")]
    assert leftovers == []


def test_mkdir_rename_delete(ws: FileService) -> None:
    ws.mkdir("a/b/c", parents=True)
    with pytest.raises(WorkspaceError, match="already exists"):
        ws.mkdir("a/b/c")
    ws.mkdir("a/b/c", parents=True, exist_ok=True)
    ws.write("a/f.txt", "1")
    ws.write("a/g.txt", "2")
    with pytest.raises(WorkspaceError, match="already exists"):
        ws.rename("a/f.txt", "a/g.txt")
    assert ws.read("a/g.txt") == b"2"
    ws.rename("a/f.txt", "a/g.txt", overwrite=True)
    assert ws.read("a/g.txt") == b"1"
    ws.rename("a/b", "moved")
    assert ws.stat("moved/c").kind == "dir"
    with pytest.raises(WorkspaceError, match="into itself"):
        ws.rename("moved", "moved/c/inner")
    with pytest.raises(WorkspaceError, match="not empty"):
        ws.delete("moved")
    ws.delete("moved", recursive=True)
    with pytest.raises(WorkspaceError, match="does not exist"):
        ws.stat("moved")


def test_recursive_delete_does_not_follow_links_out(ws: FileService) -> None:
    os.symlink(ws.root.parent / "outside", ws.root / "src" / "pkg" / "out")
    ws.delete("src", recursive=True)
    assert (ws.root.parent / "outside" / "x.txt").exists()


def test_glob_and_search(ws: FileService) -> None:
    assert ws.glob("**/*.py") == ["src/pkg/a.py"]
    assert ws.glob("*.md") == ["README.md"]
    assert ws.glob("src/*") == []
    hits = ws.search("hello")
    assert [(m.path, m.line, m.column) for m in hits] == [
        ("README.md", 2, 1),
        ("src/pkg/a.py", 2, 8),
    ]
    assert [m.path for m in ws.search("Hello", case_sensitive=True)] == ["src/pkg/a.py"]
    assert [m.text for m in ws.search(r"^import \w+", regex=True)] == ["import os"]
    assert ws.search("hello", glob="**/*.py", max_results=1)[0].path == "src/pkg/a.py"
    with pytest.raises(WorkspaceError, match="invalid regular expression"):
        ws.search("(", regex=True)
    with pytest.raises(WorkspaceError, match="empty"):
        ws.search("")
    with pytest.raises(WorkspaceError, match="'..'"):
        ws.glob("../*")
