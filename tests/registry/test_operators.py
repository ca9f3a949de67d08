from __future__ import annotations

from typing import Any

import pytest

from symphony.registry import NodeTypeRegistry, OperatorError
from symphony.registry.operators import (
    STATIC_CHECKS,
    check_python_syntax,
    check_split_node,
    render_template,
)
from symphony.workflow import Melody, Node, validate


def run(registry: NodeTypeRegistry, type_id: str, inputs: dict[str, Any], **config: Any) -> Any:
    return registry.run_operator(type_id, inputs, config)


def fails(registry: NodeTypeRegistry, type_id: str, inputs: dict[str, Any], **config: Any) -> str:
    with pytest.raises(OperatorError) as info:
        registry.run_operator(type_id, inputs, config)
    assert info.value.type_id == type_id
    return str(info.value)


# ------------------------------------------------------------------------- template


def test_template(registry: NodeTypeRegistry) -> None:
    assert run(registry, "op.template", {"input": "idea"}) == {"text": "idea"}
    out = run(
        registry,
        "op.template",
        {"input": "x", "values": {"title": "Plan", "items": [{"n": 1}], "obj": {"a": "é"}}},
        template="# {title} {{literal}} {items[0].n} {input} {obj}",
    )
    assert out == {"text": '# Plan {literal} 1 x {"a": "é"}'}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "Hi {name}",
            (
                "placeholder {name} at column 4: no value named 'name' (the values are: "
                "'input'); connect the 'values' port (an object), or change the template"
            ),
        ),
        ("Hi {name", "placeholder opened at column 4 is never closed"),
        ("Hi {}", "empty placeholder at column 4"),
        ("Hi }", "single '}' at column 4 (write '}}' for a brace)"),
        (
            "{input[x]}",
            (
                "placeholder {input[x]} at column 1: expected an index, a "
                "quoted key or '*', found 'x' at column 7 in path 'input[x]'"
            ),
        ),
    ],
)
def test_template_errors(registry: NodeTypeRegistry, template: str, message: str) -> None:
    text = fails(registry, "op.template", {"input": "x"}, template=template)
    assert text == "op.template: config 'template': " + message


def test_template_on_an_unconnected_input_says_so(registry: NodeTypeRegistry) -> None:
    assert fails(registry, "op.template", {}) == (
        "op.template: config 'template': placeholder {input} at column 1: no value named "
        "'input' (the values are: none); connect the 'input' port, or change the template"
    )
    assert fails(registry, "op.template", {"input": "x", "values": {"a": 1}}, template="{b}") == (
        "op.template: config 'template': placeholder {b} at column 1: no value named 'b' "
        "(the values are: 'a', 'input')"
    )


def test_template_values_must_be_an_object(registry: NodeTypeRegistry) -> None:
    assert fails(registry, "op.template", {"values": [1]}) == (
        "op.template: input 'values' must be an object, got a list"
    )


def test_render_template_does_not_reach_attributes() -> None:
    with pytest.raises(ValueError, match="not found"):
        render_template("{input.__class__}", {"input": {}})


# ------------------------------------------------------------------------- json extract


def test_json_extract(registry: NodeTypeRegistry) -> None:
    data = {"features": [{"name": "a"}, {"name": "b"}]}
    assert run(registry, "op.json_extract", {"data": data}, path="features[*].name") == {
        "value": ["a", "b"]
    }
    assert run(registry, "op.json_extract", {"data": '{"a": [1, 2]}'}, path="a[1]") == {"value": 2}
    fenced = '```json\n{"a": 1}\n```'
    assert run(registry, "op.json_extract", {"data": fenced}, path="a") == {"value": 1}
    assert run(registry, "op.json_extract", {"data": data}) == {"value": data}
    assert run(
        registry, "op.json_extract", {"data": data}, path="missing", missing_ok=True, default="-"
    ) == {"value": "-"}


def test_json_extract_errors(registry: NodeTypeRegistry) -> None:
    assert fails(registry, "op.json_extract", {"data": '{"a": }'}, path="a") == (
        "op.json_extract: input 'data' is not JSON: Expecting value at line 1, column 7"
    )
    assert fails(registry, "op.json_extract", {"data": {"a": 1}}, path="b") == (
        "op.json_extract: path 'b': key 'b' not found at $ (keys: a)"
    )
    assert fails(registry, "op.json_extract", {"data": {}}, path="a[") == (
        "op.json_extract: config 'path': expected an index, a quoted key or '*', found the end "
        "at column 3 in path 'a['"
    )
    assert fails(registry, "op.json_extract", {}) == "op.json_extract: input 'data' has no value"


# ------------------------------------------------------------------------- merge


def test_merge(registry: NodeTypeRegistry) -> None:
    assert run(registry, "op.merge", {"first": "a", "second": "b"}) == {"merged": "a\n\nb"}
    assert run(
        registry, "op.merge", {"first": "a", "second": {"k": 1}, "more": ["c"]}, separator=" | "
    ) == {"merged": 'a | {"k": 1} | c'}
    assert run(registry, "op.merge", {"first": 1, "second": [2], "more": 3}, mode="list") == {
        "merged": [1, [2], 3]
    }
    assert run(
        registry, "op.merge", {"first": {"a": 1, "b": 1}, "second": {"b": 2}}, mode="object"
    ) == {"merged": {"a": 1, "b": 2}}
    assert run(registry, "op.merge", {"first": "a", "second": None}) == {"merged": "a"}
    # an empty separator joins directly; an unset one is the default
    assert run(registry, "op.merge", {"first": "a", "second": "b"}, separator="") == {
        "merged": "ab"
    }
    assert run(registry, "op.merge", {"first": "a", "second": "b"}, separator=None) == {
        "merged": "a\n\nb"
    }


def test_merge_object_error_names_the_port(registry: NodeTypeRegistry) -> None:
    assert (
        fails(registry, "op.merge", {"first": {}, "second": {}, "more": [{}, "x"]}, mode="object")
        == "op.merge: mode 'object' needs objects, but input 'more[1]' is a text"
    )


# ------------------------------------------------------------------------- split


def test_split(registry: NodeTypeRegistry) -> None:
    assert run(registry, "op.split", {"text": "a, b,,c"}, separator=",") == {
        "parts": ["a", "b", "c"]
    }
    assert run(
        registry, "op.split", {"text": "a, b,,c"}, separator=",", strip=False, drop_empty=False
    ) == {"parts": ["a", " b", "", "c"]}
    assert run(registry, "op.split", {"text": "a b c d"}, separator=" ", max_parts=2) == {
        "parts": ["a", "b c d"]
    }


def test_split_errors(registry: NodeTypeRegistry) -> None:
    assert (
        fails(registry, "op.split", {"text": 3})
        == "op.split: input 'text' must be a text, got a number"
    )
    assert fails(registry, "op.split", {"text": "x"}, separator="") == (
        "op.split: config 'separator' must not be empty"
    )
    assert fails(registry, "op.split", {"text": "x"}, max_parts=-1) == (
        "op.split: config 'max_parts': -1 is below the minimum 0"
    )
    assert run(registry, "op.split", {"text": "a\nb"}, separator=None) == {"parts": ["a", "b"]}


def test_an_empty_split_separator_is_caught_before_a_run(registry: NodeTypeRegistry) -> None:
    assert STATIC_CHECKS["op.split"] is check_split_node
    assert check_split_node({"separator": "\n"}, ()) == []
    assert check_split_node({"separator": ""}, {"text"}) == [
        "config 'separator' must not be empty (write \\n for a line break)"
    ]
    assert "op.merge" not in STATIC_CHECKS  # empty is a valid merge separator
    m = Melody()
    m.add_node(Node("s", "op.split", "Split", {"separator": ""}))
    m.add_node(Node("m", "op.merge", "Merge", {"separator": ""}))
    config = [i.message for i in validate(m, registry) if i.code == "config"]
    assert config == [
        "node 's' (Split): config 'separator' must not be empty (write \\n for a line break)"
    ]


# ------------------------------------------------------------------------- filter


def test_filter(registry: NodeTypeRegistry) -> None:
    items = [{"name": "a", "score": 0.9}, {"name": "", "score": 0.2}, {"name": "c", "score": 0.5}]
    out = run(registry, "op.filter", {"items": items}, condition="item.score >= 0.5")
    assert out == {"kept": [items[0], items[2]], "dropped": [items[1]]}
    assert run(registry, "op.filter", {"items": "[1, 2, 3]"}, condition="index != 1") == {
        "kept": [1, 3],
        "dropped": [2],
    }
    assert run(registry, "op.filter", {"items": [None, 0, "x"]}) == {
        "kept": [0, "x"],
        "dropped": [None],
    }


def test_filter_errors(registry: NodeTypeRegistry) -> None:
    assert fails(registry, "op.filter", {"items": {"a": 1}}) == (
        "op.filter: input 'items' must be a list, got an object"
    )
    assert fails(registry, "op.filter", {"items": [1]}, condition="item >") == (
        "op.filter: config 'condition': expected a value but found the end of the expression "
        "at column 7 in 'item >'"
    )
    assert fails(registry, "op.filter", {"items": [1, "x"]}, condition="item > 0") == (
        "op.filter: condition 'item > 0' failed on item 1: cannot compare a text with a number "
        "('x' > 0)"
    )


# ------------------------------------------------------------------------- quality gate


def test_quality_gate_routes(registry: NodeTypeRegistry) -> None:
    assert run(registry, "op.quality_gate", {"value": "draft", "score": 0.9}) == {
        "passed": "draft",
        "verdict": True,
    }
    assert run(registry, "op.quality_gate", {"value": "draft", "score": 0.3}) == {
        "failed": "draft",
        "verdict": False,
    }
    assert run(registry, "op.quality_gate", {"value": "a\nb\nc"}, condition="lines(text) >= 3") == {
        "passed": "a\nb\nc",
        "verdict": True,
    }
    assert run(registry, "op.quality_gate", {"value": [1, 2]}, condition="length == 2")["verdict"]
    assert run(
        registry, "op.quality_gate", {"value": {"ok": True}}, condition="value.ok and score == null"
    )["verdict"]


def test_quality_gate_errors(registry: NodeTypeRegistry) -> None:
    assert fails(registry, "op.quality_gate", {"value": "x"}) == (
        "op.quality_gate: condition 'score >= 0.7': cannot compare null with a number (null >= 0.7)"
    )
    assert fails(registry, "op.quality_gate", {"value": "x"}, condition="quality > 1") == (
        "op.quality_gate: condition 'quality > 1': unknown name 'quality' "
        "(known: length, score, text, value)"
    )
    assert fails(registry, "op.quality_gate", {"value": "x"}, condition="score >> 1") == (
        "op.quality_gate: config 'condition': expected a value but found '>' at column 8 "
        "in 'score >> 1'"
    )
    assert fails(registry, "op.quality_gate", {}) == "op.quality_gate: input 'value' has no value"


# ------------------------------------------------------------------------- python syntax


def test_python_syntax_ok(registry: NodeTypeRegistry) -> None:
    code = "def f(x):\n    return x * 2\n"
    assert run(registry, "op.python_syntax", {"code": code}) == {
        "code": code,
        "report": {"ok": True, "errors": []},
    }


def test_python_syntax_strips_fences(registry: NodeTypeRegistry) -> None:
    out = run(registry, "op.python_syntax", {"code": "```python\nx = 1\n```"})
    assert out == {"code": "x = 1\n", "report": {"ok": True, "errors": []}}


@pytest.mark.parametrize(
    "answer",
    [
        "```python\nx = 1\n```\nThis code sets x.",
        "Here is the code:\n```python\nx = 1\n```",
        "Here is the code:\n\n```py\nx = 1\n```\n\nIt sets x to 1.",
        "```python\nx = 1\n",  # an answer cut short: no closing fence
    ],
)
def test_python_syntax_strips_the_prose_around_a_fence(
    registry: NodeTypeRegistry, answer: str
) -> None:
    out = run(registry, "op.python_syntax", {"code": answer})
    assert out == {"code": "x = 1\n", "report": {"ok": True, "errors": []}}


def test_python_syntax_keeps_a_fence_line_inside_valid_code(registry: NodeTypeRegistry) -> None:
    code = 'DOC = """\nUsage:\n```\nrun it\n```\n"""\n'
    assert run(registry, "op.python_syntax", {"code": code})["code"] == code
    answer = "```python\nx = 1\n```\nThis code sets x."
    out = run(
        registry, "op.python_syntax", {"code": answer}, strip_fences=False, fail_on_error=False
    )
    assert (out["code"], out["report"]["ok"]) == (answer, False)  # asked not to strip: kept


@pytest.mark.parametrize(
    "answer",
    [
        'Sure! ```json\n{"a": 1}\n```',
        'Here it is:\n```json\n{"a": 1}\n```\nAnything else?',
        '```json {"a": 1}```',
        '```{"a": 1}```',
    ],
)
def test_json_extract_finds_the_fence_in_prose(registry: NodeTypeRegistry, answer: str) -> None:
    assert run(registry, "op.json_extract", {"data": answer}, path="a") == {"value": 1}


def test_json_extract_fenced_error_says_where(registry: NodeTypeRegistry) -> None:
    assert fails(registry, "op.json_extract", {"data": 'Sure! ```json\n{"a": }\n```'}) == (
        "op.json_extract: input 'data' is not JSON (in its ``` block): Expecting value at line "
        "1, column 7"
    )


def test_python_syntax_error_names_line_and_column(registry: NodeTypeRegistry) -> None:
    code = "x = 1\ndef f(:\n    pass\n"
    assert fails(registry, "op.python_syntax", {"code": code}) == (
        "op.python_syntax: syntax error at line 2, column 7: invalid syntax"
    )
    out = run(registry, "op.python_syntax", {"code": code}, fail_on_error=False)
    assert out["report"] == {
        "ok": False,
        "errors": [{"line": 2, "column": 7, "message": "invalid syntax"}],
    }


def test_python_syntax_never_runs_code_and_ignores_warnings() -> None:
    assert check_python_syntax("import os\nos.system('false')\n") == []
    assert check_python_syntax("s = '\\d'\n") == []  # SyntaxWarning only, not an error
    assert check_python_syntax("a\0b") == [
        {"line": 1, "column": 1, "message": "source code string cannot contain null bytes"}
    ]


def test_python_syntax_needs_text(registry: NodeTypeRegistry) -> None:
    assert fails(registry, "op.python_syntax", {"code": None}) == (
        "op.python_syntax: input 'code' must be a text, got null"
    )


# ------------------------------------------------------------------------------ qa4 bugs 4 and 5


def test_python_syntax_reports_the_error_of_code_with_a_fence_in_its_docstring(
    registry: NodeTypeRegistry,
) -> None:
    code = 'def f():\n    """Use:\n```\nf()\n```\n"""\n    return (1\n'
    out = run(registry, "op.python_syntax", {"code": code}, fail_on_error=False)
    assert out["code"] == code  # not the docstring's example
    assert out["report"]["ok"] is False
    assert out["report"]["errors"][0]["line"] == 7


@pytest.mark.parametrize(
    "answer",
    [
        "First install:\n```bash\npip install x\n```\nThen:\n```python\nx = 1\n```",
        "```bash\npip install x\n```\n```py\nx = 1\n```",
        "```text\nexplained\n```\n```\nx = 1\n```",  # untagged before another language
    ],
)
def test_python_syntax_prefers_the_python_block(registry: NodeTypeRegistry, answer: str) -> None:
    out = run(registry, "op.python_syntax", {"code": answer})
    assert out == {"code": "x = 1\n", "report": {"ok": True, "errors": []}}


def test_python_syntax_an_indented_fence_inside_the_block_does_not_close_it(
    registry: NodeTypeRegistry,
) -> None:
    code = 'def f():\n    """\n    ```\n    f()\n    ```\n    """\n'
    out = run(registry, "op.python_syntax", {"code": f"```python\n{code}```\nDone."})
    assert out == {"code": code, "report": {"ok": True, "errors": []}}
    # an indented fence (in a list) closes at its own indent, and its body loses that indent
    answer = "Steps:\n  ```python\n  def g():\n      return 1\n  ```\n"
    assert run(registry, "op.python_syntax", {"code": answer})["code"] == (
        "def g():\n    return 1\n"
    )


@pytest.mark.parametrize(
    "answer",
    [
        '```json\n{"md": "use ``` for code", "a": 1}\n```',
        'Sure! ```json\n{"md": "```", "a": 1}\n```',
        'Example:\n```python\nf(x)\n```\n```json\n{"a": 1}\n```',
        'Example:\n```\nnot json\n```\nAnswer:\n```\n{"a": 1}\n```',
        '~~~json\n{"a": 1}\n~~~',
    ],
)
def test_json_extract_tries_every_block_and_a_fence_in_a_string_stays(
    registry: NodeTypeRegistry, answer: str
) -> None:
    assert run(registry, "op.json_extract", {"data": answer}, path="a") == {"value": 1}


def test_json_extract_error_is_the_json_blocks_when_none_parses(
    registry: NodeTypeRegistry,
) -> None:
    answer = 'Call:\n```python\nf(x)\n```\nResult:\n```json\n{"a": }\n```'
    assert fails(registry, "op.json_extract", {"data": answer}) == (
        "op.json_extract: input 'data' is not JSON (in its ``` block): Expecting value at line "
        "1, column 7"
    )
