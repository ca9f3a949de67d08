"""The ``.melody`` file format: UTF-8 JSON with a ``format_version`` (``docs/melody-format.md``).

:func:`loads` / :func:`load` read the current version and migrate older ones; a broken file raises
:class:`MelodyFormatError` naming the line, the column and the JSON field path
(``review.melody:14:17: nodes[1].position: expected [x, y], got "left"``). :func:`dumps` /
:func:`save` write deterministically: fixed key order, nodes and links sorted by id (numbers in
ids compared as numbers), config and metadata keys sorted, two-space indentation, a final newline.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from symphony.workflow.model import (
    ID_RE,
    MAX_JSON_DEPTH,
    MAX_RETRIES,
    DependencyKind,
    Importance,
    JsonDataError,
    Link,
    Melody,
    MelodyError,
    Node,
    NodePolicy,
    _copy_json,
)

__all__ = [
    "FORMAT_VERSION",
    "MelodyFormatError",
    "dumps",
    "from_document",
    "load",
    "loads",
    "locate",
    "save",
    "to_document",
]

FORMAT_VERSION: Final = 2
SUFFIX: Final = ".melody"

PathT = tuple[str | int, ...]


class MelodyFormatError(ValueError):
    """A melody file that cannot be read; names where and what.

    Attributes
    ----------
    source
        The file name (or ``<string>``).
    line, column
        1-based position of the offending value (or of the nearest enclosing one that exists).
    path
        The JSON field path, e.g. ``nodes[1].position`` (``""`` for the document itself).
    reason
        What is wrong.
    """

    def __init__(self, source: str, line: int, column: int, path: str, reason: str) -> None:
        where = f"{source}:{line}:{column}"
        super().__init__(f"{where}: {path}: {reason}" if path else f"{where}: {reason}")
        self.source = source
        self.line = line
        self.column = column
        self.path = path
        self.reason = reason


class _FieldError(Exception):
    def __init__(self, path: PathT, reason: str, *, at_key: bool = False) -> None:
        super().__init__(reason)
        self.at_key = at_key  # point at the member's key rather than its value
        self.path = path
        self.reason = reason


def format_path(path: PathT) -> str:
    """Return ``path`` written as ``nodes[1].config.template``."""
    out: list[str] = []
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step):
            out.append(f".{step}" if out else step)
        else:
            out.append(f"[{_quote(step)}]")
    return "".join(out)


def _quote(text: str) -> str:
    """Return ``text`` as a JSON string; escaped if it cannot be printed (a lone surrogate)."""
    quoted = json.dumps(text, ensure_ascii=False)
    try:
        quoted.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(text)  # an error message must not itself be unprintable
    return quoted


# ----------------------------------------------------------------------------- positions

_WS: Final = " \t\r\n"


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def _skip_string(text: str, i: int) -> int:
    # text[i] == '"'; return the index after the closing quote
    i += 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        else:
            i += 1
    return n


def _skip_value(text: str, i: int) -> int:
    i = _skip_ws(text, i)
    if i >= len(text):
        return i
    c = text[i]
    if c == '"':
        return _skip_string(text, i)
    if c in "[{":
        depth = 0
        n = len(text)
        while i < n:
            c = text[i]
            if c == '"':
                i = _skip_string(text, i)
                continue
            if c in "[{":
                depth += 1
            elif c in "]}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return n
    j = i
    while j < len(text) and text[j] not in _WS + ",]}":
        j += 1
    return j


def _offset_of(text: str, path: PathT, *, at_key: bool = False) -> int:
    """Return the offset of the value at ``path`` in valid JSON ``text``.

    A path that does not exist gives the deepest enclosing value (a missing key: its object).
    With ``at_key``, a path ending in a key gives the key's offset instead of its value's.
    """
    i = _skip_ws(text, 0)
    for depth, step in enumerate(path):
        if i >= len(text):
            break
        c = text[i]
        if c == "{" and isinstance(step, str):
            j = _skip_ws(text, i + 1)
            found = -1
            while j < len(text) and text[j] == '"':
                end = _skip_string(text, j)
                key = json.loads(text[j:end])
                colon = _skip_ws(text, end)
                value_at = _skip_ws(text, colon + 1)
                if key == step:
                    last = depth == len(path) - 1
                    found = j if at_key and last else value_at  # the last duplicate wins
                j = _skip_ws(text, _skip_value(text, value_at))
                if j < len(text) and text[j] == ",":
                    j = _skip_ws(text, j + 1)
            if found < 0:
                return i
            i = found
        elif c == "[" and isinstance(step, int):
            j = _skip_ws(text, i + 1)
            k = 0
            found = -1
            while j < len(text) and text[j] != "]":
                if k == step:
                    found = j
                    break
                j = _skip_ws(text, _skip_value(text, j))
                if j < len(text) and text[j] == ",":
                    j = _skip_ws(text, j + 1)
                k += 1
            if found < 0:
                return i
            i = found
        else:
            break
    return i


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def locate(text: str, path: PathT, *, at_key: bool = False) -> tuple[int, int]:
    """Return the 1-based (line, column) of the value at ``path`` in the JSON ``text``.

    A path that does not exist resolves to its deepest existing ancestor; with ``at_key`` a path
    ending in a key resolves to the key.
    """
    return _line_col(text, _offset_of(text, path, at_key=at_key))


class _Constant:
    """Stands for ``NaN``/``Infinity``, which Python's JSON parser accepts and JSON does not."""

    def __init__(self, name: str) -> None:
        self.name = name


def _path_of(doc: Any, match: Callable[[Any], bool]) -> PathT:
    """Return the path of the first value in ``doc`` for which ``match`` holds (``()`` if none)."""
    stack: list[tuple[PathT, Any]] = [((), doc)]
    while stack:
        path, value = stack.pop()
        if match(value):
            return path
        if isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
    return ()


class _DuplicateKeyError(Exception):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _find_duplicate(text: str) -> tuple[PathT, int]:
    """Return the path and key offset of the first repeated key in valid JSON ``text``."""

    def walk(i: int, path: PathT) -> tuple[PathT, int] | None:
        i = _skip_ws(text, i)
        if i >= len(text):
            return None
        if text[i] == "{":
            seen: set[str] = set()
            j = _skip_ws(text, i + 1)
            while j < len(text) and text[j] == '"':
                end = _skip_string(text, j)
                key = json.loads(text[j:end])
                if key in seen:
                    return (*path, key), j
                seen.add(key)
                value_at = _skip_ws(text, _skip_ws(text, end) + 1)
                found = walk(value_at, (*path, key))
                if found is not None:
                    return found
                j = _skip_ws(text, _skip_value(text, value_at))
                if j < len(text) and text[j] == ",":
                    j = _skip_ws(text, j + 1)
        elif text[i] == "[":
            j = _skip_ws(text, i + 1)
            k = 0
            while j < len(text) and text[j] != "]":
                found = walk(j, (*path, k))
                if found is not None:
                    return found
                j = _skip_ws(text, _skip_value(text, j))
                if j < len(text) and text[j] == ",":
                    j = _skip_ws(text, j + 1)
                k += 1
        return None

    found = walk(0, ())
    return found if found is not None else ((), 0)


# ----------------------------------------------------------------------------- reading


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        r = _quote(value)
        return r if len(r) <= 40 else r[:37] + '..."'
    if isinstance(value, list):
        return "a list"
    return "an object"


class _Obj:
    """Typed reads from a JSON object, raising :class:`_FieldError` with the path."""

    def __init__(self, value: Any, path: PathT, allowed: tuple[str, ...]) -> None:
        if not isinstance(value, dict):
            raise _FieldError(path, f"expected an object, got {_kind(value)}")
        for key in value:
            if key not in allowed:
                raise _FieldError(
                    (*path, key),
                    f"unknown field (known: {', '.join(sorted(allowed))})",
                    at_key=True,
                )
        self.d: dict[str, Any] = value
        self.path = path

    def has(self, key: str) -> bool:
        return key in self.d

    def at(self, key: str) -> PathT:
        return (*self.path, key)

    def get(self, key: str, kind: str, default: Any = ..., *, nullable: bool = False) -> Any:
        if key not in self.d:
            if default is ...:
                raise _FieldError(self.at(key), "is required")
            return default
        value = self.d[key]
        if value is None and nullable:
            return None
        if not _CHECKS[kind](value):
            raise _FieldError(self.at(key), f"expected {_WANTS[kind]}, got {_kind(value)}")
        if kind == "str" and not value.isascii():
            _check_text(value, self.at(key))
        return value


_TOO_LARGE: Final = "the number is too large (beyond ±1.8e308 it cannot be stored)"


def _check_text(value: str, path: PathT) -> None:
    r"""Refuse text that could be read but never saved (a lone surrogate, ``"\ud83d"``)."""
    try:
        _copy_json(value, format_path(path))
    except JsonDataError as exc:
        raise _FieldError(path, exc.reason) from None


def _json_data(value: Any, path: PathT) -> Any:
    r"""Return config or metadata ``value`` copied for the melody, refusing what it cannot store.

    Python's JSON parser reads ``1e400`` as infinity without calling ``parse_constant``, and
    ``"\ud83d"`` as a lone surrogate; both would open and then make every save fail.
    """
    try:
        return _copy_json(value, format_path(path))
    except JsonDataError as exc:
        reason = exc.reason
        if reason.startswith("numbers must be finite"):
            reason = _TOO_LARGE  # NaN and Infinity were refused as they were parsed
        raise _FieldError((*path, *exc.path), reason, at_key=exc.at_key) from None


_CHECKS: Final[Mapping[str, Callable[[Any], bool]]] = {
    "str": lambda v: type(v) is str,
    "bool": lambda v: type(v) is bool,
    "int": lambda v: type(v) is int,
    "number": lambda v: type(v) is int or type(v) is float,
    "list": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}
_WANTS: Final[Mapping[str, str]] = {
    "str": "a text",
    "bool": "true or false",
    "int": "a whole number",
    "number": "a number",
    "list": "a list",
    "object": "an object",
}


_TOP_KEYS: Final = ("format_version", "name", "description", "metadata", "nodes", "links")
_NODE_KEYS: Final = ("id", "type", "name", "position", "config", "policy", "breakpoint")
_POLICY_KEYS: Final = ("max_retries", "timeout_s", "fallback_models", "skippable", "importance")
_LINK_KEYS: Final = ("id", "from", "to", "kind", "condition")
_END_KEYS: Final = ("node", "port")


def _read_policy(value: Any, path: PathT) -> NodePolicy:
    o = _Obj(value, path, _POLICY_KEYS)
    retries = o.get("max_retries", "int", 2)
    if not 0 <= retries <= MAX_RETRIES:
        raise _FieldError(o.at("max_retries"), f"must be from 0 to {MAX_RETRIES}, got {retries}")
    timeout = o.get("timeout_s", "number", None, nullable=True)
    if timeout is not None and (_finite(timeout) is None or timeout <= 0):
        raise _FieldError(o.at("timeout_s"), f"must be a positive number of seconds, got {timeout}")
    fallbacks = o.get("fallback_models", "list", [])
    for i, model in enumerate(fallbacks):
        if not isinstance(model, str) or not model.strip():
            raise _FieldError(
                (*o.at("fallback_models"), i), f"expected a model id, got {_kind(model)}"
            )
        _check_text(model, (*o.at("fallback_models"), i))
    importance_raw = o.get("importance", "str", "normal")
    try:
        importance = Importance(importance_raw)
    except ValueError:
        known = ", ".join(i.value for i in Importance)
        raise _FieldError(
            o.at("importance"), f"unknown importance {_kind(importance_raw)} (known: {known})"
        ) from None
    return NodePolicy(
        max_retries=retries,
        timeout_s=timeout,
        fallback_models=tuple(fallbacks),
        skippable=o.get("skippable", "bool", False),
        importance=importance,
    )


def _finite(value: Any) -> float | None:
    """Return ``value`` as a finite float, or ``None`` if it is not a number or too large."""
    if type(value) is not int and type(value) is not float:
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _read_id(o: _Obj, what: str) -> str:
    value = o.get("id", "str")
    if not ID_RE.match(value):
        raise _FieldError(
            o.at("id"), f"{what} id {_kind(value)} is malformed (1-64 letters, digits, '_' or '-')"
        )
    return str(value)


def _read_node(value: Any, path: PathT) -> Node:
    o = _Obj(value, path, _NODE_KEYS)
    node_id = _read_id(o, "node")
    type_id = o.get("type", "str")
    if not type_id.strip():
        raise _FieldError(o.at("type"), "must not be empty")
    position = o.d.get("position", [0, 0])
    if isinstance(position, list) and len(position) == 2:
        for k in (0, 1):
            if _CHECKS["number"](position[k]) and _finite(position[k]) is None:
                raise _FieldError((*o.at("position"), k), _TOO_LARGE)
    if (
        not isinstance(position, list)
        or len(position) != 2
        or _finite(position[0]) is None
        or _finite(position[1]) is None
    ):
        raise _FieldError(o.at("position"), f"expected [x, y] (two numbers), got {_kind(position)}")
    return Node(
        id=node_id,
        type_id=type_id,
        name=o.get("name", "str", type_id),
        config=_json_data(o.get("config", "object", {}), o.at("config")),
        position=(float(position[0]), float(position[1])),
        policy=_read_policy(o.d["policy"], o.at("policy")) if o.has("policy") else NodePolicy(),
        breakpoint=o.get("breakpoint", "bool", False),
    )


def _read_link(value: Any, path: PathT, node_ids: Mapping[str, Node]) -> Link:
    o = _Obj(value, path, _LINK_KEYS)
    link_id = _read_id(o, "link")
    ends: list[str] = []
    for side in ("from", "to"):
        end = _Obj(o.get(side, "object"), o.at(side), _END_KEYS)
        node_id = end.get("node", "str")
        if node_id not in node_ids:
            raise _FieldError(end.at("node"), f"unknown node {_kind(node_id)}")
        port = end.get("port", "str")
        if not port:
            raise _FieldError(end.at("port"), "must not be empty")
        ends += [node_id, port]
    kind_raw = o.get("kind", "str", "hard")
    try:
        kind = DependencyKind(kind_raw)
    except ValueError:
        known = ", ".join(k.value for k in DependencyKind)
        raise _FieldError(
            o.at("kind"), f"unknown dependency kind {_kind(kind_raw)} (known: {known})"
        ) from None
    condition = o.get("condition", "str", None, nullable=True)
    return Link(link_id, ends[0], ends[1], ends[2], ends[3], kind, condition or None)


def from_document(doc: Any) -> Melody:
    """Build a :class:`Melody` from a current-version document (already migrated).

    Raises
    ------
    _FieldError
        Internal; :func:`loads` turns it into a :class:`MelodyFormatError`.
    """
    o = _Obj(doc, (), _TOP_KEYS)
    melody = Melody(
        name=o.get("name", "str", "Untitled melody"),
        description=o.get("description", "str", ""),
        metadata=_json_data(o.get("metadata", "object", {}), ("metadata",)),
    )
    first_index: dict[str, int] = {}
    for i, raw in enumerate(o.get("nodes", "list", [])):
        node = _read_node(raw, ("nodes", i))
        if node.id in first_index:
            raise _FieldError(
                ("nodes", i, "id"),
                f"duplicate node id {_kind(node.id)} (also nodes[{first_index[node.id]}])",
            )
        first_index[node.id] = i
        melody._insert_node(node)  # id checked above; config and position are fresh from JSON
    link_index: dict[str, int] = {}
    for i, raw in enumerate(o.get("links", "list", [])):
        link = _read_link(raw, ("links", i), melody.nodes)
        if link.id in link_index:
            raise _FieldError(
                ("links", i, "id"),
                f"duplicate link id {_kind(link.id)} (also links[{link_index[link.id]}])",
            )
        link_index[link.id] = i
        try:
            melody._insert_link(link)  # id checked above
        except MelodyError as exc:
            raise _FieldError(("links", i), str(exc)) from None
    return melody


# ----------------------------------------------------------------------------- migrations


def _migrate_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 1 → 2.

    Version 1 stored a node's display name as ``title``, its position as ``x`` and ``y``, its
    policy as ``retries`` and ``timeout`` beside the other fields, and links as ``[from, to]``
    pairs of ``"node.port"`` texts; it had no link ids, dependency kinds (all were hard),
    conditions, breakpoints, fallback models, description or metadata.
    """
    o = _Obj(doc, (), ("format_version", "name", "nodes", "links"))
    nodes: list[dict[str, Any]] = []
    raw_nodes = o.get("nodes", "list", [])
    new_ids = _v2_ids(raw_nodes)
    for i, raw in enumerate(raw_nodes):
        n = _Obj(
            raw, ("nodes", i), ("id", "type", "title", "x", "y", "config", "retries", "timeout")
        )
        node: dict[str, Any] = {"id": new_ids[n.get("id", "str")], "type": n.get("type", "str")}
        if n.has("title"):
            node["name"] = n.get("title", "str")
        node["position"] = [n.get("x", "number", 0), n.get("y", "number", 0)]
        if n.has("config"):
            node["config"] = n.get("config", "object")
        policy: dict[str, Any] = {}
        if n.has("retries"):
            policy["max_retries"] = n.get("retries", "int")
        if n.has("timeout"):
            policy["timeout_s"] = n.get("timeout", "number", None, nullable=True)
        if policy:
            node["policy"] = policy
        nodes.append(node)
    links: list[dict[str, Any]] = []
    for i, pair in enumerate(o.get("links", "list", [])):
        if not isinstance(pair, list) or len(pair) != 2:
            raise _FieldError(
                ("links", i), f'expected ["node.port", "node.port"], got {_kind(pair)}'
            )
        ends: list[dict[str, str]] = []
        for j, end in enumerate(pair):
            if not isinstance(end, str) or "." not in end.strip(".") or end.startswith("."):
                raise _FieldError(("links", i, j), f'expected "node.port", got {_kind(end)}')
            node_id, port = end.rsplit(".", 1)
            if node_id not in new_ids:
                raise _FieldError(("links", i, j), f"unknown node {_kind(node_id)} in {_kind(end)}")
            ends.append({"node": new_ids[node_id], "port": port})
        links.append({"id": f"l{i + 1}", "from": ends[0], "to": ends[1], "kind": "hard"})
    out: dict[str, Any] = {"format_version": 2}
    if o.has("name"):
        out["name"] = o.get("name", "str")
    out["nodes"] = nodes
    out["links"] = links
    return out


def _v2_ids(raw_nodes: list[Any]) -> dict[str, str]:
    """Map version-1 node ids to version-2 ones: other characters become ``_``, kept unique."""
    old_ids = [
        raw["id"] for raw in raw_nodes if isinstance(raw, dict) and isinstance(raw.get("id"), str)
    ]
    taken = {i for i in old_ids if ID_RE.match(i)}
    mapping: dict[str, str] = {}
    for old in old_ids:
        if ID_RE.match(old):
            mapping[old] = old
            continue
        base = re.sub(r"[^A-Za-z0-9_-]", "_", old)[:60] or "node"
        new, n = base, 2
        while new in taken:
            new, n = f"{base}-{n}", n + 1
        taken.add(new)
        mapping[old] = new
    return mapping


MIGRATIONS: Final[Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {1: _migrate_v1}


def migrate(doc: Any) -> dict[str, Any]:
    """Return ``doc`` upgraded to :data:`FORMAT_VERSION` (unchanged if it is current).

    Raises
    ------
    _FieldError
        Internal; :func:`loads` turns it into a :class:`MelodyFormatError`.
    """
    if not isinstance(doc, dict):
        raise _FieldError((), f"expected a JSON object, got {_kind(doc)}")
    if "format_version" not in doc:
        raise _FieldError(("format_version",), "is required")
    version = doc["format_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise _FieldError(("format_version",), f"expected a whole number, got {_kind(version)}")
    if version > FORMAT_VERSION:
        raise _FieldError(
            ("format_version",),
            f"version {version} is newer than this Symphony reads ({FORMAT_VERSION}); "
            "update Symphony",
        )
    if version < 1:
        raise _FieldError(("format_version",), f"unknown version {version}")
    while version < FORMAT_VERSION:
        doc = MIGRATIONS[version](doc)
        version = doc["format_version"]
    result: dict[str, Any] = doc
    return result


# ----------------------------------------------------------------------------- entry points


def loads(data: str | bytes, *, source: str = "<string>") -> Melody:
    """Read a melody from the text (or UTF-8 bytes) of a ``.melody`` file.

    Raises
    ------
    MelodyFormatError
        If the bytes are not UTF-8, the text is not JSON, a field is missing or malformed, or
        the links refer to unknown nodes; names line, column and field path.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise MelodyFormatError(
                source, line, column, "", f"not UTF-8 (byte 0x{data[exc.start]:02x})"
            ) from None
    else:
        text = data[1:] if data.startswith("\ufeff") else data
    try:
        return _loads_text(text, source)
    except RecursionError:
        # Python's parser (and the recursive steps after it) give up on deep nesting
        # wherever the stack runs out; name the first place that is nested too deeply.
        offset = _too_deep_at(text, _MAX_NESTING)
        line, column = _line_col(text, offset)
        raise MelodyFormatError(
            source,
            line,
            column,
            _short(_path_at(text, offset)),
            f"lists and objects nest more than {MAX_JSON_DEPTH} levels deep",
        ) from None


def _short(path: str) -> str:
    """Return ``path`` cut short: dozens of ``[0]`` say less than the line and column do."""
    return path if len(path) <= 60 else path[:40] + "…"


# The deepest a valid document goes: the document, "nodes", a node, its "config", then the
# config's own MAX_JSON_DEPTH levels.
_MAX_NESTING: Final = 3 + MAX_JSON_DEPTH
_BRACKETS: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_LONG_NUMBER: Final = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+')


def _too_deep_at(text: str, limit: int) -> int:
    """Return the offset of the first list or object nested deeper than ``limit`` (0 if none)."""
    depth = 0
    for m in _BRACKETS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > limit:
                return m.start()
        elif c in "]}":
            depth -= 1
    return 0


def _long_number_at(text: str) -> int:
    """Return the offset of the first number too long for Python to read (0 if none)."""
    limit = sys.get_int_max_str_digits()
    for m in _LONG_NUMBER.finditer(text):
        token = m.group()
        if token[0] != '"' and len(token.lstrip("-")) > limit:
            return m.start()
    return 0


def _loads_text(text: str, source: str) -> Melody:
    constants: list[str] = []

    def parse_constant(name: str) -> _Constant:
        constants.append(name)
        return _Constant(name)

    try:
        doc = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=parse_constant)
    except _DuplicateKeyError as exc:
        dup_path, offset = _find_duplicate(text)
        line, column = _line_col(text, offset)
        raise MelodyFormatError(
            source, line, column, format_path(dup_path), f"duplicate key {json.dumps(exc.args[0])}"
        ) from None
    except json.JSONDecodeError as exc:
        path = _path_at(text, exc.pos)
        raise MelodyFormatError(
            source, exc.lineno, exc.colno, path, f"invalid JSON: {_json_problem(exc, text)}"
        ) from None
    except ValueError:
        # not a syntax error: a whole number longer than Python converts (int_max_str_digits)
        offset = _long_number_at(text)
        line, column = _line_col(text, offset)
        raise MelodyFormatError(
            source,
            line,
            column,
            _path_at(text, offset),
            f"a number with more than {sys.get_int_max_str_digits()} digits is too large",
        ) from None
    if constants:
        bad_path = _path_of(doc, lambda v: isinstance(v, _Constant))
        line, column = locate(text, bad_path)
        raise MelodyFormatError(
            source, line, column, format_path(bad_path), f"{constants[0]} is not a JSON number"
        )
    try:
        current = migrate(doc)
    except _FieldError as exc:
        line, column = locate(text, exc.path, at_key=exc.at_key)
        raise MelodyFormatError(source, line, column, format_path(exc.path), exc.reason) from None
    migrated = current is not doc
    try:
        return from_document(current)
    except _FieldError as exc:
        # after a migration the path is in the new layout; it resolves to its nearest ancestor
        line, column = locate(text, exc.path, at_key=exc.at_key)
        reason = exc.reason
        if migrated:
            reason = f"{reason} (in the document migrated to version {FORMAT_VERSION})"
        path = _short(format_path(exc.path))
        raise MelodyFormatError(source, line, column, path, reason) from None


def _json_problem(exc: json.JSONDecodeError, text: str) -> str:
    """Return the parser's complaint as a whole sentence.

    Some of its messages end in "at" because it appends the position itself ("Invalid control
    character at"); the position is reported separately, so name the character instead.
    """
    msg = exc.msg
    if msg.endswith(" at"):
        msg = msg[: -len(" at")]
        if msg == "Invalid control character" and exc.pos < len(text):
            char = text[exc.pos]
            named = {"\n": "a line break", "\t": "a tab", "\r": "a carriage return"}.get(
                char, f"U+{ord(char):04X}"
            )
            msg = f"{named} inside a string (write it as an escape such as \\n)"
        elif msg == "Unterminated string starting":
            msg = "Unterminated string: it has no closing quote"
    return msg


def _path_at(text: str, offset: int) -> str:
    """Return the field path being read at ``offset`` (for syntax errors; best effort)."""
    frames: list[list[Any]] = []  # [opener, key or index]
    i, n = 0, min(offset, len(text))
    while i < n:
        c = text[i]
        if c == '"':
            end = _skip_string(text, i)
            if frames and frames[-1][0] == "{" and end <= n:
                j = _skip_ws(text, end)
                if j < len(text) and text[j] == ":":
                    try:
                        frames[-1][1] = json.loads(text[i:end])
                    except ValueError:
                        pass
            i = end
            continue
        if c == "{":
            frames.append(["{", None])
        elif c == "[":
            frames.append(["[", 0])
        elif c in "}]":
            if frames:
                frames.pop()
        elif c == "," and frames:
            if frames[-1][0] == "[":
                frames[-1][1] += 1
            else:
                frames[-1][1] = None
        i += 1
    path: list[str | int] = []
    for _, step in frames:
        if step is None:
            break
        path.append(step)
    return format_path(tuple(path))


def load(path: str | os.PathLike[str]) -> Melody:
    """Read the ``.melody`` file at ``path`` (see :func:`loads`)."""
    p = Path(path)
    return loads(p.read_bytes(), source=p.name)


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted_json(v) for v in value]
    return value


def to_document(melody: Melody) -> dict[str, Any]:
    """Return the canonical current-version document of ``melody`` (stable order)."""
    nodes = []
    for node_id in sorted(melody.nodes, key=_natural_key):
        node = melody.nodes[node_id]
        p = node.policy
        nodes.append(
            {
                "id": node.id,
                "type": node.type_id,
                "name": node.name,
                "position": [_number(node.position[0]), _number(node.position[1])],
                "config": _sorted_json(node.config),
                "policy": {
                    "max_retries": p.max_retries,
                    "timeout_s": None if p.timeout_s is None else _number(p.timeout_s),
                    "fallback_models": list(p.fallback_models),
                    "skippable": p.skippable,
                    "importance": p.importance.value,
                },
                "breakpoint": node.breakpoint,
            }
        )
    links = []
    for link_id in sorted(melody.links, key=_natural_key):
        link = melody.links[link_id]
        links.append(
            {
                "id": link.id,
                "from": {"node": link.source_node, "port": link.source_port},
                "to": {"node": link.target_node, "port": link.target_port},
                "kind": link.kind.value,
                "condition": link.condition,
            }
        )
    return {
        "format_version": FORMAT_VERSION,
        "name": melody.name,
        "description": melody.description,
        "metadata": _sorted_json(dict(melody.metadata)),
        "nodes": nodes,
        "links": links,
    }


_INLINE_WIDTH: Final = 72
_encode_str: Callable[[str], str] = json.encoder.encode_basestring


_FLAT: Final = frozenset({str, int, float, bool, type(None)})


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    t = type(value)
    if t is str:
        return _encode_str(value)
    if t is int:
        return int.__repr__(value)
    if t is float:
        if not math.isfinite(value):
            raise ValueError(f"cannot save the non-finite number {value!r}")
        return float.__repr__(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _encode(value: Any, indent: str, out: list[str]) -> None:
    """Write ``value`` as JSON; small flat lists and objects stay on one line."""
    t = type(value)
    if t is dict:
        if not value:
            out.append("{}")
            return
        if all(type(v) in _FLAT for v in value.values()):
            inline = (
                "{"
                + ", ".join(f"{_encode_str(str(k))}: {_scalar(v)}" for k, v in value.items())
                + "}"
            )
            if len(inline) <= _INLINE_WIDTH and "\n" not in inline:
                out.append(inline)
                return
        inner = indent + "  "
        out.append("{")
        first = True
        for key, item in value.items():
            out.append(("\n" if first else ",\n") + inner + _encode_str(str(key)) + ": ")
            first = False
            _encode(item, inner, out)
        out.append("\n" + indent + "}")
    elif t is list or t is tuple:
        if not value:
            out.append("[]")
            return
        if all(type(v) in _FLAT for v in value):
            inline = "[" + ", ".join(_scalar(v) for v in value) + "]"
            if len(inline) <= _INLINE_WIDTH and "\n" not in inline:
                out.append(inline)
                return
        inner = indent + "  "
        out.append("[")
        first = True
        for item in value:
            out.append(("\n" if first else ",\n") + inner)
            first = False
            _encode(item, inner, out)
        out.append("\n" + indent + "]")
    else:
        out.append(_scalar(value))


def dumps(melody: Melody) -> str:
    """Return the file text of ``melody``: deterministic, UTF-8-ready, ending in a newline.

    Two-space indentation; lists and objects of plain values that fit in 72 characters are
    written on one line (``"position": [280, 0]``).
    """
    out: list[str] = []
    _encode(to_document(melody), "", out)
    out.append("\n")
    return "".join(out)


def save(melody: Melody, path: str | os.PathLike[str]) -> None:
    """Write ``melody`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    target = Path(path)
    text = dumps(melody).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
