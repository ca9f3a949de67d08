"""Port types: the small type lattice that decides which output may feed which input.

The lattice::

                 any
          ┌───────┴────────┐
        text              json
   ┌──────┼────────┐     ┌──┴───────┐
  code markdown file-path file-list embedding

A value of a type may flow into an input of the same type or of any type above it (``code`` into
``text``, ``file-list`` into ``json``). ``any`` is also accepted as a *source* for every input: an
``any`` output is checked when the value exists, at run time. Everything else needs an operator in
between: ``text`` into ``json`` is refused (use *JSON extract* to parse), ``json`` into ``text`` is
refused (use *Text template* to format).
"""

from __future__ import annotations

from enum import StrEnum


class PortType(StrEnum):
    """The type of a port; the value is its spelling in files and manifests."""

    ANY = "any"
    TEXT = "text"
    JSON = "json"
    CODE = "code"
    MARKDOWN = "markdown"
    FILE_PATH = "file-path"
    FILE_LIST = "file-list"
    EMBEDDING = "embedding"


_PARENT: dict[PortType, PortType | None] = {
    PortType.ANY: None,
    PortType.TEXT: PortType.ANY,
    PortType.JSON: PortType.ANY,
    PortType.CODE: PortType.TEXT,
    PortType.MARKDOWN: PortType.TEXT,
    PortType.FILE_PATH: PortType.TEXT,
    PortType.FILE_LIST: PortType.JSON,
    PortType.EMBEDDING: PortType.JSON,
}


def parent_type(port_type: PortType) -> PortType | None:
    """Return the type directly above ``port_type`` in the lattice (``None`` for ``any``)."""
    return _PARENT[port_type]


def is_subtype(source: PortType, target: PortType) -> bool:
    """Return whether ``source`` equals ``target`` or lies below it in the lattice."""
    current: PortType | None = source
    while current is not None:
        if current is target:
            return True
        current = _PARENT[current]
    return False


def is_compatible(source: PortType, target: PortType) -> bool:
    """Return whether an output of type ``source`` may be linked to an input of type ``target``.

    Parameters
    ----------
    source
        The output port's type.
    target
        The input port's type.

    Returns
    -------
    bool
        ``True`` when ``source`` is ``target`` or below it, or when ``source`` is ``any``.
    """
    return source is PortType.ANY or is_subtype(source, target)


def parse_port_type(value: object) -> PortType:
    """Return the :class:`PortType` spelled ``value``.

    Raises
    ------
    ValueError
        If ``value`` is not a known spelling; the message lists the known ones.
    """
    if isinstance(value, str):
        try:
            return PortType(value)
        except ValueError:
            pass
    known = ", ".join(t.value for t in PortType)
    raise ValueError(f"unknown port type {value!r}; expected one of: {known}")
