from __future__ import annotations

import pytest

from symphony.registry import ExpressionError
from symphony.workflow import CONDITION_NAMES, condition_holds, condition_variables


def test_variables() -> None:
    assert condition_variables({"a": 1}, 0.5, "failed") == {
        "value": {"a": 1},
        "score": 0.5,
        "length": 1,
        "text": '{"a": 1}',
        "status": "failed",
    }
    assert condition_variables("abc", None, "succeeded")["length"] == 3
    assert condition_variables(3, None, "skipped")["length"] is None
    assert set(condition_variables(None, None, "skipped")) == CONDITION_NAMES
    with pytest.raises(ValueError, match="status must be one of succeeded, failed, skipped"):
        condition_variables(1, None, "done")


def test_branching_on_quality() -> None:
    high, low = "score >= 0.8", "score < 0.8"
    assert condition_holds(high, "draft", 0.9)
    assert not condition_holds(low, "draft", 0.9)
    assert condition_holds(low, "draft", 0.2)
    assert not condition_holds(high, "draft", 0.2)
    assert condition_holds(None, "anything")
    assert condition_holds("status == 'failed'", None, status="failed")
    assert condition_holds("length > 2 and 'TODO' not in text", "done!")


def test_errors_name_the_operands() -> None:
    with pytest.raises(ExpressionError, match=r"cannot compare null with a number \(null >= 0.8\)"):
        condition_holds("score >= 0.8", "x")
