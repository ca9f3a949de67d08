"""Pure, fast implementations of the built-in operators.

Each operator is a function ``(inputs, config) -> outputs``: ``inputs`` maps input-port names to
values (missing ports are absent), ``config`` is the node's config merged over the type's defaults,
and the result maps output-port names to values. An output left out of the result was not
produced (the quality gate produces either ``passed`` or ``failed``). Operators never touch files,
the network or global state, and raise :class:`OperatorError` with a message that names the
port, field or position at fault.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from symphony.registry.expression import ExpressionError, ExpressionSyntaxError, compile_expression
from symphony.registry.jsonpath import JsonPathError, JsonPathSyntaxError, parse_path

__all__ = [
    "OPERATORS",
    "Operator",
    "OperatorError",
    "STATIC_CHECKS",
    "check_split_node",
    "check_template_node",
    "format_template",
    "json_extract",
    "merge",
    "python_syntax_check",
    "quality_gate",
    "split",
    "filter_items",
    "template_parts",
]

Operator = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]


class OperatorError(ValueError):
    """An operator that could not produce its outputs; the message says exactly why.

    Attributes
    ----------
    type_id
        The operator's node type id.
    """

    def __init__(self, type_id: str, message: str) -> None:
        super().__init__(f"{type_id}: {message}")
        self.type_id = type_id


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# ----------------------------------------------------------------------------- text template


def template_parts(template: str) -> list[str | tuple[int, str]]:
    """Split a template into literal texts and ``(column, path)`` placeholders.

    Raises
    ------
    ValueError
        On an unclosed or empty placeholder or a stray ``}``, naming the 1-based column.
    """
    parts: list[str | tuple[int, str]] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c == "{":
            if i + 1 < n and template[i + 1] == "{":
                parts.append("{")
                i += 2
                continue
            end = template.find("}", i + 1)
            if end < 0:
                raise ValueError(f"placeholder opened at column {i + 1} is never closed")
            expr = template[i + 1 : end].strip()
            if not expr:
                raise ValueError(f"empty placeholder at column {i + 1}")
            parts.append((i + 1, expr))
            i = end + 1
        elif c == "}":
            if i + 1 < n and template[i + 1] == "}":
                parts.append("}")
                i += 2
                continue
            raise ValueError(f"single '}}' at column {i + 1} (write '}}}}' for a brace)")
        else:
            j = i
            while j < n and template[j] not in "{}":
                j += 1
            parts.append(template[i:j])
            i = j
    return parts


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """Fill ``{path}`` placeholders in ``template`` from ``context``.

    A placeholder holds a JSON path (see :mod:`symphony.registry.jsonpath`) read from ``context``:
    ``{input}``, ``{title}``, ``{features[0].name}``. ``{{`` and ``}}`` stand for literal braces.
    Texts are inserted as they are; other values as compact JSON.

    Raises
    ------
    ValueError
        On an unclosed or empty placeholder, a stray ``}``, or a path that does not resolve; the
        message names the 1-based column.
    """
    out: list[str] = []
    for part in template_parts(template):
        if isinstance(part, str):
            out.append(part)
            continue
        column, expr = part
        try:
            path = parse_path(expr)
            root = path.steps[0] if path.steps else None
            if isinstance(root, str) and root not in context:
                # the commonest mistake, said plainly rather than as a path error
                known = ", ".join(repr(k) for k in sorted(context)) or "none"
                raise ValueError(
                    f"placeholder {{{expr}}} at column {column}: no value named {root!r} "
                    f"(the values are: {known})"
                )
            value = path.extract(dict(context))
        except (JsonPathError, JsonPathSyntaxError) as exc:
            raise ValueError(f"placeholder {{{expr}}} at column {column}: {exc}") from None
        out.append(_render(value))
    return "".join(out)


def check_template_node(config: Mapping[str, Any], connected: Collection[str]) -> list[str]:
    """Return what keeps an ``op.template`` node from ever running, before it runs.

    ``connected`` names its input ports that have a link. A placeholder's first name is the
    ``input`` port's value or a key of the ``values`` object: with that port unconnected it can
    never resolve. (Which keys ``values`` will hold is not known before the run.)
    """
    template = config.get("template")
    if not isinstance(template, str):
        return []
    try:
        parts = template_parts(template)
    except ValueError as exc:
        return [f"config 'template': {exc}"]
    problems: list[str] = []
    for part in parts:
        if isinstance(part, str):
            continue
        column, expr = part
        try:
            steps = parse_path(expr).steps
        except JsonPathSyntaxError as exc:
            problems.append(f"config 'template': placeholder {{{expr}}} at column {column}: {exc}")
            continue
        root = steps[0] if steps else None
        if not isinstance(root, str):
            continue
        where = f"config 'template': placeholder {{{expr}}} at column {column} reads"
        if root == "input":
            # the input port's value, or a key 'input' of the values object
            if not {"input", "values"} & set(connected):
                problems.append(f"{where} the 'input' port, which is not connected")
        elif "values" not in connected:
            problems.append(f"{where} {root!r} from the 'values' port, which is not connected")
    return problems


def format_template(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``op.template``: fill the ``template`` config from ``input`` and the ``values`` object."""
    values = inputs.get("values")
    context: dict[str, Any] = {}
    if values is not None:
        if not isinstance(values, dict):
            raise OperatorError(
                "op.template", f"input 'values' must be an object, got {_kind(values)}"
            )
        context.update(values)
    if "input" in inputs:
        context["input"] = inputs["input"]
    template = config.get("template") or ""
    try:
        return {"text": render_template(template, context)}
    except ValueError as exc:
        hint = ""
        if "no value named 'input'" in str(exc):
            hint = "; connect the 'input' port, or change the template"
        elif "no value named" in str(exc) and values is None:
            hint = "; connect the 'values' port (an object), or change the template"
        raise OperatorError("op.template", f"config 'template': {exc}{hint}") from None


# ----------------------------------------------------------------------------- JSON extract


#: A fenced block (``` with an optional info string, a newline, the body, the closing ``` or
#: the end of the text: a model's answer may be cut short).
_FENCE_BLOCK: Final = re.compile(r"```[^\n`]*\n(?P<body>.*?)(?:```|\Z)", re.S)
#: A fence on one line: ```json {"a": 1}```.
_FENCE_INLINE: Final = re.compile(r"```(?:json\b)?(?P<body>.*?)```", re.S | re.I)
#: A fenced block whose fences start lines (for code, where ``` may occur inside a string).
_FENCE_LINES: Final = re.compile(r"^[ \t]*```[^\n`]*\n(?P<body>.*?)(?:^[ \t]*```|\Z)", re.S | re.M)


def _fenced(text: str) -> str | None:
    """Return the body of the first fenced block in ``text`` (prose around it is dropped)."""
    m = _FENCE_BLOCK.search(text) or _FENCE_INLINE.search(text)
    return None if m is None else m.group("body")


def _parse_json_text(type_id: str, port: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        error, where = exc, ""
    # Models like to fence their JSON, often with a sentence before or after it ("Sure! ```json
    # …```"): the first fenced block is the JSON.
    body = _fenced(text)
    if body is not None:
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            error, where = exc, " (in its ``` block)"
    raise OperatorError(
        type_id,
        f"input '{port}' is not JSON{where}: {error.msg} at line {error.lineno}, "
        f"column {error.colno}",
    ) from None


def json_extract(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``op.json_extract``: read ``config['path']`` out of ``data`` (text is parsed first)."""
    if "data" not in inputs:
        raise OperatorError("op.json_extract", "input 'data' has no value")
    data = inputs["data"]
    if isinstance(data, str):
        data = _parse_json_text("op.json_extract", "data", data)
    path_text = config.get("path") or "$"
    try:
        path = parse_path(path_text)
    except JsonPathSyntaxError as exc:
        raise OperatorError("op.json_extract", f"config 'path': {exc}") from None
    try:
        return {"value": path.extract(data)}
    except JsonPathError as exc:
        if config.get("missing_ok"):
            return {"value": config.get("default")}
        raise OperatorError("op.json_extract", str(exc)) from None


# ----------------------------------------------------------------------------- merge


def merge(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``op.merge``: combine ``first``, ``second`` and ``more`` as text, a list or one object."""
    values: list[tuple[str, Any]] = []
    for port in ("first", "second"):
        if port in inputs and inputs[port] is not None:
            values.append((port, inputs[port]))
    more = inputs.get("more")
    if more is not None:
        items = more if isinstance(more, list) else [more]
        values.extend((f"more[{i}]", v) for i, v in enumerate(items))
    mode = config.get("mode", "text")
    if mode == "text":
        separator = config.get("separator")
        if separator is None:  # unset means the default, as for every other field
            separator = "\n\n"
        return {"merged": separator.join(_render(v) for _, v in values)}
    if mode == "list":
        return {"merged": [v for _, v in values]}
    if mode == "object":
        merged: dict[str, Any] = {}
        for port, value in values:
            if not isinstance(value, dict):
                raise OperatorError(
                    "op.merge", f"mode 'object' needs objects, but input '{port}' is {_kind(value)}"
                )
            merged.update(value)
        return {"merged": merged}
    raise OperatorError("op.merge", f"config 'mode': unknown mode {mode!r} (text, list, object)")


# ----------------------------------------------------------------------------- split


def check_split_node(config: Mapping[str, Any], connected: Collection[str]) -> list[str]:
    """Return what keeps an ``op.split`` node from ever running, before it runs.

    An empty separator cannot cut anything: :func:`split` refuses it, so it is reported with
    the other validation problems instead of only when the run reaches the node. (An empty
    ``op.merge`` separator is fine: it joins the values directly.)
    """
    del connected  # the separator does not depend on the links
    if config.get("separator") == "":
        return ["config 'separator' must not be empty (write \\n for a line break)"]
    return []


def split(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``op.split``: cut the ``text`` input at ``separator`` into the ``parts`` list."""
    text = inputs.get("text")
    if not isinstance(text, str):
        raise OperatorError("op.split", f"input 'text' must be a text, got {_kind(text)}")
    separator = config.get("separator")
    if separator is None:  # unset means the default, as for every other field
        separator = "\n"
    if not separator:
        raise OperatorError("op.split", "config 'separator' must not be empty")
    # a text has at most len + 1 parts: a bigger limit is no limit (and str.split takes
    # nothing past a machine word)
    max_parts = min(int(config.get("max_parts") or 0), len(text) + 1)
    parts = text.split(separator, max_parts - 1) if max_parts > 0 else text.split(separator)
    if config.get("strip", True):
        parts = [p.strip() for p in parts]
    if config.get("drop_empty", True):
        parts = [p for p in parts if p]
    return {"parts": parts}


# ----------------------------------------------------------------------------- filter


def filter_items(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``op.filter``: keep the ``items`` for which ``condition`` holds over ``item``, ``index``."""
    items = inputs.get("items")
    if isinstance(items, str):
        items = _parse_json_text("op.filter", "items", items)
    if not isinstance(items, list):
        raise OperatorError("op.filter", f"input 'items' must be a list, got {_kind(items)}")
    source = config.get("condition") or ""
    try:
        expression = compile_expression(source)
    except ExpressionSyntaxError as exc:
        raise OperatorError("op.filter", f"config 'condition': {exc}") from None
    kept: list[Any] = []
    dropped: list[Any] = []
    for index, item in enumerate(items):
        try:
            ok = expression.test({"item": item, "index": index})
        except ExpressionError as exc:
            raise OperatorError(
                "op.filter", f"condition {source!r} failed on item {index}: {exc}"
            ) from None
        (kept if ok else dropped).append(item)
    return {"kept": kept, "dropped": dropped}


# ----------------------------------------------------------------------------- quality gate


def gate_variables(value: Any, score: Any) -> dict[str, Any]:
    """Return the names a quality-gate condition can read.

    ``value`` (the gated value), ``score`` (the ``score`` input, or ``null``), ``length`` (the
    length of a text or list value, else ``null``) and ``text`` (the value if it is a text, else
    its JSON).
    """
    length = len(value) if isinstance(value, str | list | dict) else None
    return {"value": value, "score": score, "length": length, "text": _render(value)}


def quality_gate(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``op.quality_gate``: route ``value`` to ``passed`` or ``failed`` by ``condition``.

    ``verdict`` is always produced (``true`` when the condition held).
    """
    if "value" not in inputs:
        raise OperatorError("op.quality_gate", "input 'value' has no value")
    value = inputs["value"]
    source = config.get("condition") or ""
    try:
        expression = compile_expression(source)
    except ExpressionSyntaxError as exc:
        raise OperatorError("op.quality_gate", f"config 'condition': {exc}") from None
    try:
        ok = expression.test(gate_variables(value, inputs.get("score")))
    except ExpressionError as exc:
        raise OperatorError("op.quality_gate", f"condition {source!r}: {exc}") from None
    return {"passed" if ok else "failed": value, "verdict": ok}


# ----------------------------------------------------------------------------- python syntax


def _strip_fences(code: str) -> str:
    """Return the first fenced block of a model's answer, without the prose around it.

    Code that starts with no fence and parses as it is stays whole: a line starting with ```
    inside it belongs to a string (a docstring with Markdown in it).
    """
    m = _FENCE_LINES.search(code)
    if m is None:
        return code
    if code[: m.start()].strip() and not check_python_syntax(code):
        return code
    body = m.group("body")
    return body if body.endswith("\n") else body + "\n"


def check_python_syntax(code: str, filename: str = "<code>") -> list[dict[str, Any]]:
    """Return the syntax errors of ``code`` (at most one: Python stops at the first).

    Each error is ``{"line", "column", "message"}`` with 1-based positions. Never executes ``code``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning (invalid escapes) is not an error
            ast.parse(code, filename=filename)
    except SyntaxError as exc:
        return [
            {
                "line": exc.lineno or 1,
                "column": exc.offset or 1,
                "message": exc.msg,
            }
        ]
    except ValueError as exc:  # source code string cannot contain null bytes
        line = code[: code.find("\0")].count("\n") + 1 if "\0" in code else 1
        return [{"line": line, "column": 1, "message": str(exc)}]
    return []


def python_syntax_check(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``op.python_syntax``: parse ``code`` with :func:`ast.parse`; report, and fail if asked."""
    code = inputs.get("code")
    if not isinstance(code, str):
        raise OperatorError("op.python_syntax", f"input 'code' must be a text, got {_kind(code)}")
    if config.get("strip_fences", True):
        code = _strip_fences(code)
    errors = check_python_syntax(code)
    if errors and config.get("fail_on_error", True):
        e = errors[0]
        raise OperatorError(
            "op.python_syntax",
            f"syntax error at line {e['line']}, column {e['column']}: {e['message']}",
        )
    return {"code": code, "report": {"ok": not errors, "errors": errors}}


OPERATORS: Mapping[str, Operator] = {
    "op.template": format_template,
    "op.json_extract": json_extract,
    "op.merge": merge,
    "op.split": split,
    "op.filter": filter_items,
    "op.quality_gate": quality_gate,
    "op.python_syntax": python_syntax_check,
}

#: Checks of a built-in node's config against its links, run by validation before any run:
#: ``check(config, connected_input_ports) -> problems``.
STATIC_CHECKS: Mapping[str, Callable[[Mapping[str, Any], Collection[str]], list[str]]] = {
    "op.template": check_template_node,
    "op.split": check_split_node,
}
