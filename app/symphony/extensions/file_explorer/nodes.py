"""The File Explorer's node types run as melody nodes: ``files.list/read/write/search``.

Each node type of ``extension.toml`` names a protocol method ``node.<type id>`` that runs one node:
params ``{"inputs": {port: value}, "config": {field: value}, "options": {...}}`` → result
``{"outputs": {port: value}}`` with exactly the output ports the manifest declares (the same
contract as the AI Instrument's nodes). Values are plain JSON: a ``file-list`` is a list of
workspace-relative path strings, a ``file-path`` one such string. An input that is connected
overrides the config field of the same meaning (``files.list``'s ``folder``, ``files.read``'s
``path``, ``files.search``'s ``query``). Config fields left out take the manifest's defaults
(:data:`DEFAULTS`; a test checks they agree with the manifest).

Bad values raise :class:`NodeInputError` naming the node type, the port or field and the problem;
refused paths raise :class:`~.service.WorkspaceError` as for the service methods.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from symphony.extensions.file_explorer.service import (
    MAX_PAGE,
    Check,
    FileService,
    WorkspaceError,
    glob_regex,
)

#: The config defaults of each node type (they mirror ``extension.toml``).
DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "files.list": {"folder": ".", "pattern": "*", "recursive": True, "max_files": 200},
    "files.read": {"path": "", "max_bytes": 200_000},
    "files.write": {"mode": "overwrite"},
    "files.search": {
        "query": "",
        "glob": "**",
        "regex": False,
        "case_sensitive": False,
        "max_results": 100,
    },
}
WRITE_MODES: Final = ("overwrite", "append", "fail")
#: Seconds a walk may take when the request has no deadline.
DEFAULT_TIMEOUT: Final = 30.0


class NodeInputError(ValueError):
    """An input or config value a node cannot use; the message names the node type and field."""


class _Args:
    """A node's inputs and config with the manifest defaults and typed accessors."""

    def __init__(self, node_type: str, params: Mapping[str, Any]) -> None:
        self.node_type = node_type
        inputs = params.get("inputs")
        config = params.get("config")
        if inputs is None:
            inputs = {}
        if config is None:
            config = {}
        if not isinstance(inputs, Mapping):
            raise NodeInputError(f"{node_type}: 'inputs' must be an object of port values")
        if not isinstance(config, Mapping):
            raise NodeInputError(f"{node_type}: 'config' must be an object of field values")
        self.inputs = inputs
        self.config = {**DEFAULTS[node_type], **config}

    def fail(self, where: str, name: str, want: str, value: Any) -> NodeInputError:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return NodeInputError(f"{self.node_type}: {where} {name!r} must be {want}, got {shown}")

    def text(self, name: str, *, port: bool = False) -> str:
        source, where = (self.inputs, "input") if port else (self.config, "config")
        value = source.get(name)
        if not isinstance(value, str):
            raise self.fail(where, name, "text", value)
        return value

    def flag(self, name: str) -> bool:
        value = self.config.get(name)
        if not isinstance(value, bool):
            raise self.fail("config", name, "true or false", value)
        return value

    def count(self, name: str, low: int, high: int) -> int:
        value = self.config.get(name)
        # JSON numbers may arrive as 200.0 from a form; accept whole floats.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail("config", name, f"a whole number from {low} to {high}", value)
        return value

    def override(self, name: str) -> str:
        """Return the input ``name`` when connected (not ``None``), else the config field."""
        if self.inputs.get(name) is not None:
            return self.text(name, port=True)
        return self.text(name)


def _no_check() -> None:
    return None


def _timeout(deadline: float | None) -> float:
    if deadline is None:
        return DEFAULT_TIMEOUT
    return max(0.1, deadline - time.monotonic() - 0.1)


def _folder(service: FileService, node_type: str, rel: str) -> str:
    norm = service.normalize(rel)
    entry = service.stat(norm)
    if entry.kind != "dir":
        raise WorkspaceError("not_a_directory", f"{node_type}: {norm or '.'} is not a folder", norm)
    return norm


def list_files(
    service: FileService,
    params: Mapping[str, Any],
    deadline: float | None = None,
    check: Check = _no_check,
) -> dict[str, Any]:
    """Run a ``files.list`` node: the files of a folder whose name matches a pattern.

    A pattern without ``/`` matches file names (``*.py``); one with ``/`` matches the path
    relative to the folder (``src/**/*.py``, ``**`` spanning folders). Files come in walk order
    (folder by folder, names sorted); symlinked folders are not followed.

    Parameters
    ----------
    service
        The workspace.
    params
        ``{"inputs": {"folder"?}, "config": {"folder", "pattern", "recursive", "max_files"}}``.
    deadline
        ``time.monotonic()`` value after which the walk gives up.
    check
        Called while walking (answers pings; raises on cancel).

    Returns
    -------
    dict
        ``{"outputs": {"files": [path, ...]}}`` with workspace-relative paths.

    Raises
    ------
    NodeInputError
        A value of the wrong type or range.
    WorkspaceError
        The folder is refused, missing or not a folder; or more than ``max_files`` files match.
    """
    a = _Args("files.list", params)
    folder = _folder(service, a.node_type, a.override("folder"))
    pattern = a.text("pattern") or "*"
    recursive = a.flag("recursive")
    max_files = a.count("max_files", 1, MAX_PAGE)
    service.normalize(pattern.replace("*", "x").replace("?", "x"))  # no '..', '/x', NUL …
    match = _name_matcher(pattern)
    prefix = f"{folder}/" if folder else ""
    files: list[str] = []
    walk = service.walk(
        folder, time.monotonic() + _timeout(deadline), recursive=recursive, check=check
    )
    for rel, _ in walk:
        if match(rel[len(prefix) :]):
            if len(files) == max_files:
                raise WorkspaceError(
                    "too_large",
                    f"files.list: more than {max_files} files in {folder or '.'} match "
                    f"{pattern!r}; raise 'At most files' or narrow the pattern",
                    folder,
                )
            files.append(rel)
    return {"outputs": {"files": files}}


def _name_matcher(pattern: str) -> Callable[[str], bool]:
    if "/" in pattern:
        rx = glob_regex(pattern)
        return lambda rel: rx.match(rel) is not None
    name_rx = re.compile(fnmatch.translate(pattern))
    return lambda rel: name_rx.match(rel.rsplit("/", 1)[-1]) is not None


def read_files(
    service: FileService,
    params: Mapping[str, Any],
    deadline: float | None = None,
    check: Check = _no_check,
) -> dict[str, Any]:
    """Run a ``files.read`` node: one file's text, or several under ``## path`` headings.

    The files are the ``path`` input, then the ``paths`` input; with neither connected, the
    config's ``path``. Text from a single ``path`` is passed on as it is; when ``paths`` is
    connected each file's text follows a ``## <path>`` heading line, separated by blank lines.

    Parameters
    ----------
    service
        The workspace.
    params
        ``{"inputs": {"path"?, "paths"?}, "config": {"path", "max_bytes"}}``.
    deadline
        Unused (reads are bounded by ``max_bytes``); there for one signature across node types.

    Returns
    -------
    dict
        ``{"outputs": {"text": str, "files": [{"path", "text"}, ...]}}``.

    Raises
    ------
    NodeInputError
        No file named, or a value of the wrong type.
    WorkspaceError
        A file refused, missing, not UTF-8 text or over ``max_bytes``.
    """
    a = _Args("files.read", params)
    # The text goes out twice (``text`` and ``files``) in one reply no larger than a read.
    max_bytes = a.count("max_bytes", 1, service.max_read_bytes // 2)
    paths: list[str] = []
    if a.inputs.get("path") is not None:
        paths.append(a.text("path", port=True))
    listed = a.inputs.get("paths")
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
            raise a.fail("input", "paths", "a list of workspace paths", listed)
        paths.extend(listed)
    elif not paths:
        configured = a.text("path")
        if not configured:
            raise NodeInputError(
                "files.read: no file to read: connect 'path' or 'paths', or set the config's File"
            )
        paths.append(configured)
    files = [
        {"path": norm, "text": _read_text(service, norm, max_bytes)}
        for norm in (service.normalize(p) for p in paths)
    ]
    if listed is None and len(files) == 1:
        text = files[0]["text"]
    else:
        text = "\n\n".join(f"## {f['path']}\n\n{f['text']}" for f in files)
    outputs = {"text": text, "files": files}
    # Several files, or text that JSON escapes (control characters), can still outgrow one
    # message: refuse here, naming the setting, rather than fail later on the frame size.
    size = len(json.dumps(outputs, ensure_ascii=False).encode("utf-8"))
    if size > service.max_read_bytes:
        raise WorkspaceError(
            "too_large",
            f"files.read: the text of {len(files)} file(s) takes {size} bytes as node outputs, "
            f"over the {service.max_read_bytes}-byte limit of one message; read fewer files or "
            "lower 'At most bytes per file'",
            files[0]["path"] if files else "",
        )
    return {"outputs": outputs}


def _read_text(service: FileService, norm: str, max_bytes: int) -> str:
    entry = service.stat(norm)
    if entry.kind == "dir":
        raise WorkspaceError("is_a_directory", f"files.read: {norm or '.'} is a folder", norm)
    if entry.size > max_bytes:
        raise WorkspaceError(
            "too_large",
            f"files.read: {norm} is {entry.size} bytes, over the node's limit of {max_bytes} "
            "(raise 'At most bytes per file')",
            norm,
        )
    data = service.read(norm)
    if len(data) > max_bytes:  # grew between stat and read
        raise WorkspaceError(
            "too_large", f"files.read: {norm} grew past the node's limit of {max_bytes}", norm
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WorkspaceError(
            "invalid_argument", f"files.read: {norm} is not UTF-8 text (byte {e.start})", norm
        ) from None


def write_file(
    service: FileService,
    params: Mapping[str, Any],
    deadline: float | None = None,
    check: Check = _no_check,
) -> dict[str, Any]:
    """Run a ``files.write`` node: write the ``content`` input to the config's ``path``.

    Modes: ``overwrite`` replaces the file, ``append`` adds to its end (creating it if needed),
    ``fail`` refuses an existing file. Every mode writes atomically (temporary file, ``fsync``,
    rename), so a reader sees the old or the new content, never a part; missing folders on the
    way are created.

    Parameters
    ----------
    service
        The workspace.
    params
        ``{"inputs": {"content"}, "config": {"path", "mode"}}``.
    deadline
        Unused; there for one signature across node types.

    Returns
    -------
    dict
        ``{"outputs": {"path": <workspace-relative path written>}}``.

    Raises
    ------
    NodeInputError
        No content, no path, or an unknown mode.
    WorkspaceError
        The path refused, a folder, or existing with mode ``fail``.
    """
    a = _Args("files.write", params)
    if a.inputs.get("content") is None:
        raise NodeInputError("files.write: input 'content' is required (connect a text)")
    content = a.text("content", port=True)
    rel = a.text("path")
    if not rel.strip():
        raise NodeInputError("files.write: config 'path' is empty: name the file to write")
    mode = a.config.get("mode")
    if mode not in WRITE_MODES:
        raise a.fail("config", "mode", " or ".join(WRITE_MODES), mode)
    norm = service.normalize(rel)
    data = content.encode("utf-8")
    if mode == "append":
        try:
            data = service.read(norm) + data
        except WorkspaceError as e:
            if e.code != "not_found":
                raise
    entry = service.write(norm, data, overwrite=mode != "fail", create_parents=True)
    return {"outputs": {"path": entry.path}}


def search_files(
    service: FileService,
    params: Mapping[str, Any],
    deadline: float | None = None,
    check: Check = _no_check,
) -> dict[str, Any]:
    """Run a ``files.search`` node: lines of workspace files that contain a text.

    Parameters
    ----------
    service
        The workspace.
    params
        ``{"inputs": {"query"?}, "config": {"query", "glob", "regex", "case_sensitive",
        "max_results"}}``.
    deadline
        ``time.monotonic()`` value after which the search gives up.
    check
        Called while searching (answers pings; raises on cancel).

    Returns
    -------
    dict
        ``{"outputs": {"matches": [{"path", "line", "column", "text"}], "files": [path, ...]},
        "skipped": [path, ...]}`` (``files``: each file with a match once, in order;
        ``skipped``: files not searched because they are not UTF-8 text or unreadable).

    Raises
    ------
    NodeInputError
        An empty query or a value of the wrong type.
    WorkspaceError
        An invalid regular expression or glob, a regular expression that did not finish
        within the time limit, or a search that outlasted it.
    """
    a = _Args("files.search", params)
    query = a.override("query")
    if not query:
        raise NodeInputError(
            "files.search: nothing to search for: connect 'query' or set the config's Text"
        )
    skipped: list[str] = []
    hits = service.search(
        query,
        glob=a.text("glob") or "**",
        regex=a.flag("regex"),
        case_sensitive=a.flag("case_sensitive"),
        max_results=a.count("max_results", 1, MAX_PAGE),
        timeout=_timeout(deadline),
        check=check,
        skipped=skipped,
    )
    matches = [{"path": m.path, "line": m.line, "column": m.column, "text": m.text} for m in hits]
    files = list(dict.fromkeys(m.path for m in hits))
    return {"outputs": {"matches": matches, "files": files}, "skipped": skipped}


NodeRunner = Callable[[FileService, Mapping[str, Any], "float | None", Check], dict[str, Any]]

#: The function that runs each node type (key: the node type id).
NODES: Final[dict[str, NodeRunner]] = {
    "files.list": list_files,
    "files.read": read_files,
    "files.write": write_file,
    "files.search": search_files,
}


def method_name(node_type: str) -> str:
    """Return the protocol method that runs a node of ``node_type`` (``node.<type id>``)."""
    return f"node.{node_type}"


__all__ = [
    "DEFAULTS",
    "NODES",
    "NodeInputError",
    "list_files",
    "method_name",
    "read_files",
    "search_files",
    "write_file",
]
