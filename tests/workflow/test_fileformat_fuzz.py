"""Property tests: damaged files fail with MelodyFormatError only, and its position exists."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.workflow import MelodyFormatError, loads
from symphony.workflow.templates import template_text

TEXT = template_text("summarize_folder").encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(TEXT) - 1), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(1, len(TEXT)),
)
def test_damaged_templates_fail_cleanly(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(TEXT)
    for offset, byte in edits:
        data[offset] = byte
    damaged = bytes(data[:cut])
    try:
        loads(damaged, source="fuzz.melody")
    except MelodyFormatError as error:
        line, column, text = error.line, error.column, str(error)
        lines = damaged.split(b"\n")
        assert 1 <= line <= len(lines)
        assert 1 <= column <= len(lines[line - 1]) + 1
        assert text.startswith(f"fuzz.melody:{line}:{column}: ")
