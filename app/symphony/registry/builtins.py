"""Descriptions of the built-in operators (their code is in :mod:`symphony.registry.operators`).

The descriptions are written in the same dictionary form an extension manifest uses, so the
built-ins exercise exactly the parser extensions go through.
"""

from __future__ import annotations

from typing import Any, Final

from symphony.registry.descriptions import NodeTypeDescription, description_from_dict

__all__ = ["BUILTIN_NODE_TYPES", "builtin_descriptions"]

_OP = "Operators"

BUILTIN_NODE_TYPES: Final[tuple[dict[str, Any], ...]] = (
    {
        "id": "op.template",
        "version": "1.0.0",
        "title": "Text template",
        "category": _OP,
        "description": "Fill {placeholders} in a text from the input and a values object.",
        "idempotent": True,
        "inputs": [
            {"name": "input", "type": "any", "description": "Available as {input}."},
            {"name": "values", "type": "json", "description": "An object; each key is a name."},
        ],
        "outputs": [{"name": "text", "type": "text"}],
        "config": [
            {
                "name": "template",
                "kind": "text",
                "label": "Template",
                "default": "{input}",
                "required": True,
                "multiline": True,
                "description": "Text with {path} placeholders; {{ and }} for literal braces.",
            }
        ],
    },
    {
        "id": "op.json_extract",
        "version": "1.0.0",
        "title": "JSON extract",
        "category": _OP,
        "description": "Read one value out of JSON (text is parsed first) with a path.",
        "idempotent": True,
        "inputs": [{"name": "data", "type": "any", "required": True}],
        "outputs": [{"name": "value", "type": "json"}],
        "config": [
            {
                "name": "path",
                "kind": "text",
                "label": "Path",
                "default": "$",
                "required": True,
                "description": "e.g. features[0].name, items[*].title, $ for everything.",
            },
            {
                "name": "missing_ok",
                "kind": "bool",
                "label": "Missing is fine",
                "default": False,
                "description": "Produce the default instead of failing when the path is absent.",
            },
            {"name": "default", "kind": "text", "label": "Default"},
        ],
    },
    {
        "id": "op.merge",
        "version": "1.0.0",
        "title": "Merge",
        "category": _OP,
        "description": "Combine several values into one text, list or object.",
        "idempotent": True,
        "inputs": [
            {"name": "first", "type": "any", "required": True},
            {"name": "second", "type": "any", "required": True},
            {"name": "more", "type": "any", "multiple": True},
        ],
        "outputs": [{"name": "merged", "type": "any"}],
        "config": [
            {
                "name": "mode",
                "kind": "enum",
                "label": "Mode",
                "choices": ["text", "list", "object"],
                "default": "text",
            },
            {
                "name": "separator",
                "kind": "text",
                "label": "Separator",
                "default": "\n\n",
                "description": "Put between texts (may be empty); \\n is a line break, \\t a tab.",
            },
        ],
    },
    {
        "id": "op.split",
        "version": "1.0.0",
        "title": "Split",
        "category": _OP,
        "description": "Cut a text into a list of parts at a separator.",
        "idempotent": True,
        "inputs": [{"name": "text", "type": "text", "required": True}],
        "outputs": [{"name": "parts", "type": "json"}],
        "config": [
            {
                "name": "separator",
                "kind": "text",
                "label": "Separator",
                "default": "\n",
                "description": "Where to cut (not empty); \\n is a line break, \\t a tab.",
            },
            {
                "name": "max_parts",
                "kind": "number",
                "label": "At most parts",
                "default": 0,
                "integer": True,
                "minimum": 0,
                "description": "0 for no limit.",
            },
            {"name": "strip", "kind": "bool", "label": "Trim parts", "default": True},
            {"name": "drop_empty", "kind": "bool", "label": "Drop empty parts", "default": True},
        ],
    },
    {
        "id": "op.filter",
        "version": "1.0.0",
        "title": "Filter",
        "category": _OP,
        "description": "Keep the items of a list for which a condition holds.",
        "idempotent": True,
        "inputs": [{"name": "items", "type": "json", "required": True}],
        "outputs": [{"name": "kept", "type": "json"}, {"name": "dropped", "type": "json"}],
        "config": [
            {
                "name": "condition",
                "kind": "text",
                "label": "Condition",
                "default": "exists(item)",
                "required": True,
                "description": "An expression over item and index, e.g. len(item.name) > 0.",
            }
        ],
    },
    {
        "id": "op.quality_gate",
        "version": "1.0.0",
        "title": "Quality gate",
        "category": _OP,
        "description": "Send the value on to 'passed' or 'failed' by a condition.",
        "idempotent": True,
        "inputs": [
            {"name": "value", "type": "any", "required": True},
            {"name": "score", "type": "json", "description": "A quality score, as score."},
        ],
        "outputs": [
            {"name": "passed", "type": "any"},
            {"name": "failed", "type": "any"},
            {"name": "verdict", "type": "json"},
        ],
        "config": [
            {
                "name": "condition",
                "kind": "text",
                "label": "Condition",
                "default": "score >= 0.7",
                "required": True,
                "description": "An expression over value, score, length and text.",
            }
        ],
    },
    {
        "id": "op.python_syntax",
        "version": "1.0.0",
        "title": "Python syntax check",
        "category": _OP,
        "description": "Parse Python code without running it; report the first syntax error.",
        "idempotent": True,
        "inputs": [{"name": "code", "type": "code", "required": True}],
        "outputs": [{"name": "code", "type": "code"}, {"name": "report", "type": "json"}],
        "config": [
            {
                "name": "fail_on_error",
                "kind": "bool",
                "label": "Fail on error",
                "default": True,
            },
            {
                "name": "strip_fences",
                "kind": "bool",
                "label": "Strip ``` fences",
                "default": True,
            },
        ],
    },
)


def builtin_descriptions() -> tuple[NodeTypeDescription, ...]:
    """Return the built-in operators' descriptions, parsed from :data:`BUILTIN_NODE_TYPES`."""
    return tuple(
        description_from_dict(d, path=f"builtin[{i}]") for i, d in enumerate(BUILTIN_NODE_TYPES)
    )
