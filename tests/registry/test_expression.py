from __future__ import annotations

from typing import Any

import pytest

from symphony.registry.expression import (
    MAX_DEPTH,
    ExpressionError,
    ExpressionSyntaxError,
    compile_expression,
    evaluate,
)

ENV: dict[str, Any] = {
    "score": 0.82,
    "value": {"title": "Plan", "items": [1, 2, 3], "ok": True},
    "text": "Hello World",
    "n": 7,
    "empty": [],
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("score >= 0.8", True),
        ("score > 0.9", False),
        ("score >= 0.5 and score < 0.9", True),
        ("score < 0.5 or n == 7", True),
        ("not (n == 7)", False),
        ("n + 3 * 2", 13),
        ("(n + 3) * 2", 20),
        ("n / 2", 3.5),
        ("n % 4", 3),
        ("-n + 10", 3),
        ("value.title == 'Plan'", True),
        ("value['title']", "Plan"),
        ("value.items[1]", 2),
        ("value.items[-1]", 3),
        ("value.items[10]", None),
        ("value.missing", None),
        ("len(value.items)", 3),
        ("'World' in text", True),
        ("'x' not in text", True),
        ("2 in value.items", True),
        ("'title' in value", True),
        ("lower(text) == 'hello world'", True),
        ("upper('a')", "A"),
        ("strip('  a ')", "a"),
        ("startswith(text, 'Hell') and endswith(text, 'ld')", True),
        ("contains(value.items, 3)", True),
        ("number('4.5') + 1", 5.5),
        ("number('4')", 4),
        ("text(3) + '!'", "3!"),
        ("abs(-2)", 2),
        ("min(3, 1, 2)", 1),
        ("max(value.items)", 3),
        ("round(0.456, 2)", 0.46),
        ("exists(value.missing)", False),
        ("lines('a\\nb\\n')", 2),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("'a' + \"b\"", "ab"),
        ("true and null", False),
        ("1e3", 1000.0),
        ("empty == []", True),
        ("1 == true", False),
        ("'it\\'s'", "it's"),
    ],
)
def test_evaluates(source: str, expected: Any) -> None:
    assert evaluate(source, ENV) == expected


def test_truthiness_follows_json() -> None:
    e = compile_expression("value")
    for falsy in (None, False, 0, "", [], {}):
        assert e.test({"value": falsy}) is False
    for truthy in (True, 1, "x", [0], {"a": 1}):
        assert e.test({"value": truthy}) is True


def test_short_circuit_skips_the_error() -> None:
    assert evaluate("false and missing > 1", {}) is False
    assert evaluate("true or missing > 1", {}) is True


def test_names_are_collected() -> None:
    assert compile_expression("score > 1 and len(value) > 0").names == {"score", "value"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "score >",
            "expected a value but found the end of the expression at column 8 in 'score >'",
        ),
        ("", "empty expression at column 1 in ''"),
        ("score = 1", "'=' is not an operator (use '==') at column 7 in 'score = 1'"),
        ("a < b < c", "comparisons cannot be chained; join them with 'and' at column 7"),
        ("(1 + 2", "expected ')' but found the end of the expression at column 7"),
        ("'abc", "unterminated string at column 1"),
        ("x @ 2", "unexpected character '@' at column 3"),
        ("foo(1)", "unknown function 'foo' (known: abs, contains, "),
        ("len(1, 2)", "len() takes 1 argument, got 2 at column 1"),
        ("round()", "round() takes 1 to 2 arguments, got 0 at column 1"),
        ("1 2", "unexpected '2' at column 3"),
        ("value.", "expected a key name after '.' but found the end of the expression at column 7"),
        ("'\\q'", "unknown escape '\\q' at column 2"),
    ],
)
def test_syntax_errors_name_the_column(source: str, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression(source)
    assert str(info.value).startswith(message)


def test_syntax_error_attributes() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression("score >")
    assert info.value.column == 8
    assert info.value.source == "score >"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("scor > 1", "unknown name 'scor' (known: empty, n, score, text, value)"),
        ("text < 3", "cannot compare a text with a number ('Hello World' < 3)"),
        ("text - 1", "cannot apply '-' to a text and a number ('Hello World' - 1)"),
        ("n / 0", "division by zero (7 / 0)"),
        ("-text", "cannot negate a text ('Hello World')"),
        ("len(n)", "len() needs a text, list or object, got a number"),
        ("number('abc')", "number() cannot convert 'abc'"),
        ("1 in n", "'in' needs a text, list or object on the right, got a number"),
        ("value[1]", "an object's key must be a text, got a number"),
        ("n.x", "cannot read 'x' of a number"),
        ("max([])", "max() of an empty list"),
        ("'a' * 3", "cannot apply '*' to a text and a number ('a' * 3)"),
    ],
)
def test_evaluation_errors_are_precise(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(source, ENV)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "().__class__",
        "open('x')",
        "eval('1')",
        "[x for x in y]",
        "lambda: 1",
    ],
)
def test_nothing_python_is_reachable(source: str) -> None:
    with pytest.raises((ExpressionSyntaxError, ExpressionError)):
        evaluate(source, {"value": {}})


def test_attribute_syntax_reads_keys_not_attributes() -> None:
    assert evaluate("value.__class__", {"value": {"__class__": 1}}) == 1
    assert evaluate("value.__class__", {"value": {}}) is None


def test_huge_numbers_are_refused() -> None:
    with pytest.raises(ExpressionError, match="number too large"):
        evaluate("n * n * n * n", {"n": 10**1200})
    with pytest.raises(ExpressionError, match="number too large"):
        evaluate("1e300 * 1e300", {})
    with pytest.raises(ExpressionError, match="number too large"):
        evaluate("n / 3", {"n": 10**400})


def test_limits() -> None:
    deep = "(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(ExpressionSyntaxError, match="nests deeper than 64 levels"):
        compile_expression(deep)
    with pytest.raises(ExpressionSyntaxError, match="longer than 2000 characters"):
        compile_expression("1 + " * 600 + "1")
    with pytest.raises(ExpressionSyntaxError, match="nests deeper"):
        compile_expression("not " * 100 + "true")
    with pytest.raises(ExpressionSyntaxError, match="nests deeper"):
        compile_expression("-" * 100 + "1")
