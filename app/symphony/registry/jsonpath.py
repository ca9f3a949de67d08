"""A small path syntax for reading values out of JSON (used by the *JSON extract* operator).

Syntax::

    path     := ["$"] [first] step*
    first    := NAME                      a key of the root object
    step     := "." NAME                  a key of an object
              | "[" INTEGER "]"           an item of a list; negative counts from the end
              | "[" STRING "]"            a key in quotes, for keys with dots, spaces, brackets
              | "[*]"                     every item of a list (or value of an object)
    NAME     := [A-Za-z_][A-Za-z0-9_-]*
    STRING   := '"' … '"' | "'" … "'"     (backslash escapes the quote and itself)

Examples: ``$`` (the whole document), ``features``, ``features[0].name``, ``items[*].title``,
``meta["content-type"]``, ``rows[-1]``. After a ``[*]`` the remaining steps apply to every item
and the result is a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["JsonPath", "JsonPathError", "JsonPathSyntaxError", "parse_path"]


class JsonPathSyntaxError(ValueError):
    """A path that cannot be parsed; names the 1-based column."""

    def __init__(self, message: str, path: str, column: int) -> None:
        super().__init__(f"{message} at column {column} in path {path!r}")
        self.path = path
        self.column = column


class JsonPathError(LookupError):
    """A path that does not match the document; names the step and what was there instead."""

    def __str__(self) -> str:
        return str(self.args[0])


_WILDCARD = object()
Step = str | int | object


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A parsed path.

    Attributes
    ----------
    source
        The path text.
    steps
        Keys (``str``), indexes (``int``) and wildcards, in order.
    """

    source: str
    steps: tuple[Step, ...]

    def extract(self, document: Any) -> Any:
        """Return the value the path selects in ``document``.

        Raises
        ------
        JsonPathError
            If a key is missing, an index is out of range or a step meets the wrong kind of value;
            the message names the path up to the failing step.
        """
        return self._walk(document, 0, "$")

    def _walk(self, value: Any, start: int, where: str) -> Any:
        for i in range(start, len(self.steps)):
            step = self.steps[i]
            if step is _WILDCARD:
                if isinstance(value, list):
                    items = value
                elif isinstance(value, dict):
                    items = list(value.values())
                else:
                    raise JsonPathError(
                        f"path {self.source!r}: [*] needs a list or object at {where}, "
                        f"found {_kind(value)}"
                    )
                return [self._walk(item, i + 1, f"{where}[{n}]") for n, item in enumerate(items)]
            if isinstance(step, str):
                if not isinstance(value, dict):
                    raise JsonPathError(
                        f"path {self.source!r}: cannot read key {step!r} at {where}, "
                        f"found {_kind(value)}"
                    )
                if step not in value:
                    keys = ", ".join(sorted(value)[:10]) or "none"
                    raise JsonPathError(
                        f"path {self.source!r}: key {step!r} not found at {where} (keys: {keys})"
                    )
                value = value[step]
                where = f"{where}.{step}" if _is_name(step) else f"{where}[{step!r}]"
            else:
                assert isinstance(step, int)
                if not isinstance(value, list):
                    raise JsonPathError(
                        f"path {self.source!r}: cannot take item [{step}] at {where}, "
                        f"found {_kind(value)}"
                    )
                if not -len(value) <= step < len(value):
                    raise JsonPathError(
                        f"path {self.source!r}: index {step} out of range at {where} "
                        f"(list of {len(value)})"
                    )
                value = value[step]
                where = f"{where}[{step}]"
        return value


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
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_name_start(c: str) -> bool:
    return c.isalpha() or c == "_"


def _is_name(text: str) -> bool:
    return (
        bool(text) and _is_name_start(text[0]) and all(c.isalnum() or c in "_-" for c in text[1:])
    )


@lru_cache(maxsize=256)
def parse_path(source: str) -> JsonPath:
    """Parse ``source`` (see the module docstring for the syntax).

    Raises
    ------
    JsonPathSyntaxError
        If the path is malformed; names the column.
    """
    text = source.strip()
    offset = len(source) - len(source.lstrip())
    steps: list[Step] = []
    i, n = 0, len(text)

    def err(message: str, at: int) -> JsonPathSyntaxError:
        return JsonPathSyntaxError(message, source, offset + at + 1)

    def name_at(j: int) -> int:
        if j >= n or not _is_name_start(text[j]):
            found = repr(text[j]) if j < n else "the end"
            raise err(f"expected a key name, found {found}", j)
        k = j + 1
        while k < n and (text[k].isalnum() or text[k] in "_-"):
            k += 1
        return k

    if i < n and text[i] == "$":
        i += 1
    elif i < n and text[i] not in ".[":
        k = name_at(i)
        steps.append(text[i:k])
        i = k
    while i < n:
        c = text[i]
        if c == ".":
            k = name_at(i + 1)
            steps.append(text[i + 1 : k])
            i = k
        elif c == "[":
            j = i + 1
            if j < n and text[j] == "*":
                if j + 1 >= n or text[j + 1] != "]":
                    raise err("expected ']' after '[*'", j + 1)
                steps.append(_WILDCARD)
                i = j + 2
            elif j < n and text[j] in "\"'":
                quote = text[j]
                k = j + 1
                chars: list[str] = []
                while True:
                    if k >= n:
                        raise err("unterminated quoted key", j)
                    if text[k] == "\\" and k + 1 < n:
                        chars.append(text[k + 1])
                        k += 2
                        continue
                    if text[k] == quote:
                        break
                    chars.append(text[k])
                    k += 1
                if k + 1 >= n or text[k + 1] != "]":
                    raise err("expected ']' after the quoted key", k + 1)
                steps.append("".join(chars))
                i = k + 2
            else:
                k = j
                if k < n and text[k] == "-":
                    k += 1
                while k < n and text[k].isdigit():
                    k += 1
                digits = text[j:k]
                if not digits or digits == "-":
                    found = repr(text[j]) if j < n else "the end"
                    raise err(f"expected an index, a quoted key or '*', found {found}", j)
                if k >= n or text[k] != "]":
                    raise err("expected ']' after the index", k)
                steps.append(int(digits))
                i = k + 1
        else:
            raise err(f"unexpected {c!r} (steps start with '.' or '[')", i)
    return JsonPath(source, tuple(steps))
