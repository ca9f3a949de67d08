"""The undoable edits of a melody: one :class:`~PySide6.QtGui.QUndoCommand` per user action.

Every command changes the melody only through its mutation methods and keeps exactly what those
methods return, so undo restores the previous state bit for bit (ids, link order, config copies).
Run outputs and run states are not part of the melody and are never touched here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from PySide6.QtGui import QUndoCommand

from symphony.workflow.model import Link, Melody, Node, RemovedNode

__all__ = [
    "AddItemsCommand",
    "ConnectCommand",
    "MoveCommand",
    "RemoveCommand",
    "SetValueCommand",
]

MOVE_COMMAND_ID: Final = 0x5EED  # QUndoCommand.id() for mergeable moves
Point = tuple[float, float]


class AddItemsCommand(QUndoCommand):
    """Add nodes (with fixed ids) and then links among them or to existing nodes.

    Used for a single new node, for paste and for duplicate.
    """

    def __init__(
        self, melody: Melody, nodes: Sequence[Node], links: Sequence[Link], text: str
    ) -> None:
        super().__init__(text)
        self._melody = melody
        self._nodes = tuple(nodes)
        self._links = tuple(links)

    def redo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        for node in self._nodes:
            self._melody.add_node(node)
        for link in self._links:
            self._melody.add_link(link)

    def undo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        for link in reversed(self._links):
            self._melody.remove_link(link.id)
        for node in reversed(self._nodes):
            self._melody.remove_node(node.id)


class RemoveCommand(QUndoCommand):
    """Remove links and nodes (a node takes its links with it)."""

    def __init__(
        self, melody: Melody, node_ids: Sequence[str], link_ids: Sequence[str], text: str
    ) -> None:
        super().__init__(text)
        self._melody = melody
        self._node_ids = tuple(node_ids)
        self._link_ids = tuple(link_ids)
        self._removed_links: list[Link] = []
        self._removed_nodes: list[RemovedNode] = []

    def redo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        m = self._melody
        self._removed_links = [m.remove_link(i) for i in self._link_ids]
        self._removed_nodes = [m.remove_node(i) for i in self._node_ids]

    def undo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        m = self._melody
        for removed in reversed(self._removed_nodes):
            m.restore_node(removed)
        for link in reversed(self._removed_links):
            m.add_link(link)
        self._removed_links = []
        self._removed_nodes = []


class ConnectCommand(QUndoCommand):
    """Add one link."""

    def __init__(self, melody: Melody, link: Link) -> None:
        super().__init__(
            f"Connect {link.source_node}.{link.source_port} → {link.target_node}.{link.target_port}"
        )
        self._melody = melody
        self.link = link

    def redo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        self._melody.add_link(self.link)

    def undo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        self._melody.remove_link(self.link.id)


class SetValueCommand(QUndoCommand):
    """Replace one value through a setter (config, name, policy, breakpoint, metadata)."""

    def __init__(self, setter: Callable[[Any], object], old: Any, new: Any, text: str) -> None:
        super().__init__(text)
        self._setter = setter
        self._old = old
        self._new = new

    def redo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        self._setter(self._new)

    def undo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        self._setter(self._old)


class MoveCommand(QUndoCommand):
    """Move nodes and sticky notes; successive steps of one drag merge into one undo step.

    Parameters
    ----------
    melody
        The melody whose nodes move.
    nodes
        ``{node_id: (old, new)}``.
    notes
        ``{note_id: (old, new)}``; applied with ``move_notes``.
    move_notes
        Sets note positions (the editor's metadata setter).
    drag
        A token shared by the steps of one drag; ``None`` never merges.
    """

    def __init__(
        self,
        melody: Melody,
        nodes: Mapping[str, tuple[Point, Point]],
        notes: Mapping[str, tuple[Point, Point]],
        move_notes: Callable[[Mapping[str, Point]], None],
        text: str,
        drag: int | None = None,
    ) -> None:
        super().__init__(text)
        self._melody = melody
        self._nodes = dict(nodes)
        self._notes = dict(notes)
        self._move_notes = move_notes
        self.drag = drag

    def id(self) -> int:  # noqa: D102 - QUndoCommand protocol
        return MOVE_COMMAND_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: D102, N802 - QUndoCommand protocol
        if not isinstance(other, MoveCommand) or self.drag is None or other.drag != self.drag:
            return False
        for key, (_, new) in other._nodes.items():
            self._nodes[key] = (self._nodes.get(key, (new, new))[0], new)
        for key, (_, new) in other._notes.items():
            self._notes[key] = (self._notes.get(key, (new, new))[0], new)
        return True

    def redo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        self._apply(1)

    def undo(self) -> None:  # noqa: D102 - QUndoCommand protocol
        self._apply(0)

    def _apply(self, which: int) -> None:
        if self._nodes:
            self._melody.move_nodes({k: v[which] for k, v in self._nodes.items()})
        if self._notes:
            self._move_notes({k: v[which] for k, v in self._notes.items()})
