from __future__ import annotations

from typing import Any

import pytest

from symphony.registry.jsonpath import JsonPathError, JsonPathSyntaxError, parse_path

DOC: dict[str, Any] = {
    "features": [{"name": "login", "tags": ["auth"]}, {"name": "search", "tags": []}],
    "meta": {"content-type": "json", "a.b": 1, "n": None},
    "rows": [1, 2, 3],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("", DOC),
        ("features[0].name", "login"),
        ("$.features[1].name", "search"),
        ("features[*].name", ["login", "search"]),
        ("features[*].tags[*]", [["auth"], []]),
        ("meta.content-type", "json"),
        ('meta["a.b"]', 1),
        ("meta['content-type']", "json"),
        ("meta.n", None),
        ("rows[-1]", 3),
        ("meta[*]", ["json", 1, None]),
        ("  rows[0]  ", 1),
    ],
)
def test_extracts(path: str, expected: Any) -> None:
    assert parse_path(path).extract(DOC) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "features[0].title",
            "path 'features[0].title': key 'title' not found at $.features[0] (keys: name, tags)",
        ),
        ("rows[3]", "path 'rows[3]': index 3 out of range at $.rows (list of 3)"),
        ("rows.x", "path 'rows.x': cannot read key 'x' at $.rows, found a list of 3"),
        ("meta[0]", "path 'meta[0]': cannot take item [0] at $.meta, found an object"),
        (
            "rows[0][*]",
            "path 'rows[0][*]': [*] needs a list or object at $.rows[0], found a number",
        ),
        (
            'meta["a.b"].c',
            "path 'meta[\"a.b\"].c': cannot read key 'c' at $.meta['a.b'], found a number",
        ),
    ],
)
def test_lookup_errors_name_the_step(path: str, message: str) -> None:
    with pytest.raises(JsonPathError) as info:
        parse_path(path).extract(DOC)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("features[", "expected an index, a quoted key or '*', found the end at column 10"),
        ("features[x]", "expected an index, a quoted key or '*', found 'x' at column 10"),
        ("rows[1", "expected ']' after the index at column 7"),
        ("a..b", "expected a key name, found '.' at column 3"),
        ("a b", "unexpected ' ' (steps start with '.' or '[') at column 2"),
        ("['x'", "expected ']' after the quoted key at column 5"),
        ("['x", "unterminated quoted key at column 2"),
        ("[*", "expected ']' after '[*' at column 3"),
        ("9a", "expected a key name, found '9' at column 1"),
    ],
)
def test_syntax_errors_name_the_column(path: str, message: str) -> None:
    with pytest.raises(JsonPathSyntaxError) as info:
        parse_path(path)
    assert str(info.value) == f"{message} in path {path!r}"
