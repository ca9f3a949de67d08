from __future__ import annotations

from typing import Any

import pytest

from symphony.registry import (
    Category,
    NodeTypeError,
    NodeTypeRegistry,
    OperatorError,
    RegistryChanged,
    default_registry,
)
from symphony.registry.builtins import BUILTIN_NODE_TYPES
from symphony.registry.operators import OPERATORS

BUILTIN_IDS = [
    "op.filter",
    "op.json_extract",
    "op.merge",
    "op.python_syntax",
    "op.quality_gate",
    "op.split",
    "op.template",
]


def _table(type_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": type_id, "version": "1.0.0", "title": type_id, "category": "Instruments", **extra}


def test_default_registry_holds_the_builtins(registry: NodeTypeRegistry) -> None:
    assert registry.type_ids() == BUILTIN_IDS
    assert sorted(OPERATORS) == BUILTIN_IDS
    assert len(BUILTIN_NODE_TYPES) == len(registry)
    for d in registry:
        assert d.category is Category.OPERATORS
        assert d.source == "builtin"
        assert d.idempotent
        assert registry.operator(d.type_id) is OPERATORS[d.type_id]
        # every default passes the type's own validation
        assert d.check_config(d.default_config()) == []


def test_lookup(registry: NodeTypeRegistry) -> None:
    assert registry.get("op.merge") is registry["op.merge"]
    assert registry.get("ai.nope") is None
    assert "op.merge" in registry
    assert "ai.nope" not in registry
    with pytest.raises(KeyError, match="unknown node type 'ai.nope'"):
        registry["ai.nope"]


def test_contributions_register(full_registry: NodeTypeRegistry) -> None:
    ids = {d.type_id for d in full_registry.from_source("ai_instrument")}
    assert ids == {
        "ai.prompt_enhancer",
        "ai.feature_extractor",
        "ai.code_generator",
        "ai.doc_writer",
        "ai.summarizer",
        "ai.reviewer",
        "ai.embed",
    }
    assert {d.type_id for d in full_registry.from_source("file_explorer")} == {
        "files.list",
        "files.read",
        "files.write",
        "files.search",
    }
    groups = full_registry.by_category()
    assert [d.title for d in groups[Category.FILES]] == [
        "List files",
        "Read files",
        "Search files",
        "Write file",
    ]
    assert len(groups[Category.INSTRUMENTS]) == 7
    assert len(groups[Category.OPERATORS]) == 7
    assert full_registry["ai.code_generator"].reverse_reconstruction


def test_search(full_registry: NodeTypeRegistry) -> None:
    assert [d.type_id for d in full_registry.search("summar")] == ["ai.summarizer"]
    assert [d.type_id for d in full_registry.search("JSON extract")] == ["op.json_extract"]
    assert len(full_registry.search("")) == len(full_registry)


def test_manifest_errors_name_extension_and_field(registry: NodeTypeRegistry) -> None:
    tables = [_table("ai.one"), _table("ai.two", outputs=[{"name": "out", "type": "txt"}])]
    with pytest.raises(NodeTypeError) as info:
        registry.register_from_manifest("ai_instrument", tables)
    assert str(info.value).startswith(
        "extension 'ai_instrument': node_types[1].outputs[0].type: unknown port type 'txt'"
    )
    assert info.value.path == "extension 'ai_instrument': node_types[1].outputs[0].type"
    assert "ai.one" not in registry  # all or nothing


def test_manifest_id_collisions(registry: NodeTypeRegistry) -> None:
    with pytest.raises(NodeTypeError) as info:
        registry.register_from_manifest("ext", [_table("op.merge")])
    assert str(info.value) == (
        "extension 'ext': node_types[0].id: node type 'op.merge' is already registered by "
        "the built-ins"
    )
    registry.register_from_manifest("first", [_table("ai.x")])
    with pytest.raises(NodeTypeError, match="already registered by extension 'first'"):
        registry.register_from_manifest("second", [_table("ai.x")])
    with pytest.raises(NodeTypeError) as info:
        registry.register_from_manifest("ext", [_table("ai.y"), _table("ai.y")])
    assert str(info.value) == (
        "extension 'ext': node_types[1].id: 'ai.y' is already declared by node_types[0]"
    )


def test_manifest_shape_errors(registry: NodeTypeRegistry) -> None:
    with pytest.raises(NodeTypeError, match=r"^extension 'ext': node_types: expected a list"):
        registry.register_from_manifest("ext", "nope")  # type: ignore[arg-type]
    with pytest.raises(NodeTypeError, match="extension id must be a non-empty text"):
        registry.register_from_manifest("", [])
    with pytest.raises(NodeTypeError, match=r"^extension 'ext': node_types\[0\]: expected a table"):
        registry.register_from_manifest("ext", [3])  # type: ignore[list-item]


def test_unregister_and_events(
    registry: NodeTypeRegistry, contributions: dict[str, list[dict[str, Any]]]
) -> None:
    seen: list[RegistryChanged] = []
    registry.subscribe(seen.append)
    registry.register_from_manifest("file_explorer", contributions["file_explorer"])
    FILE_TYPES = ("files.list", "files.read", "files.write", "files.search")  # noqa: N806
    assert registry.unregister_source("file_explorer") == (
        "files.list",
        "files.read",
        "files.write",
        "files.search",
    )
    assert registry.unregister_source("file_explorer") == ()
    assert seen == [
        RegistryChanged(FILE_TYPES, (), "file_explorer"),
        RegistryChanged((), FILE_TYPES, "file_explorer"),
    ]
    registry.unsubscribe(seen.append)
    registry.unsubscribe(seen.append)  # unknown listeners are ignored
    registry.register_from_manifest("file_explorer", contributions["file_explorer"])
    assert len(seen) == 2


def test_register_single(registry: NodeTypeRegistry) -> None:
    from symphony.registry import description_from_dict

    d = description_from_dict(_table("ai.z"), source="ext")
    registry.register(d)
    assert registry["ai.z"] is d
    with pytest.raises(NodeTypeError, match="already registered by extension 'ext'"):
        registry.register(d)


def test_extension_types_are_not_operators(full_registry: NodeTypeRegistry) -> None:
    assert full_registry.operator("ai.summarizer") is None
    with pytest.raises(KeyError, match="'ai.summarizer' is not a built-in operator"):
        full_registry.run_operator("ai.summarizer", {}, {})


def test_run_operator_merges_defaults_and_checks_config(registry: NodeTypeRegistry) -> None:
    assert registry.run_operator("op.split", {"text": "a\n b \n\n"}, {}) == {"parts": ["a", "b"]}
    with pytest.raises(OperatorError) as info:
        registry.run_operator("op.merge", {"first": 1, "second": 2}, {"mode": "zip"})
    assert str(info.value) == "op.merge: config 'mode': 'zip' is not one of: text, list, object"


def test_empty_registry() -> None:
    r = NodeTypeRegistry()
    assert len(r) == 0
    assert r.type_ids() == []
    assert r.operator("op.merge") is None
    assert default_registry() is not default_registry()
