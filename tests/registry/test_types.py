from __future__ import annotations

import pytest

from symphony.registry.types import PortType, is_compatible, is_subtype, parse_port_type

T = PortType


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (T.TEXT, T.TEXT),
        (T.CODE, T.TEXT),
        (T.MARKDOWN, T.TEXT),
        (T.FILE_PATH, T.TEXT),
        (T.FILE_LIST, T.JSON),
        (T.EMBEDDING, T.JSON),
        (T.TEXT, T.ANY),
        (T.JSON, T.ANY),
        (T.CODE, T.ANY),
        (T.ANY, T.CODE),
        (T.ANY, T.JSON),
        (T.ANY, T.ANY),
    ],
)
def test_compatible(source: PortType, target: PortType) -> None:
    assert is_compatible(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (T.TEXT, T.JSON),
        (T.JSON, T.TEXT),
        (T.TEXT, T.CODE),
        (T.MARKDOWN, T.CODE),
        (T.CODE, T.MARKDOWN),
        (T.FILE_LIST, T.FILE_PATH),
        (T.FILE_PATH, T.FILE_LIST),
        (T.EMBEDDING, T.TEXT),
        (T.FILE_LIST, T.TEXT),
        (T.JSON, T.FILE_LIST),
    ],
)
def test_incompatible(source: PortType, target: PortType) -> None:
    assert not is_compatible(source, target)


def test_every_type_is_below_any_and_itself() -> None:
    for t in PortType:
        assert is_subtype(t, T.ANY)
        assert is_subtype(t, t)
    assert not is_subtype(T.ANY, T.TEXT)


def test_parse_port_type() -> None:
    assert parse_port_type("file-path") is T.FILE_PATH
    with pytest.raises(ValueError, match=r"^unknown port type 'txt'; expected one of: any, text, "):
        parse_port_type("txt")
    with pytest.raises(ValueError, match="unknown port type 3"):
        parse_port_type(3)
