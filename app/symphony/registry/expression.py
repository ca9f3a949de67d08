r"""A small, safe expression language for quality-gate conditions and filters.

Expressions are parsed by a hand-written parser into a tree and evaluated by walking it; Python's
``eval`` is never used, names resolve only to the variables handed in, ``.name`` reads a key of an
object (never a Python attribute) and only the functions listed below can be called.

Grammar (lowest precedence first)::

    expr        := or
    or          := and ("or" and)*
    and         := not ("and" not)*
    not         := "not" not | comparison
    comparison  := additive [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") additive]
    additive    := term (("+" | "-") term)*
    term        := unary (("*" | "/" | "%") unary)*
    unary       := "-" unary | postfix
    postfix     := primary ("." NAME | "[" expr "]")*
    primary     := NUMBER | STRING | "true" | "false" | "null" | NAME
                 | NAME "(" [expr ("," expr)*] ")" | "(" expr ")" | "[" [expr ("," expr)*] "]"

Strings use single or double quotes with backslash escapes (``\n``, ``\t``, ``\\``, quotes).
Arithmetic works on numbers only; ``+`` also joins two texts or two lists. Comparisons ``<`` …
``>=`` need two numbers or two texts. ``in`` tests membership in a text, list or object keys.
``and``/``or`` short-circuit and yield booleans; truthiness follows JSON: ``null``, ``false``,
``0``, ``""``, ``[]`` and ``{}`` are false.

Functions: ``len(x)``, ``lower(s)``, ``upper(s)``, ``strip(s)``, ``startswith(s, prefix)``,
``endswith(s, suffix)``, ``contains(x, part)``, ``number(x)``, ``text(x)``, ``abs(n)``,
``min(a, b, ...)``, ``max(a, b, ...)``, ``round(n[, digits])``, ``exists(x)`` (not ``null``),
``lines(s)`` (number of lines).

Limits: an expression is at most 2,000 characters and nests at most 64 levels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

__all__ = [
    "Expression",
    "ExpressionError",
    "ExpressionSyntaxError",
    "FUNCTIONS",
    "compile_expression",
    "evaluate",
    "truthy",
]

MAX_LENGTH: Final = 2000
MAX_DEPTH: Final = 64
MAX_INT_BITS: Final = 4096


class ExpressionSyntaxError(ValueError):
    """An expression that cannot be parsed; names the column (1-based) of the problem.

    Parameters
    ----------
    message
        What is wrong.
    source
        The expression text.
    column
        The 1-based column of the offending character.
    """

    def __init__(self, message: str, source: str, column: int) -> None:
        super().__init__(f"{message} at column {column} in {source!r}")
        self.reason = message
        self.source = source
        self.column = column


class ExpressionError(ValueError):
    """An expression that parsed but failed while evaluating (an unknown name, a type clash)."""


# ----------------------------------------------------------------------------- tokenizer

_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_TWO_CHAR: Final = frozenset({"==", "!=", "<=", ">="})
_ONE_CHAR: Final = frozenset("<>+-*/%()[].,")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "str", "name", "kw", "op", "end"
    value: Any
    pos: int  # 0-based offset


def _tokenize(src: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            j = i
            while j < n and (src[j].isdigit() or src[j] == "_"):
                j += 1
            is_float = False
            if j < n and src[j] == "." and j + 1 < n and src[j + 1].isdigit():
                is_float = True
                j += 1
                while j < n and src[j].isdigit():
                    j += 1
            if j < n and src[j] in "eE":
                k = j + 1
                if k < n and src[k] in "+-":
                    k += 1
                if k < n and src[k].isdigit():
                    is_float = True
                    j = k
                    while j < n and src[j].isdigit():
                        j += 1
            text = src[i:j]
            try:
                value: Any = float(text) if is_float else int(text)
            except ValueError:
                raise ExpressionSyntaxError(f"malformed number {text!r}", src, i + 1) from None
            tokens.append(_Token("num", value, i))
            i = j
            continue
        if c in "\"'":
            j = i + 1
            parts: list[str] = []
            while True:
                if j >= n:
                    raise ExpressionSyntaxError("unterminated string", src, i + 1)
                d = src[j]
                if d == c:
                    break
                if d == "\\":
                    if j + 1 >= n:
                        raise ExpressionSyntaxError("unterminated string", src, i + 1)
                    e = src[j + 1]
                    mapped = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(e)
                    if mapped is None:
                        raise ExpressionSyntaxError(f"unknown escape '\\{e}'", src, j + 1)
                    parts.append(mapped)
                    j += 2
                    continue
                parts.append(d)
                j += 1
            tokens.append(_Token("str", "".join(parts), i))
            i = j + 1
            continue
        if c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            tokens.append(_Token("kw" if word in _KEYWORDS else "name", word, i))
            i = j
            continue
        if src[i : i + 2] in _TWO_CHAR:
            tokens.append(_Token("op", src[i : i + 2], i))
            i += 2
            continue
        if c in _ONE_CHAR:
            tokens.append(_Token("op", c, i))
            i += 1
            continue
        if c == "=":
            raise ExpressionSyntaxError("'=' is not an operator (use '==')", src, i + 1)
        raise ExpressionSyntaxError(f"unexpected character {c!r}", src, i + 1)
    tokens.append(_Token("end", None, n))
    return tokens


# ----------------------------------------------------------------------------- tree

# A node is a tuple whose first item names its kind; compact and fast to walk.
_Node = tuple[Any, ...]


def _fn_len(x: Any) -> int:
    if isinstance(x, str | list | dict):
        return len(x)
    raise ExpressionError(f"len() needs a text, list or object, got {_kind(x)}")


def _fn_text_arg(name: str, x: Any) -> str:
    if not isinstance(x, str):
        raise ExpressionError(f"{name}() needs a text, got {_kind(x)}")
    return x


def _fn_number(x: Any) -> float | int:
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int | float):
        return x
    if isinstance(x, str):
        try:
            return int(x.strip())
        except ValueError:
            try:
                return float(x.strip())
            except ValueError:
                pass
    raise ExpressionError(f"number() cannot convert {_short(x)}")


def _fn_text(x: Any) -> str:
    if isinstance(x, str):
        return x
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x)


def _fn_contains(x: Any, part: Any) -> bool:
    return _membership(part, x)


def _fn_minmax(name: str, pick: Callable[..., Any], args: Sequence[Any]) -> Any:
    if not args:
        raise ExpressionError(f"{name}() needs at least one value")
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not values:
        raise ExpressionError(f"{name}() of an empty list")
    for v in values:
        if not _is_number(v):
            raise ExpressionError(f"{name}() needs numbers, got {_kind(v)}")
    return pick(values)


def _fn_round(n: Any, digits: Any = 0) -> Any:
    if not _is_number(n) or not isinstance(digits, int) or isinstance(digits, bool):
        raise ExpressionError("round() needs a number and an integer count of digits")
    return round(n, digits)


def _fn_abs(n: Any) -> Any:
    if not _is_number(n):
        raise ExpressionError(f"abs() needs a number, got {_kind(n)}")
    return abs(n)


def _fn_lines(s: Any) -> int:
    text = _fn_text_arg("lines", s)
    return 0 if not text else text.count("\n") + (0 if text.endswith("\n") else 1)


FUNCTIONS: Final[Mapping[str, tuple[int, int, Callable[..., Any]]]] = {
    # name: (min args, max args (-1: any), implementation)
    "len": (1, 1, _fn_len),
    "lower": (1, 1, lambda s: _fn_text_arg("lower", s).lower()),
    "upper": (1, 1, lambda s: _fn_text_arg("upper", s).upper()),
    "strip": (1, 1, lambda s: _fn_text_arg("strip", s).strip()),
    "startswith": (
        2,
        2,
        lambda s, p: _fn_text_arg("startswith", s).startswith(_fn_text_arg("startswith", p)),
    ),
    "endswith": (
        2,
        2,
        lambda s, p: _fn_text_arg("endswith", s).endswith(_fn_text_arg("endswith", p)),
    ),
    "contains": (2, 2, _fn_contains),
    "number": (1, 1, _fn_number),
    "text": (1, 1, _fn_text),
    "abs": (1, 1, _fn_abs),
    "min": (1, -1, lambda *a: _fn_minmax("min", min, a)),
    "max": (1, -1, lambda *a: _fn_minmax("max", max, a)),
    "round": (1, 2, _fn_round),
    "exists": (1, 1, lambda x: x is not None),
    "lines": (1, 1, _fn_lines),
}


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.tokens = _tokenize(src)
        self.i = 0
        self.depth = 0
        self.names: set[str] = set()

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: _Token | None = None) -> ExpressionSyntaxError:
        t = tok or self.tok
        return ExpressionSyntaxError(message, self.src, t.pos + 1)

    def is_op(self, value: str) -> bool:
        t = self.tok
        return t.kind == "op" and t.value == value

    def is_kw(self, value: str) -> bool:
        t = self.tok
        return t.kind == "kw" and t.value == value

    def expect_op(self, value: str) -> None:
        if not self.is_op(value):
            raise self.error(f"expected '{value}' but found {self.describe()}")
        self.i += 1

    def describe(self, tok: _Token | None = None) -> str:
        t = tok or self.tok
        if t.kind == "end":
            return "the end of the expression"
        if t.kind == "str":
            return f"text {t.value!r}"
        return f"'{t.value}'"

    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise self.error("empty expression")
        node = self.expr()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.describe()}")
        return node

    def expr(self) -> _Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nests deeper than {MAX_DEPTH} levels")
        try:
            return self.or_()
        finally:
            self.depth -= 1

    def or_(self) -> _Node:
        node = self.and_()
        while self.is_kw("or"):
            self.i += 1
            node = ("or", node, self.and_())
        return node

    def and_(self) -> _Node:
        node = self.not_()
        while self.is_kw("and"):
            self.i += 1
            node = ("and", node, self.not_())
        return node

    def not_(self) -> _Node:
        if self.is_kw("not"):
            self.i += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"expression nests deeper than {MAX_DEPTH} levels")
            try:
                return ("not", self.not_())
            finally:
                self.depth -= 1
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.additive()
        t = self.tok
        if t.kind == "op" and t.value in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            node: _Node = ("cmp", t.value, left, self.additive(), t.pos)
        elif self.is_kw("in"):
            self.i += 1
            node = ("in", left, self.additive(), t.pos)
        elif (
            self.is_kw("not")
            and self.tokens[self.i + 1].kind == "kw"
            and (self.tokens[self.i + 1].value == "in")
        ):
            self.i += 2
            node = ("not", ("in", left, self.additive(), t.pos))
        else:
            return left
        nxt = self.tok
        if nxt.kind == "op" and nxt.value in ("==", "!=", "<", "<=", ">", ">="):
            raise self.error("comparisons cannot be chained; join them with 'and'")
        return node

    def additive(self) -> _Node:
        node = self.term()
        while self.tok.kind == "op" and self.tok.value in ("+", "-"):
            t = self.tok
            self.i += 1
            node = ("arith", t.value, node, self.term(), t.pos)
        return node

    def term(self) -> _Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.value in ("*", "/", "%"):
            t = self.tok
            self.i += 1
            node = ("arith", t.value, node, self.unary(), t.pos)
        return node

    def unary(self) -> _Node:
        if self.is_op("-"):
            t = self.tok
            self.i += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"expression nests deeper than {MAX_DEPTH} levels")
            try:
                return ("neg", self.unary(), t.pos)
            finally:
                self.depth -= 1
        return self.postfix()

    def postfix(self) -> _Node:
        node = self.primary()
        while True:
            if self.is_op("."):
                t = self.tok
                self.i += 1
                name = self.tok
                if name.kind not in ("name", "kw"):
                    raise self.error(f"expected a key name after '.' but found {self.describe()}")
                self.i += 1
                node = ("get", node, ("lit", name.value), t.pos)
            elif self.is_op("["):
                t = self.tok
                self.i += 1
                index = self.expr()
                self.expect_op("]")
                node = ("get", node, index, t.pos)
            else:
                return node

    def primary(self) -> _Node:
        t = self.tok
        if t.kind in ("num", "str"):
            self.i += 1
            return ("lit", t.value)
        if t.kind == "kw" and t.value in ("true", "false", "null"):
            self.i += 1
            return ("lit", {"true": True, "false": False, "null": None}[t.value])
        if t.kind == "name":
            self.i += 1
            if self.is_op("("):
                return self.call(t)
            self.names.add(t.value)
            return ("var", t.value, t.pos)
        if self.is_op("("):
            self.i += 1
            node = self.expr()
            self.expect_op(")")
            return node
        if self.is_op("["):
            self.i += 1
            items: list[_Node] = []
            if not self.is_op("]"):
                items.append(self.expr())
                while self.is_op(","):
                    self.i += 1
                    items.append(self.expr())
            self.expect_op("]")
            return ("list", tuple(items))
        raise self.error(f"expected a value but found {self.describe()}")

    def call(self, name_tok: _Token) -> _Node:
        name = name_tok.value
        spec = FUNCTIONS.get(name)
        if spec is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.error(f"unknown function '{name}' (known: {known})", name_tok)
        self.expect_op("(")
        args: list[_Node] = []
        if not self.is_op(")"):
            args.append(self.expr())
            while self.is_op(","):
                self.i += 1
                args.append(self.expr())
        self.expect_op(")")
        lo, hi, _ = spec
        if len(args) < lo or (hi >= 0 and len(args) > hi):
            want = str(lo) if lo == hi else (f"{lo} or more" if hi < 0 else f"{lo} to {hi}")
            raise self.error(
                f"{name}() takes {want} argument{'s' if want != '1' else ''}, got {len(args)}",
                name_tok,
            )
        return ("call", name, tuple(args), name_tok.pos)


# ----------------------------------------------------------------------------- evaluation


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _kind(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, int | float):
        return "a number"
    if isinstance(x, str):
        return "a text"
    if isinstance(x, list | tuple):
        return "a list"
    if isinstance(x, dict):
        return "an object"
    return type(x).__name__


def _short(x: Any) -> str:
    if isinstance(x, str):
        r = repr(x)
    else:
        try:
            r = json.dumps(x, ensure_ascii=False)
        except (TypeError, ValueError):
            r = repr(x)
    return r if len(r) <= 40 else r[:37] + "..."


def truthy(value: Any) -> bool:
    """Return the truth of a JSON value: ``null``, ``false``, ``0`` and empties are false."""
    return bool(value)


def _membership(item: Any, container: Any) -> bool:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExpressionError(f"'in' a text needs a text on the left, got {_kind(item)}")
        return item in container
    if isinstance(container, list | tuple):
        return item in container
    if isinstance(container, dict):
        return item in container
    raise ExpressionError(f"'in' needs a text, list or object on the right, got {_kind(container)}")


def _eval(node: _Node, env: Mapping[str, Any]) -> Any:  # noqa: C901 - a flat dispatch
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        name = node[1]
        if name not in env:
            known = ", ".join(sorted(env)) or "none"
            raise ExpressionError(f"unknown name '{name}' (known: {known})")
        return env[name]
    if kind == "and":
        return truthy(_eval(node[1], env)) and truthy(_eval(node[2], env))
    if kind == "or":
        return truthy(_eval(node[1], env)) or truthy(_eval(node[2], env))
    if kind == "not":
        return not truthy(_eval(node[1], env))
    if kind == "cmp":
        op, left, right = node[1], _eval(node[2], env), _eval(node[3], env)
        if op == "==":
            return _equal(left, right)
        if op == "!=":
            return not _equal(left, right)
        if not (
            (_is_number(left) and _is_number(right))
            or (isinstance(left, str) and isinstance(right, str))
        ):
            raise ExpressionError(
                f"cannot compare {_kind(left)} with {_kind(right)} "
                f"({_short(left)} {op} {_short(right)})"
            )
        if op == "<":
            return left < right
        if op == "<=":
            return left <= right
        if op == ">":
            return left > right
        return left >= right
    if kind == "in":
        return _membership(_eval(node[1], env), _eval(node[2], env))
    if kind == "arith":
        return _arith(node[1], _eval(node[2], env), _eval(node[3], env))
    if kind == "neg":
        v = _eval(node[1], env)
        if not _is_number(v):
            raise ExpressionError(f"cannot negate {_kind(v)} ({_short(v)})")
        return -v
    if kind == "get":
        return _get(_eval(node[1], env), _eval(node[2], env))
    if kind == "list":
        return [_eval(item, env) for item in node[1]]
    if kind == "call":
        fn = FUNCTIONS[node[1]][2]
        return fn(*[_eval(a, env) for a in node[2]])
    raise AssertionError(f"unknown node {kind}")  # pragma: no cover


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _arith(op: str, left: Any, right: Any) -> Any:
    if op == "+":
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        if isinstance(left, list) and isinstance(right, list):
            return left + right
    if not (_is_number(left) and _is_number(right)):
        raise ExpressionError(
            f"cannot apply '{op}' to {_kind(left)} and {_kind(right)} "
            f"({_short(left)} {op} {_short(right)})"
        )
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        result = left * right
        if (isinstance(result, float) and math.isinf(result)) or (
            isinstance(result, int) and result.bit_length() > MAX_INT_BITS
        ):
            raise ExpressionError("number too large")
        return result
    if right == 0:
        raise ExpressionError(f"division by zero ({_short(left)} {op} 0)")
    if op == "/":
        return left / right
    return left % right


def _get(container: Any, key: Any) -> Any:
    if isinstance(container, dict):
        if not isinstance(key, str):
            raise ExpressionError(f"an object's key must be a text, got {_kind(key)}")
        if key not in container:
            return None
        return container[key]
    if isinstance(container, list | str):
        if not isinstance(key, int) or isinstance(key, bool):
            raise ExpressionError(f"a list or text index must be an integer, got {_kind(key)}")
        if -len(container) <= key < len(container):
            return container[key]
        return None
    if container is None:
        return None
    raise ExpressionError(f"cannot read {_short(key)} of {_kind(container)}")


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression; evaluate it with :meth:`evaluate`.

    Attributes
    ----------
    source
        The expression text.
    names
        The variable names the expression reads.
    """

    source: str
    names: frozenset[str]
    _tree: _Node

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Return the value of the expression with ``variables`` bound.

        Raises
        ------
        ExpressionError
            On an unknown name or a type clash; the message names the operands.
        """
        try:
            return _eval(self._tree, variables)
        except OverflowError:
            raise ExpressionError("number too large") from None
        except RecursionError:  # pragma: no cover - prevented by MAX_DEPTH
            raise ExpressionError("expression too deep") from None

    def test(self, variables: Mapping[str, Any]) -> bool:
        """Return the truth of the expression's value (see :func:`truthy`)."""
        return truthy(self.evaluate(variables))


@lru_cache(maxsize=512)
def compile_expression(source: str) -> Expression:
    """Parse ``source`` into an :class:`Expression` (cached).

    Raises
    ------
    ExpressionSyntaxError
        If the text is not a valid expression; names the column.
    """
    if not isinstance(source, str):
        raise TypeError(f"an expression is a text, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ExpressionSyntaxError(
            f"expression longer than {MAX_LENGTH} characters", source[:40] + "...", MAX_LENGTH
        )
    parser = _Parser(source)
    tree = parser.parse()
    return Expression(source, frozenset(parser.names), tree)


def evaluate(source: str, variables: Mapping[str, Any]) -> Any:
    """Parse (cached) and evaluate ``source`` with ``variables`` bound."""
    return compile_expression(source).evaluate(variables)
