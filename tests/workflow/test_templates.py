from __future__ import annotations

import json
from pathlib import Path

import pytest

from symphony.registry import NodeTypeRegistry, default_registry
from symphony.workflow import dumps, list_templates, load_template, topological_order, validate
from symphony.workflow.templates import template_ids, template_text

SCHEMA = Path(__file__).parents[2] / "docs" / "melody.schema.json"
EXPECTED = {
    "idea_to_plan": ("Idea → plan", ["enhance", "features", "code", "docs"]),
    "summarize_folder": ("Summarize a folder", ["list", "read", "summarize", "report", "write"]),
    "review_file": ("Review a file", ["read", "review", "write"]),
}


def test_the_three_templates_ship() -> None:
    assert template_ids() == sorted(EXPECTED)
    assert [(t.id, t.name) for t in list_templates()] == [
        (tid, EXPECTED[tid][0]) for tid in sorted(EXPECTED)
    ]
    assert all(t.description for t in list_templates())


@pytest.mark.parametrize("template_id", sorted(EXPECTED))
def test_template_loads_and_validates(template_id: str, registry: NodeTypeRegistry) -> None:
    m = load_template(template_id)
    assert m.name == EXPECTED[template_id][0]
    assert validate(m, registry) == []
    assert topological_order(m) == EXPECTED[template_id][1]


@pytest.mark.parametrize("template_id", sorted(EXPECTED))
def test_template_is_saved_canonically(template_id: str) -> None:
    # the shipped file is exactly what Symphony would write: no diff on first save
    assert dumps(load_template(template_id)) == template_text(template_id)


@pytest.mark.parametrize("template_id", sorted(EXPECTED))
def test_template_matches_the_schema(template_id: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = list(
        jsonschema.Draft202012Validator(schema).iter_errors(json.loads(template_text(template_id)))
    )
    assert errors == []


def test_templates_need_the_extension_types() -> None:
    # honest registry: without the extensions' contributions the instrument nodes are unknown
    issues = validate(load_template("review_file"), default_registry())
    assert [i.message for i in issues] == [
        "node 'read' (Read file): unknown node type 'files.read'",
        "node 'review' (Review): unknown node type 'ai.reviewer'",
        "node 'write' (Write findings): unknown node type 'files.write'",
    ]


def test_unknown_template() -> None:
    with pytest.raises(
        KeyError,
        match="no template 'nope' \\(known: idea_to_plan, review_file, summarize_folder\\)",
    ):
        load_template("nope")
