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


#: A fenced block opened after prose on the same line ("Sure! ```json"): ``` with an optional
#: info string, a newline, the body, then a closing ``` that starts a line (a ``` inside a JSON
#: string does not end it) or the end of the text (a model's answer may be cut short).
_FENCE_BLOCK: Final = re.compile(r"```[^\n`]*\n(?P<body>.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
#: A fence on one line: ```json {"a": 1}```.
_FENCE_INLINE: Final = re.compile(r"```(?:json\b)?(?P<body>.*?)```", re.S | re.I)
#: A line that opens a fenced block: its indent, three or more ` or ~, an info string.
_FENCE_OPEN: Final = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*?)\r?\n?")
#: A line that may close one: its indent and the fence, nothing else.
_FENCE_CLOSE: Final = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*\r?\n?")
#: The info strings (first word, any case) of a block in each language.
_PYTHON_TAGS: Final = frozenset({"python", "py", "python3", "py3"})
_JSON_TAGS: Final = frozenset({"json", "jsonc"})


class _Block:
    """A fenced block whose fences start lines (see :func:`_fence_blocks`)."""

    __slots__ = ("body", "lang", "start")

    def __init__(self, start: int, lang: str, body: str) -> None:
        self.start = start  # offset of its opening fence line in the text
        self.lang = lang  # the info string's first word, lower case ("" when untagged)
        self.body = body


def _fence_blocks(text: str) -> list[_Block]:
    """Return the fenced blocks of ``text`` whose fences start lines, in order.

    As in CommonMark, a block closes at a line holding only a fence of the same character, at
    least as long as the opening one, and (so that an indented ``` inside a docstring of the
    code does not end it) indented no further than the opening fence; the body loses the
    opening fence's indent. A block that never closes runs to the end: answers get cut short.
    """
    blocks: list[_Block] = []
    opened: tuple[int, str, str, str] | None = None  # start, indent, fence, lang
    body: list[str] = []
    for m in re.finditer(r"[^\n]*\n|[^\n]+\Z", text):
        line = m.group()
        if opened is None:
            o = _FENCE_OPEN.fullmatch(line)
            # an info string with a backtick is no opening: ```json {"a": 1}``` is inline
            if o and not (o["fence"][0] == "`" and "`" in o["info"]):
                words = o["info"].split()
                opened = (m.start(), o["indent"], o["fence"], words[0].lower() if words else "")
                body = []
            continue
        start, indent, fence, lang = opened
        c = _FENCE_CLOSE.fullmatch(line)
        if (
            c
            and c["fence"][0] == fence[0]
            and len(c["fence"]) >= len(fence)
            and len(c["indent"]) <= len(indent)
        ):
            blocks.append(_Block(start, lang, "".join(body)))
            opened = None
            continue
        body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t"))
    # a last fence with nothing after it closes a block opened after prose ("Sure! ```json")
    if opened is not None and "".join(body).strip():
        blocks.append(_Block(opened[0], opened[3], "".join(body)))
    return blocks


def _preferred(blocks: list[_Block], tags: frozenset[str]) -> list[_Block]:
    """Return ``blocks`` best first: tagged with one of ``tags``, then untagged, then the rest."""
    return sorted(blocks, key=lambda b: 0 if b.lang in tags else 1 if not b.lang else 2)


def _fenced(text: str) -> list[str]:
    """Return the bodies of the fenced blocks in ``text`` to try as JSON, the likeliest first.

    Blocks tagged ``json`` come first, then untagged ones, then others (a model may show an
    example call in Python before its JSON answer); then blocks opened after prose on a line,
    then fences on one line.
    """
    found = [b.body for b in _preferred(_fence_blocks(text), _JSON_TAGS)]
    found += [m.group("body") for m in _FENCE_BLOCK.finditer(text)]
    found += [m.group("body") for m in _FENCE_INLINE.finditer(text)]
    return list(dict.fromkeys(found))  # each once, in order


def _parse_json_text(type_id: str, port: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        error, where = exc, ""
    # Models like to fence their JSON, often with a sentence before or after it ("Sure! ```json
    # …```"), sometimes after another block: the first block that parses is the JSON; if none
    # does, the error is the likeliest block's.
    for n, body in enumerate(_fenced(text)):
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            if n == 0:
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
    """Return the Python block of a model's answer, without the prose around it.

    The block taken is the first tagged ``python`` (or ``py``), else the first untagged one,
    else the first. Code that starts with no fence stays whole if it parses as it is, or if
    its first fence lies inside a triple-quoted string (a docstring with Markdown in it): a
    syntax error is then reported on the code, not hidden by a fragment of its docstring.
    """
    blocks = _fence_blocks(code)
    if not blocks:
        return code
    before = code[: blocks[0].start]
    if before.strip() and (
        not check_python_syntax(code) or before.count('"""') % 2 or before.count("'''") % 2
    ):
        return code
    body = _preferred(blocks, _PYTHON_TAGS)[0].body
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
