"""Property tests: any text either parses or fails with the expression errors, never worse."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.registry.expression import ExpressionError, ExpressionSyntaxError, compile_expression

ALPHABET = st.sampled_from(
    list("abcnotrsvlue_ 0123456789.+-*/%()[]<>=!,'\"\\") + ["and", "or", "not", "in", "len("]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(ALPHABET, max_size=30).map("".join))
def test_expressions_fail_only_with_expression_errors(source: str) -> None:
    try:
        expression = compile_expression(source)
    except ExpressionSyntaxError as error:
        column = error.column
        assert 1 <= column <= len(source) + 1
        return
    try:
        expression.evaluate({"a": 1, "b": "x", "c": [1, 2], "value": {"k": None}})
    except ExpressionError:
        pass
