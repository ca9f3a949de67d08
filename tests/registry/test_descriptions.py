from __future__ import annotations

import copy
from typing import Any

import pytest

from symphony.registry import (
    Category,
    ConfigField,
    FieldKind,
    NodeTypeError,
    PortType,
    description_from_dict,
)

GOOD: dict[str, Any] = {
    "id": "ai.example",
    "version": "1.2.3",
    "title": "Example",
    "category": "Instruments",
    "description": "An example.",
    "idempotent": True,
    "reverse_reconstruction": True,
    "inputs": [{"name": "prompt", "type": "text", "required": True}],
    "outputs": [{"name": "result", "type": "markdown"}],
    "config": [
        {"name": "model", "kind": "model-choice", "default": "", "choices": ["local-small"]},
        {"name": "level", "kind": "enum", "choices": ["low", "high"], "default": "low"},
        {"name": "t", "kind": "number", "minimum": 0, "maximum": 2, "default": 0.5},
        {"name": "n", "kind": "number", "integer": True, "default": 3},
        {"name": "on", "kind": "bool", "default": True},
        {"name": "note", "kind": "text", "max_length": 5, "required": True},
    ],
}


def test_parses_every_field() -> None:
    d = description_from_dict(GOOD, source="ext")
    assert d.type_id == "ai.example"
    assert d.version == "1.2.3"
    assert d.category is Category.INSTRUMENTS
    assert d.idempotent
    assert d.reverse_reconstruction
    assert d.source == "ext"
    assert d.input("prompt") is not None
    assert d.input("prompt").type is PortType.TEXT  # type: ignore[union-attr]
    assert d.input("prompt").required  # type: ignore[union-attr]
    assert d.output("result").type is PortType.MARKDOWN  # type: ignore[union-attr]
    assert d.input("nope") is None
    assert d.output("nope") is None
    assert [f.kind for f in d.config] == [
        FieldKind.MODEL_CHOICE,
        FieldKind.ENUM,
        FieldKind.NUMBER,
        FieldKind.NUMBER,
        FieldKind.BOOL,
        FieldKind.TEXT,
    ]
    assert d.config_field("model").label == "model"  # type: ignore[union-attr]
    assert d.default_config() == {"model": "", "level": "low", "t": 0.5, "n": 3, "on": True}


def test_defaults_for_optional_keys() -> None:
    d = description_from_dict(
        {"id": "op.x", "version": "0.1.0", "title": "X", "category": "Operators"}
    )
    assert (d.inputs, d.outputs, d.config, d.description) == ((), (), (), "")
    assert not d.idempotent
    assert not d.reverse_reconstruction
    assert d.method == "op.x"
    assert d.cacheable


def test_cacheable_flag() -> None:
    assert not description_from_dict({**GOOD, "cacheable": False}).cacheable
    with pytest.raises(NodeTypeError, match=r"^cacheable: expected true or false"):
        description_from_dict({**GOOD, "cacheable": "no"})


def test_method_names_the_protocol_method() -> None:
    d = description_from_dict({**GOOD, "method": "node.ai.example"})
    assert d.method == "node.ai.example"
    with pytest.raises(NodeTypeError, match=r"^method: 'node run' is not a protocol method"):
        description_from_dict({**GOOD, "method": "node run"})


def _broken(path: list[str | int], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["id"], KeyError, "node_types[3].id: is required"),
        (
            ["id"],
            "Example",
            (
                "node_types[3].id: 'Example' is not a node type id (dotted "
                "lower-case words, e.g. 'ai.summarizer')"
            ),
        ),
        (["id"], 5, "node_types[3].id: expected text, got 5"),
        (["version"], "1.0", "node_types[3].version: '1.0' is not MAJOR.MINOR.PATCH"),
        (["title"], " ", "node_types[3].title: must not be empty"),
        (
            ["category"],
            "Tools",
            (
                "node_types[3].category: unknown category 'Tools'; expected "
                "one of: Instruments, Operators, Files"
            ),
        ),
        (["idempotent"], "yes", "node_types[3].idempotent: expected true or false, got 'yes'"),
        (
            ["colour"],
            "red",
            (
                "node_types[3].colour: unknown field (known: cacheable, category, "
                "config, description, id, idempotent, inputs, method, outputs, "
                "reverse_reconstruction, title, version)"
            ),
        ),
        (["inputs"], "prompt", "node_types[3].inputs: expected a list of tables, got 'prompt'"),
        (["inputs", 0], "prompt", "node_types[3].inputs[0]: expected a table, got 'prompt'"),
        (
            ["inputs", 0, "type"],
            "txt",
            (
                "node_types[3].inputs[0].type: unknown port type 'txt'; "
                "expected one of: any, text, json, code, markdown, "
                "file-path, file-list, embedding"
            ),
        ),
        (["inputs", 0, "type"], KeyError, "node_types[3].inputs[0].type: is required"),
        (
            ["inputs", 0, "name"],
            "Prompt",
            (
                "node_types[3].inputs[0].name: 'Prompt' is not a port name "
                "(lower-case letters, digits, '_')"
            ),
        ),
        (
            ["outputs", 0, "required"],
            True,
            "node_types[3].outputs[0].required: applies to inputs only",
        ),
        (
            ["outputs"],
            [{"name": "result", "type": "text"}] * 2,
            "node_types[3].outputs[1].name: duplicate port name 'result'",
        ),
        (
            ["config", 0, "kind"],
            "slider",
            (
                "node_types[3].config[0].kind: unknown kind 'slider'; "
                "expected one of: text, number, enum, bool, model-choice"
            ),
        ),
        (
            ["config", 1, "choices"],
            [],
            "node_types[3].config[1].choices: an enum field needs at least one choice",
        ),
        (
            ["config", 1, "default"],
            "mid",
            "node_types[3].config[1].default: 'mid' is not one of: low, high",
        ),
        (["config", 2, "default"], 3, "node_types[3].config[2].default: 3 is above the maximum 2"),
        (["config", 2, "minimum"], 5, "node_types[3].config[2].minimum: 5 is above the maximum 2"),
        (
            ["config", 3, "default"],
            2.5,
            "node_types[3].config[3].default: expected a whole number, got 2.5",
        ),
        (
            ["config", 4, "minimum"],
            1,
            "node_types[3].config[4].minimum: applies to number fields only",
        ),
        (
            ["config", 4, "choices"],
            ["a"],
            "node_types[3].config[4].choices: applies to enum and model-choice fields only",
        ),
        (
            ["config", 5, "default"],
            "too long",
            "node_types[3].config[5].default: is 8 characters long; the most is 5",
        ),
        (
            ["config", 5, "name"],
            "model",
            "node_types[3].config[5].name: duplicate config field 'model'",
        ),
        (
            ["config", 0, "choices", 0],
            1,
            "node_types[3].config[0].choices[0]: expected text, got 1",
        ),
    ],
)
def test_errors_name_the_field(path: list[str | int], value: Any, message: str) -> None:
    with pytest.raises(NodeTypeError) as info:
        description_from_dict(_broken(path, value), path="node_types[3]")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("spec", "value", "reason"),
    [
        (ConfigField("x", FieldKind.TEXT), 3, "expected text, got 3"),
        (ConfigField("x", FieldKind.TEXT, required=True), "", "is required"),
        (ConfigField("x", FieldKind.TEXT, required=True), None, "is required"),
        (ConfigField("x", FieldKind.BOOL), 1, "expected true or false, got 1"),
        (ConfigField("x", FieldKind.NUMBER), "1", "expected a number, got '1'"),
        (ConfigField("x", FieldKind.NUMBER), True, "expected a number, got true"),
        (ConfigField("x", FieldKind.NUMBER), float("nan"), "expected a finite number, got nan"),
        (ConfigField("x", FieldKind.NUMBER, minimum=1), 0, "0 is below the minimum 1"),
        (ConfigField("x", FieldKind.ENUM, choices=("a", "b")), "c", "'c' is not one of: a, b"),
        (ConfigField("x", FieldKind.MODEL_CHOICE), 5, "expected a model id, got 5"),
        # float(10**400) raised OverflowError out of check (Properties, Problems, Run)
        pytest.param(
            ConfigField("x", FieldKind.NUMBER, integer=True),
            10**400,
            "a whole number of about 400 digits is too large (the most is about 1.8e+308)",
            id="400 digits",
        ),
        pytest.param(
            ConfigField("x", FieldKind.NUMBER, maximum=5),
            -(10**5000),  # past sys.get_int_max_str_digits: it cannot even be written out
            "a whole number of about 5000 digits is too large (the most is about 1.8e+308)",
            id="5000 digits",
        ),
    ],
)
def test_field_check(spec: ConfigField, value: Any, reason: str) -> None:
    assert spec.check(value) == reason


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (ConfigField("x", FieldKind.TEXT), None),
        (ConfigField("x", FieldKind.TEXT), ""),
        (ConfigField("x", FieldKind.NUMBER, minimum=0, maximum=1), 1),
        (ConfigField("x", FieldKind.NUMBER, integer=True), 4.0),
        (ConfigField("x", FieldKind.NUMBER, integer=True), 10**300),  # a float holds it
        (ConfigField("x", FieldKind.BOOL), False),
        (ConfigField("x", FieldKind.MODEL_CHOICE, choices=("a",)), "some-other-model"),
    ],
)
def test_field_accepts(spec: ConfigField, value: Any) -> None:
    assert spec.check(value) is None


@pytest.mark.parametrize("key", ["id", "version"])
def test_a_final_line_break_does_not_pass_the_patterns(key: str) -> None:
    raw = copy.deepcopy(GOOD)
    raw[key] += "\n"  # "$" matched before a final line break
    with pytest.raises(NodeTypeError, match=f"^{key}: "):
        description_from_dict(raw)


def test_check_config_lists_every_problem() -> None:
    d = description_from_dict(GOOD)
    assert d.check_config({"level": "mid", "t": -1, "colour": 1}) == [
        "config 'colour': unknown field (known: model, level, t, n, on, note)",
        "config 'level': 'mid' is not one of: low, high",
        "config 't': -1 is below the minimum 0",
        "config 'note': is required",
    ]
    assert d.check_config({**d.default_config(), "note": "ok"}) == []
