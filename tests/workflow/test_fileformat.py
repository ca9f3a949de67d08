from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from symphony.workflow import (
    FORMAT_VERSION,
    DependencyKind,
    Importance,
    Link,
    Melody,
    MelodyFormatError,
    Node,
    NodePolicy,
    dumps,
    load,
    loads,
    save,
    to_document,
)
from symphony.workflow.fileformat import locate

SCHEMA = Path(__file__).parents[2] / "docs" / "melody.schema.json"


def rich_melody() -> Melody:
    m = Melody("Réview ✓", "all fields", {"z": 1, "a": {"y": [2, 1], "b": None}})
    m.add_node(
        Node(
            "n10",
            "op.template",
            "Ten",
            {"template": "{input}", "b": [1, {"z": 0, "a": 1}]},
            (10.5, -3),
            NodePolicy(3, 12.5, ("local-b", "local-c"), True, Importance.CRITICAL),
            True,
        )
    )
    m.add_node(Node("n2", "op.split", "Two"))
    m.add_node(Node("a", "ai.summarizer", "A"))
    m.add_link(Link("l10", "n10", "text", "n2", "text", DependencyKind.PARALLEL, "score > 0.5"))
    m.add_link(Link("l2", "a", "summary", "n10", "input", DependencyKind.OPTIONAL))
    m.add_link(Link("l3", "a", "summary", "n2", "text", DependencyKind.SOFT))
    return m


def test_round_trip_keeps_everything() -> None:
    m = rich_melody()
    again = loads(dumps(m))
    assert again.snapshot() == m.snapshot()
    assert again.node("n10") == m.node("n10")
    assert again.link("l10") == m.link("l10")
    assert again.metadata == m.metadata
    assert (again.name, again.description) == ("Réview ✓", "all fields")


def test_save_is_deterministic_and_sorted() -> None:
    m = rich_melody()
    text = dumps(m)
    assert text == dumps(loads(text))
    assert text.endswith("}\n")
    assert "Réview ✓" in text  # UTF-8, not \\u escapes
    doc = json.loads(text)
    assert list(doc) == ["format_version", "name", "description", "metadata", "nodes", "links"]
    assert [n["id"] for n in doc["nodes"]] == ["a", "n2", "n10"]  # numbers compare as numbers
    assert [link["id"] for link in doc["links"]] == ["l2", "l3", "l10"]
    assert list(doc["metadata"]) == ["a", "z"]
    assert list(doc["nodes"][2]["config"]["b"][1]) == ["a", "z"]
    assert doc["nodes"][2]["position"] == [10.5, -3]
    assert '"position": [10.5, -3]' in text
    # the same melody built in another order saves to the same bytes
    other = Melody(m.name, m.description, dict(m.metadata))
    for node_id in ("a", "n2", "n10"):
        other.add_node(m.node(node_id))
    for link_id in ("l3", "l10", "l2"):
        other.add_link(m.link(link_id))
    assert dumps(other) == text


def test_defaults_fill_missing_fields() -> None:
    m = loads('{"format_version": 2, "nodes": [{"id": "a", "type": "op.split"}]}')
    assert m.name == "Untitled melody"
    node = m.node("a")
    assert node == Node("a", "op.split", "op.split", {}, (0.0, 0.0), NodePolicy(), False)
    m = loads(
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y"}, {"id": "b", "type": "x.y"}],'
        ' "links": [{"id": "l1", "from": {"node": "a", "port": "o"},'
        ' "to": {"node": "b", "port": "i"}, "condition": ""}]}'
    )
    assert m.link("l1").kind is DependencyKind.HARD
    assert m.link("l1").condition is None


def test_save_and_load_files(tmp_path: Path) -> None:
    m = rich_melody()
    path = tmp_path / "rich.melody"
    save(m, path)
    assert path.read_bytes() == dumps(m).encode("utf-8")
    assert load(path).snapshot() == m.snapshot()
    save(m, path)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rich.melody"]  # no temp files left


def test_bom_is_accepted() -> None:
    text = dumps(rich_melody())
    assert loads(b"\xef\xbb\xbf" + text.encode()).snapshot() == rich_melody().snapshot()
    assert loads("\ufeff" + text).snapshot() == rich_melody().snapshot()


# ------------------------------------------------------------------------- migration

V1 = """{
  "format_version": 1,
  "name": "Old review",
  "nodes": [
    {"id": "read", "type": "files.read", "title": "Read", "x": 0, "y": 10,
     "config": {"path": "a.py"}, "retries": 4, "timeout": 30},
    {"id": "review", "type": "ai.reviewer", "x": 200, "y": 10},
    {"id": "write.out", "type": "files.write", "title": "Write"},
    {"id": "write_out", "type": "op.template", "title": "Taken id"}
  ],
  "links": [["read.text", "review.text"], ["review.findings", "write.out.content"]]
}
"""


def test_migrates_version_1() -> None:
    m = loads(V1)
    assert m.name == "Old review"
    assert m.node("read") == Node(
        "read", "files.read", "Read", {"path": "a.py"}, (0.0, 10.0), NodePolicy(4, 30.0)
    )
    assert m.node("review").name == "ai.reviewer"
    # version 1 allowed any character in ids; version 2 replaces the others with "_"
    assert m.node("write_out-2") == Node("write_out-2", "files.write", "Write")
    assert m.node("write_out").type_id == "op.template"
    assert list(m.links.values()) == [
        Link("l1", "read", "text", "review", "text", DependencyKind.HARD, None),
        Link("l2", "review", "findings", "write_out-2", "content", DependencyKind.HARD, None),
    ]
    doc = json.loads(dumps(m))
    assert doc["format_version"] == FORMAT_VERSION == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"format_version": 1, "nodes": [{"id": "a", "type": "x.y"}],\n'
            ' "links": [["a.o", "b"]]}',
            'old.melody:2:20: links[0][1]: expected "node.port", got "b"',
        ),
        (
            '{"format_version": 1, "nodes": [{"id": "a", "type": "x.y"}],\n'
            ' "links": [["a.o", "zz.i"]]}',
            'old.melody:2:20: links[0][1]: unknown node "zz" in "zz.i"',
        ),
        (
            '{"format_version": 1, "nodes": [{"id": "a", "type": "x.y"}],\n "links": [["a.o"]]}',
            'old.melody:2:12: links[0]: expected ["node.port", "node.port"], got a list',
        ),
        (
            '{"format_version": 1, "nodes": [{"id": "a", "type": "x.y",\n "retries": "3"}]}',
            'old.melody:2:13: nodes[0].retries: expected a whole number, got "3"',
        ),
        (
            '{"format_version": 1, "nodes": [{"id": "a", "type": "x.y",\n "kind": "hard"}]}',
            "old.melody:2:2: nodes[0].kind: unknown field (known: config, id, retries, timeout, "
            "title, type, x, y)",
        ),
        (
            '{"format_version": 1, "nodes": [{"id": "a"}]}',
            "old.melody:1:33: nodes[0].type: is required",
        ),
    ],
)
def test_broken_version_1_files(text: str, message: str) -> None:
    with pytest.raises(MelodyFormatError) as info:
        loads(text, source="old.melody")
    assert str(info.value) == message


# ------------------------------------------------------------------------- broken files

_NODE = '{"format_version": 2, "nodes": [\n {"id": "a", "type": "x.y", '
_TOO_LARGE = "the number is too large (beyond ±1.8e308 it cannot be stored)"
_TOO_DEEP = "lists and objects nest more than 64 levels deep"
_SURROGATE = "holds the lone surrogate '{}': half of a character, which a UTF-8 file cannot store"

BROKEN: list[tuple[str, str, tuple[int, int, str, str]]] = [
    (
        "trailing comma",
        '{\n  "format_version": 2,\n  "nodes": [\n    {"id": "a", "type": "op.split",}\n  ]\n}\n',
        (4, 36, "nodes[0]", "invalid JSON: Expecting property name enclosed in double quotes"),
    ),
    (
        "missing comma",
        '{\n  "format_version": 2,\n  "links": [],\n  "nodes": [\n    {"id": "a", "type": "x.y"}\n'
        '    {"id": "b"}\n  ]\n}\n',
        (6, 5, "nodes[0]", "invalid JSON: Expecting ',' delimiter"),
    ),
    (
        "nested syntax error",
        '{"format_version": 2, "links": [{"id": "l1"},\n'
        '  {"id": "l2", "from": {"node": "a" "port": 1}}]}',
        (2, 37, "links[1].from.node", "invalid JSON: Expecting ',' delimiter"),
    ),
    (
        "unterminated string",
        '{"format_version": 2,\n "name": "unterminated',
        (2, 10, "name", "invalid JSON: Unterminated string: it has no closing quote"),
    ),
    (
        "line break in a string",
        '{"format_version": 2,\n "name": "two\nlines"}',
        (
            2,
            14,
            "name",
            r"invalid JSON: a line break inside a string (write it as an escape such as \n)",
        ),
    ),
    (
        "NaN",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y",\n "config": {"t": [1, NaN]}}]}',
        (2, 22, "nodes[0].config.t[1]", "NaN is not a JSON number"),
    ),
    (
        "huge position",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y", "position": [1, 1'
        + "0" * 400
        + "]}]}",
        # the number itself is named, not the list ("got a list" read as a wrong shape)
        (
            1,
            76,
            "nodes[0].position[1]",
            "the number is too large (beyond ±1.8e308 it cannot be stored)",
        ),
    ),
    ("extra data", '{"format_version": 2} trailing', (1, 23, "", "invalid JSON: Extra data")),
    (
        "bad position",
        '{\n  "format_version": 2,\n  "nodes": [\n    {"id": "a", "type": "op.split"},\n'
        '    {"id": "b", "type": "op.split",\n     "position": "left"}\n  ]\n}\n',
        (6, 18, "nodes[1].position", 'expected [x, y] (two numbers), got "left"'),
    ),
    (
        "missing type",
        '{\n  "format_version": 2,\n  "nodes": [\n    {"id": "a"}\n  ]\n}\n',
        (4, 5, "nodes[0].type", "is required"),
    ),
    (
        "unknown link node",
        '{\n  "format_version": 2,\n  "nodes": [{"id": "a", "type": "op.split"}],\n  "links": [\n'
        '    {"id": "l1", "from": {"node": "a", "port": "parts"},\n'
        '     "to": {"node": "zz", "port": "text"}}\n  ]\n}\n',
        (6, 21, "links[0].to.node", 'unknown node "zz"'),
    ),
    (
        "unknown dependency kind",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y"}, {"id": "b", "type": "x.y"}],\n'
        ' "links": [{"id": "l1", "from": {"node": "a", "port": "o"},'
        ' "to": {"node": "b", "port": "i"},\n   "kind": "strong"}]}',
        (
            3,
            12,
            "links[0].kind",
            'unknown dependency kind "strong" (known: hard, soft, optional, parallel)',
        ),
    ),
    (
        "newer version",
        '{"format_version": 9}',
        (
            1,
            20,
            "format_version",
            "version 9 is newer than this Symphony reads (2); update Symphony",
        ),
    ),
    ("no version", '{"name": "x"}', (1, 1, "format_version", "is required")),
    (
        "version text",
        '{\n"format_version": "2"}',
        (2, 19, "format_version", 'expected a whole number, got "2"'),
    ),
    ("not an object", "[1, 2]", (1, 1, "", "expected a JSON object, got a list")),
    ("empty", "", (1, 1, "", "invalid JSON: Expecting value")),
    (
        "duplicate node id",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y"},\n{"id": "a", "type": "x.y"}]}',
        (2, 8, "nodes[1].id", 'duplicate node id "a" (also nodes[0])'),
    ),
    (
        "duplicate json key",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y",\n'
        '  "config": {"t": 1, "t": 2}}]}',
        (2, 22, "nodes[0].config.t", 'duplicate key "t"'),
    ),
    (
        "bad importance",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y",\n "policy": {"max_retries": 2,'
        '\n   "importance": "urgent"}}]}',
        (
            3,
            18,
            "nodes[0].policy.importance",
            'unknown importance "urgent" (known: low, normal, high, critical)',
        ),
    ),
    (
        "negative retries",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y",\n'
        ' "policy": {"max_retries": -1}}]}',
        (2, 28, "nodes[0].policy.max_retries", "must be from 0 to 100, got -1"),
    ),
    (
        "self link",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y"}],\n "links": [{"id": "l1",'
        ' "from": {"node": "a", "port": "o"}, "to": {"node": "a", "port": "i"}}]}',
        (2, 12, "links[0]", "link 'l1': node 'a' cannot feed itself"),
    ),
    (
        "unknown field",
        '{"format_version": 2,\n "nodez": []}',
        (
            2,
            2,
            "nodez",
            "unknown field (known: description, format_version, links, metadata, name, nodes)",
        ),
    ),
    (
        "config not an object",
        '{"format_version": 2, "nodes": [\n {"id": "a", "type": "x.y", "config": [1]}]}',
        (2, 39, "nodes[0].config", "expected an object, got a list"),
    ),
    (
        "duplicate link",
        '{"format_version": 2, "nodes": [{"id": "a", "type": "x.y"}, {"id": "b", "type": "x.y"}],'
        '\n "links": [{"id": "l1", "from": {"node": "a", "port": "o"}, "to": {"node": "b", '
        '"port": "i"}},\n  {"id": "l2", "from": {"node": "a", "port": "o"}, "to": {"node": "b", '
        '"port": "i"}}]}',
        (3, 3, "links[1]", "link 'l2': a.o is already linked to b.i by link 'l1'"),
    ),
    # Read without a complaint by Python's parser, and then impossible to save: refused here.
    (
        "overflowing config number",
        _NODE + '"config": {"n": 1e400}}]}',  # json reads it as inf, without parse_constant
        (2, 45, "nodes[0].config.n", _TOO_LARGE),
    ),
    (
        "overflowing metadata number",
        '{"format_version": 2, "metadata": {"m": [1, 1e400]}}',
        (1, 45, "metadata.m[1]", _TOO_LARGE),
    ),
    (
        "lone surrogate in the name",
        '{"format_version": 2,\n "name": "x\\ud83d"}',
        (2, 10, "name", "text " + _SURROGATE.format("\\ud83d")),
    ),
    (
        "lone surrogate in a config key",
        _NODE + '"config": {"k\\udc00": 1}}]}',
        (2, 40, 'nodes[0].config["k\\udc00"]', "a key " + _SURROGATE.format("\\udc00")),
    ),
    (
        "lone surrogate in a fallback model",
        _NODE + '"policy": {"fallback_models": ["m\\ud83d"]}}]}',
        (2, 60, "nodes[0].policy.fallback_models[0]", "text " + _SURROGATE.format("\\ud83d")),
    ),
    (
        "id with a final line break",  # "$" matched before it
        '{"format_version": 2, "nodes": [{"id": "a\\n", "type": "x.y"}]}',
        (1, 40, "nodes[0].id", "node id \"a\\n\" is malformed (1-64 letters, digits, '_' or '-')"),
    ),
    (
        "nested too deeply for the parser",  # RecursionError inside json
        '{"format_version": 2, "metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}",
        (1, 106, "metadata.x[0][0][0][0][0][0][0][0][0][0]…", _TOO_DEEP),
    ),
    (
        "config nested too deeply",
        _NODE + '"config": {"x": ' + "[" * 70 + "]" * 70 + "}}]}",
        (2, 108, "nodes[0].config.x[0][0][0][0][0][0][0][0…", _TOO_DEEP),
    ),
    (
        "number too long to read",  # a ValueError of int(), not a JSONDecodeError
        '{"format_version": 2,\n "metadata": {"n": 1' + "0" * 5000 + "}}",
        (2, 20, "metadata.n", "a number with more than 4300 digits is too large"),
    ),
]


@pytest.mark.parametrize(("text", "where"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_files_name_line_column_and_field(
    text: str, where: tuple[int, int, str, str]
) -> None:
    line, column, path, reason = where
    with pytest.raises(MelodyFormatError) as info:
        loads(text, source="broken.melody")
    error = info.value
    assert (error.line, error.column, error.path, error.reason) == where
    prefix = f"broken.melody:{line}:{column}: "
    assert str(error) == prefix + (f"{path}: {reason}" if path else reason)


def test_non_utf8_names_the_byte() -> None:
    with pytest.raises(MelodyFormatError) as info:
        loads(b'{"format_version": 2,\n "name": "\xff"}', source="bytes.melody")
    assert str(info.value) == "bytes.melody:2:11: not UTF-8 (byte 0xff)"


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.melody"
    path.write_text('{"format_version": 2, "nodes": 3}', encoding="utf-8")
    with pytest.raises(
        MelodyFormatError, match=r"^mine\.melody:1:32: nodes: expected a list, got 3$"
    ):
        load(path)


def test_locate() -> None:
    text = '{\n  "a": [1, {"b": "x"}],\n  "c": {"d": 2}\n}'
    assert locate(text, ("a", 1, "b")) == (2, 18)
    assert locate(text, ("a", 1, "b"), at_key=True) == (2, 13)
    assert locate(text, ("c", "zz")) == (3, 8)  # missing key: its object
    assert locate(text, ("a", 7)) == (2, 8)  # missing index: its list
    assert locate(text, ()) == (1, 1)


# ------------------------------------------------------------------------- schema


def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_saved_documents_match_the_schema() -> None:
    validator = _validator()
    for m in (rich_melody(), Melody(), loads(V1)):
        assert list(validator.iter_errors(to_document(m))) == []


@pytest.mark.parametrize(
    "doc",
    [
        {"format_version": 3},
        {"format_version": 2, "extra": 1},
        {"format_version": 2, "nodes": [{"id": "a"}]},
        {"format_version": 2, "nodes": [{"id": "a b", "type": "x.y"}]},
        # Python's re (the jsonschema package's) lets `$` match before a final newline
        {"format_version": 2, "nodes": [{"id": "read\n", "type": "x.y"}]},
        {"format_version": 2, "nodes": [{"id": "a" * 64 + "\n", "type": "x.y"}]},
        {
            "format_version": 2,
            "nodes": [{"id": "a", "type": "x.y"}, {"id": "b", "type": "x.y"}],
            "links": [
                {"id": "l\n", "from": {"node": "a", "port": "o"}, "to": {"node": "b", "port": "i"}}
            ],
        },
        {"format_version": 2, "nodes": [{"id": "a", "type": "x.y", "position": [1]}]},
        {"format_version": 2, "nodes": [{"id": "a", "type": "x.y", "policy": {"max_retries": -1}}]},
        {
            "format_version": 2,
            "links": [{"id": "l", "from": {"node": "a", "port": "o"}, "to": {"node": "b"}}],
        },
        {
            "format_version": 2,
            "links": [
                {
                    "id": "l",
                    "from": {"node": "a", "port": "o"},
                    "to": {"node": "b", "port": "i"},
                    "kind": "strong",
                }
            ],
        },
    ],
)
def test_schema_rejects_what_the_loader_rejects(doc: dict[str, Any]) -> None:
    assert list(_validator().iter_errors(doc))
    with pytest.raises(MelodyFormatError):
        loads(json.dumps(doc))
