"""Link conditions: the names they may read and how the conductor evaluates them.

A link's ``condition`` is an expression in the safe language of
:mod:`symphony.registry.expression`. When the source node has finished, the conductor follows the
link only if the condition holds, with these names bound:

``value``
    the source port's value (``null`` if it produced none);
``score``
    the value's quality score from the artifact store, or ``null``;
``length``
    the length of a text, list or object value, else ``null``;
``text``
    the value if it is a text, else its JSON;
``status``
    ``"succeeded"``, ``"failed"`` or ``"skipped"``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from symphony.registry.expression import compile_expression

__all__ = ["CONDITION_NAMES", "STATUSES", "condition_holds", "condition_variables"]

CONDITION_NAMES: Final = frozenset({"value", "score", "length", "text", "status"})
STATUSES: Final = ("succeeded", "failed", "skipped")


def condition_variables(value: Any, score: float | None, status: str) -> dict[str, Any]:
    """Return the names a link condition reads (see the module docstring).

    Raises
    ------
    ValueError
        If ``status`` is not one of :data:`STATUSES`.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    length = len(value) if isinstance(value, str | list | dict) else None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return {"value": value, "score": score, "length": length, "text": text, "status": status}


def condition_holds(
    condition: str | None, value: Any, score: float | None = None, status: str = "succeeded"
) -> bool:
    """Return whether a link with ``condition`` is followed (``None``: always).

    Raises
    ------
    ExpressionSyntaxError
        If the condition does not parse (validation reports this before a run).
    ExpressionError
        If it fails on these values (a type clash); the message names the operands.
    """
    if condition is None:
        return True
    return compile_expression(condition).test(condition_variables(value, score, status))
