"""The controller of one open melody: every user edit becomes one command on a QUndoStack.

A :class:`MelodyEditor` owns a :class:`~symphony.workflow.model.Melody`, the node-type registry
it is checked against, its file path and its undo stack. Views read the melody and listen to
``melody.events``; they change it only by calling the editor, which validates the edit (a clear
:class:`EditError` naming the problem, nothing changed) and pushes a command that calls the
melody's mutation methods (orange-canvas-core's document/canvas split).

Sticky notes are stored in the melody's metadata under ``"notes"`` (a list of
``{"id", "text", "position": [x, y], "size": [w, h]}``), so they are saved with the melody and
their edits are undoable like any other. A stored note that cannot be read is not shown, and is
kept as it is through every edit of the others (its id stays taken).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QMimeData, QObject, Signal
from PySide6.QtGui import QGuiApplication, QUndoStack

from symphony.canvas.geometry import NODE_WIDTH, NOTE_DEFAULT_SIZE, NOTE_MIN_SIZE, node_height
from symphony.document.commands import (
    AddItemsCommand,
    ConnectCommand,
    MoveCommand,
    RemoveCommand,
    SetValueCommand,
)
from symphony.document.layout import layered_positions
from symphony.registry.expression import ExpressionSyntaxError, compile_expression
from symphony.registry.registry import NodeTypeRegistry
from symphony.workflow.conditions import CONDITION_NAMES
from symphony.workflow.fileformat import dumps, load, loads, save
from symphony.workflow.model import (
    DependencyKind,
    Link,
    Melody,
    MelodyError,
    Node,
    NodePolicy,
    _copy_json,
    check_text,
)
from symphony.workflow.templates import load_template
from symphony.workflow.validation import check_link

__all__ = ["CLIPBOARD_MIME", "EditError", "MelodyEditor", "Note"]

CLIPBOARD_MIME: Final = "application/x-symphony-melody-fragment"
NOTES_KEY: Final = "notes"
PASTE_OFFSET: Final = 40.0
Point = tuple[float, float]


class EditError(ValueError):
    """An edit that cannot be made; the message names the node, port or field and why."""


@dataclass(frozen=True, slots=True)
class Note:
    """A sticky note on the board.

    Attributes
    ----------
    id
        Unique among the melody's notes (``note1``, ...).
    text
        Plain text.
    position
        Scene coordinates of the top-left corner.
    size
        Width and height.
    """

    id: str
    text: str
    position: Point
    size: Point = NOTE_DEFAULT_SIZE

    def to_json(self) -> dict[str, Any]:
        """Return the note as stored in the melody's metadata."""
        return {
            "id": self.id,
            "text": self.text,
            "position": [self.position[0], self.position[1]],
            "size": [self.size[0], self.size[1]],
        }


def _note_from_json(raw: Any) -> Note | None:
    """Return the note stored as ``raw``, or ``None`` if it cannot be read.

    A hand-edited note that cannot be read is left in the metadata as it is, and not shown:
    an id and a text that are texts, a position and a size that are two finite numbers each.
    """
    if not isinstance(raw, dict):
        return None
    note_id, text = raw.get("id"), raw.get("text", "")
    position = _pair(raw.get("position"))
    size = _pair(raw.get("size", list(NOTE_DEFAULT_SIZE)))
    if not isinstance(note_id, str) or not isinstance(text, str) or not position or not size:
        return None
    return Note(note_id, text, position, size)


def _pair(value: Any) -> Point | None:
    """Return two finite numbers stored as a list (as they are: 200 stays 200), or ``None``."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        try:
            if not math.isfinite(float(v)):
                return None
        except OverflowError:
            return None
    return (value[0], value[1])


class MelodyEditor(QObject):
    """Edit one melody with undo; see the module docstring.

    Parameters
    ----------
    melody
        The melody to edit.
    registry
        Node types that edits are checked against.
    path
        The file the melody was opened from or will be saved to.
    parent
        Qt parent.
    """

    sig_modified_changed = Signal(bool)
    sig_path_changed = Signal(str)
    sig_selection_changed = Signal(list)

    _drag_tokens = itertools.count(1)
    _clipboard_fallback: str = ""

    def __init__(
        self,
        melody: Melody,
        registry: NodeTypeRegistry,
        path: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._melody = melody
        self._registry = registry
        self._path = None if path is None else Path(path)
        self._undo_stack = QUndoStack(self)
        self._undo_stack.cleanChanged.connect(self._on_clean_changed)
        self._selection: list[str] = []
        self._paste_count = 0
        melody.events.subscribe(self._on_melody_event)

    # ------------------------------------------------------------------ opening and saving

    @classmethod
    def open(cls, path: Path | str, registry: NodeTypeRegistry) -> MelodyEditor:
        """Open a ``.melody`` file.

        Raises
        ------
        MelodyFormatError
            If the file is broken (the message names the line and the field).
        OSError
            If it cannot be read.
        """
        return cls(load(path), registry, Path(path))

    @classmethod
    def from_template(cls, name: str, registry: NodeTypeRegistry) -> MelodyEditor:
        """Start an unsaved melody from built-in template ``name``.

        Raises
        ------
        KeyError
            If there is no such template (the message lists the known ones).
        """
        return cls(load_template(name), registry)

    def save(self, path: Path | None = None) -> None:
        """Write the melody atomically to ``path`` (default: its current path) and mark it clean.

        A melody saved for the first time is renamed after the file (``ideas.melody``: "ideas").

        Raises
        ------
        EditError
            If the melody has no path yet and none is given.
        OSError
            If the file cannot be written (the melody stays modified).
        """
        target = Path(path) if path is not None else self._path
        if target is None:
            raise EditError("this melody has never been saved: choose a file name")
        if self._path is None and target.stem and target.stem != self._melody.name:
            # A new melody (or one from a template) takes the name its user gave the file:
            # runs, the run history and output names go by it, and "Untitled melody" for
            # every new board would mix their outputs as versions of one artifact.
            old = self._melody.set_name(target.stem)
            try:
                save(self._melody, target)
            except BaseException:
                self._melody.set_name(old)  # not saved: nothing changes
                raise
        else:
            save(self._melody, target)
        self._undo_stack.setClean()
        if target != self._path:
            self._path = target
            self.sig_path_changed.emit(str(target))

    def move_to(self, path: Path) -> None:
        """Follow the melody's file to ``path`` (it was renamed or moved; nothing is written)."""
        if path != self._path:
            self._path = Path(path)
            self.sig_path_changed.emit(str(path))

    def mark_unsaved(self) -> None:
        """Count the melody as modified (its file is gone: closing should offer to save)."""
        self._undo_stack.resetClean()

    def is_modified(self) -> bool:
        """Return whether there are edits since the last save (or since opening)."""
        return not self._undo_stack.isClean()

    # ------------------------------------------------------------------ properties

    @property
    def melody(self) -> Melody:
        """The edited melody (read it; change it only through this editor)."""
        return self._melody

    @property
    def registry(self) -> NodeTypeRegistry:
        """The node types edits are checked against."""
        return self._registry

    @property
    def undo_stack(self) -> QUndoStack:
        """The stack of edits (bind Undo/Redo actions to it)."""
        return self._undo_stack

    @property
    def path(self) -> Path | None:
        """The melody's file, or ``None`` before the first save."""
        return self._path

    # ------------------------------------------------------------------ selection

    def selected_node_ids(self) -> list[str]:
        """Return the selected node ids, in selection order."""
        return list(self._selection)

    def set_selection(self, ids: Iterable[str]) -> None:
        """Select exactly these nodes (unknown ids are ignored)."""
        nodes = self._melody.nodes
        selection = list(dict.fromkeys(i for i in ids if i in nodes))
        if selection != self._selection:
            self._selection = selection
            self.sig_selection_changed.emit(list(selection))

    # ------------------------------------------------------------------ nodes

    def add_node(
        self,
        type_id: str,
        pos: Point = (0.0, 0.0),
        *,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a node of ``type_id`` at ``pos`` with the type's default config; return its id.

        Raises
        ------
        EditError
            If the type is unknown.
        """
        desc = self._registry.get(type_id)
        if desc is None:
            raise EditError(f"unknown node type {type_id!r}: no installed extension provides it")
        node = Node(
            self._melody.new_node_id(),
            type_id,
            desc.title if name is None else name,
            dict(desc.default_config() if config is None else config),
            (float(pos[0]), float(pos[1])),
        )
        self._undo_stack.push(AddItemsCommand(self._melody, [node], [], f"Add {node.name}"))
        return node.id

    def remove_nodes(self, ids: Iterable[str]) -> None:
        """Remove nodes and their links as one undo step."""
        self.delete(ids, ())

    def delete(self, node_ids: Iterable[str], link_ids: Iterable[str] = ()) -> None:
        """Remove nodes (with their links) and further links as one undo step.

        Raises
        ------
        EditError
            If an id is unknown; nothing is removed.
        """
        nodes = list(dict.fromkeys(node_ids))
        links = list(dict.fromkeys(link_ids))
        for node_id in nodes:
            self._node(node_id)
        for link_id in links:
            if link_id not in self._melody.links:
                raise EditError(f"no link {link_id!r}")
        # links of removed nodes go with their node; removing them twice would fail
        links = [
            i
            for i in links
            if self._melody.links[i].source_node not in nodes
            and self._melody.links[i].target_node not in nodes
        ]
        if not nodes and not links:
            return
        what = _count(len(nodes), "node") if nodes else _count(len(links), "link")
        self._undo_stack.push(RemoveCommand(self._melody, nodes, links, f"Delete {what}"))

    def move_nodes(self, positions: Mapping[str, Point], *, drag: int | None = None) -> None:
        """Move nodes (and, with ids of notes, sticky notes) as one undo step.

        Parameters
        ----------
        positions
            New top-left positions by node or note id.
        drag
            A token from :meth:`begin_drag`: the steps of one drag merge into one undo step.
        """
        notes = {n.id: n for n in self.notes()}
        node_moves: dict[str, tuple[Point, Point]] = {}
        note_moves: dict[str, tuple[Point, Point]] = {}
        for item_id, pos in positions.items():
            new = (float(pos[0]), float(pos[1]))
            if item_id in self._melody.nodes:
                old = self._melody.nodes[item_id].position
                if old != new:
                    node_moves[item_id] = (old, new)
            elif item_id in notes:
                if notes[item_id].position != new:
                    note_moves[item_id] = (notes[item_id].position, new)
            else:
                raise EditError(f"no node or note {item_id!r} to move")
        if not node_moves and not note_moves:
            return
        n = len(node_moves) + len(note_moves)
        text = "Move " + (
            self._melody.nodes[next(iter(node_moves))].name
            if n == 1 and node_moves
            else _count(n, "item")
        )
        self._undo_stack.push(
            MoveCommand(self._melody, node_moves, note_moves, self._set_note_positions, text, drag)
        )

    def begin_drag(self) -> int:
        """Return a new token for :meth:`move_nodes` calls of one mouse drag."""
        return next(self._drag_tokens)

    def rename_node(self, node_id: str, name: str) -> None:
        """Rename a node (undoable)."""
        old = self._node(node_id).name
        if name == old:
            return
        if not isinstance(name, str) or not name.strip():
            raise EditError(f"node '{node_id}': a name must not be empty")
        try:
            check_text(name, f"node '{node_id}' name")
        except MelodyError as exc:
            raise EditError(str(exc)) from None
        self._push_set(
            lambda v: self._melody.rename_node(node_id, v), old, name, f"Rename {old} to {name}"
        )

    def set_config(self, node_id: str, field: str, value: Any) -> None:
        """Set one config field (``None`` unsets it), checked against the type's schema.

        Raises
        ------
        EditError
            If the field is unknown to the node's type or the value is not acceptable; the
            message names the field, e.g. ``config 'temperature': 5 is above the maximum 2``.
        """
        node = self._node(node_id)
        desc = self._registry.get(node.type_id)
        if desc is not None:
            spec = desc.config_field(field)
            if spec is None:
                known = ", ".join(f.name for f in desc.config) or "none"
                raise EditError(
                    f"node '{node_id}' ({desc.title}) has no config field '{field}' "
                    f"(fields: {known})"
                )
            reason = spec.check(value)
            if reason is not None:
                raise EditError(f"config '{field}': {reason}")
        new = dict(node.config)
        if value is None:
            new.pop(field, None)
        else:
            new[field] = value
        if new == node.config:
            return
        try:
            _copy_json(new)  # what the schema allows may still be unstorable ("\ud83d")
        except MelodyError as exc:
            raise EditError(str(exc)) from None
        self._push_set(
            lambda v: self._melody.set_node_config(node_id, v),
            node.config,
            new,
            f"Set {node.name}: {field}",
        )

    def set_policy(self, node_id: str, policy: NodePolicy | None = None, **changes: Any) -> None:
        """Replace a node's policy, or change some of its fields (``max_retries=3``).

        Raises
        ------
        EditError
            If a field is unknown or a value is out of range (the message names the field).
        """
        node = self._node(node_id)
        try:
            new = replace(policy or node.policy, **changes)
        except TypeError as exc:
            raise EditError(f"node '{node_id}' policy: {exc}") from None
        except MelodyError as exc:
            raise EditError(f"node '{node_id}' policy: {exc}") from None
        if new == node.policy:
            return
        self._push_set(
            lambda v: self._melody.set_node_policy(node_id, v),
            node.policy,
            new,
            f"Set {node.name}: policy",
        )

    def set_breakpoint(self, node_id: str, on: bool) -> None:
        """Set or clear a node's breakpoint (undoable)."""
        node = self._node(node_id)
        if node.breakpoint == bool(on):
            return
        self._push_set(
            lambda v: self._melody.set_breakpoint(node_id, v),
            node.breakpoint,
            bool(on),
            f"{'Set' if on else 'Clear'} breakpoint on {node.name}",
        )

    # ------------------------------------------------------------------ links

    def check_connection(self, src: str, src_port: str, dst: str, dst_port: str) -> str | None:
        """Return why this link cannot be made, or ``None`` (for drag feedback)."""
        return check_link(self._melody, self._registry, src, src_port, dst, dst_port)

    def connect(  # type: ignore[override]  # QObject.connect is Qt's; this is the melody's
        self,
        src: str,
        src_port: str,
        dst: str,
        dst_port: str,
        kind: DependencyKind | str = DependencyKind.HARD,
    ) -> str:
        """Link output ``src.src_port`` to input ``dst.dst_port``; return the link id.

        Raises
        ------
        EditError
            If the link would be wrong: missing port, type mismatch (both types named), a
            duplicate, a taken single input or a cycle.
        """
        problem = self.check_connection(src, src_port, dst, dst_port)
        if problem is not None:
            raise EditError(f"cannot link {src}.{src_port} to {dst}.{dst_port}: {problem}")
        try:
            kind = DependencyKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in DependencyKind)
            raise EditError(f"unknown dependency kind {kind!r} (known: {known})") from None
        link = Link(self._melody.new_link_id(), src, src_port, dst, dst_port, kind)
        self._undo_stack.push(ConnectCommand(self._melody, link))
        return link.id

    def disconnect(self, link_id: str) -> None:  # type: ignore[override]  # see connect
        """Remove one link (undoable)."""
        self.delete((), (link_id,))

    def set_link_kind(self, link_id: str, kind: DependencyKind | str) -> None:
        """Change how a link's target depends on its source (undoable).

        Raises
        ------
        EditError
            If the link or the kind is unknown.
        """
        link = self._link(link_id)
        try:
            new = DependencyKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in DependencyKind)
            raise EditError(f"unknown dependency kind {kind!r} (known: {known})") from None
        if new != link.kind:
            self._push_set(
                lambda v: self._melody.set_link_kind(link_id, v),
                link.kind,
                new,
                f"Make link {link_id} {new.value}",
            )

    def set_link_condition(self, link_id: str, condition: str | None) -> None:
        """Set the quality-gate condition of a link (``None`` or ``""``: always followed).

        Raises
        ------
        EditError
            If the link is unknown or the condition is not a valid expression.
        """
        link = self._link(link_id)
        new = (condition or "").strip() or None
        if new is not None:
            try:
                names = compile_expression(new).names
            except ExpressionSyntaxError as exc:
                raise EditError(f"link {link_id!r} condition: {exc}") from None
            unknown = sorted(names - CONDITION_NAMES)
            if unknown:
                known = ", ".join(sorted(CONDITION_NAMES))
                raise EditError(
                    f"link {link_id!r} condition {new!r} uses unknown name '{unknown[0]}' "
                    f"(known: {known})"
                )
        if new != link.condition:
            self._push_set(
                lambda v: self._melody.set_link_condition(link_id, v),
                link.condition,
                new,
                f"Set condition of link {link_id}",
            )

    def _link(self, link_id: str) -> Link:
        try:
            return self._melody.links[link_id]
        except KeyError:
            raise EditError(f"no link {link_id!r}") from None

    # ------------------------------------------------------------------ clipboard

    def copy(self, ids: Iterable[str] | None = None) -> str:
        """Copy nodes (default: the selection) and the links among them to the clipboard.

        Returns
        -------
        str
            The fragment as melody-file text (also what the clipboard holds).
        """
        text = self._fragment(self._selection if ids is None else ids)
        self._paste_count = 0
        MelodyEditor._clipboard_fallback = text
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication):
            data = QMimeData()
            data.setData(CLIPBOARD_MIME, text.encode("utf-8"))
            data.setText(text)
            app.clipboard().setMimeData(data)
        return text

    def paste(self, text: str | None = None, at: Point | None = None) -> list[str]:
        """Add a copied fragment with fresh ids as one undo step; select and return the new ids.

        Parameters
        ----------
        text
            A fragment from :meth:`copy` (default: the clipboard).
        at
            Where the fragment's top-left goes (default: offset from the originals).

        Raises
        ------
        EditError
            If the text is not a melody fragment.
        """
        if text is None:
            text = self._clipboard_text()
        if not text:
            return []
        try:
            fragment = loads(text, source="<clipboard>")
        except ValueError as exc:
            raise EditError(f"the clipboard holds no nodes to paste: {exc}") from None
        self._paste_count += 1
        return self._insert_fragment(fragment, at, "Paste")

    def duplicate(self, ids: Iterable[str] | None = None) -> list[str]:
        """Copy nodes (default: the selection) beside themselves without touching the clipboard."""
        fragment = loads(self._fragment(self._selection if ids is None else ids))
        self._paste_count = 1
        return self._insert_fragment(fragment, None, "Duplicate")

    def _fragment(self, ids: Iterable[str]) -> str:
        chosen = [self._node(i) for i in dict.fromkeys(ids)]
        part = Melody("fragment")
        for node in chosen:
            part.add_node(node)
        for link in self._melody.links.values():
            if link.source_node in part.nodes and link.target_node in part.nodes:
                part.add_link(link)
        return dumps(part)

    def _clipboard_text(self) -> str:
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication):
            data = app.clipboard().mimeData()
            if data is not None and data.hasFormat(CLIPBOARD_MIME):
                return bytes(data.data(CLIPBOARD_MIME).data()).decode("utf-8")
        return MelodyEditor._clipboard_fallback

    def _insert_fragment(self, fragment: Melody, at: Point | None, verb: str) -> list[str]:
        if not fragment.nodes:
            return []
        for node in fragment.nodes.values():
            if node.type_id not in self._registry:
                raise EditError(
                    f"cannot {verb.lower()} node '{node.id}': unknown type {node.type_id!r}"
                )
        left = min(n.position[0] for n in fragment.nodes.values())
        top = min(n.position[1] for n in fragment.nodes.values())
        if at is None:
            dx = dy = PASTE_OFFSET * self._paste_count
        else:
            dx, dy = at[0] - left, at[1] - top
        taken = set(self._melody.nodes)
        counter = itertools.count(1)
        new_ids: dict[str, str] = {}
        nodes: list[Node] = []
        for node in fragment.nodes.values():
            new_id = self._melody.new_node_id()
            while new_id in taken:
                new_id = f"n{len(taken) + next(counter)}"
            taken.add(new_id)
            new_ids[node.id] = new_id
            x, y = node.position
            nodes.append(replace(node, id=new_id, position=(x + dx, y + dy)))
        link_taken = set(self._melody.links)
        links: list[Link] = []
        next_link = itertools.count(1)
        for link in fragment.links.values():
            link_id = f"l{len(self._melody.links) + next(next_link)}"
            while link_id in link_taken:
                link_id = f"l{len(self._melody.links) + next(next_link)}"
            link_taken.add(link_id)
            links.append(
                replace(
                    link,
                    id=link_id,
                    source_node=new_ids[link.source_node],
                    target_node=new_ids[link.target_node],
                )
            )
        self._undo_stack.push(
            AddItemsCommand(self._melody, nodes, links, f"{verb} {_count(len(nodes), 'node')}")
        )
        ids = [n.id for n in nodes]
        self.set_selection(ids)
        return ids

    # ------------------------------------------------------------------ layout

    def node_size(self, node_id: str) -> Point:
        """Return the board size of a node (from its type's port counts)."""
        desc = self._registry.get(self._melody.nodes[node_id].type_id)
        if desc is None:
            return (NODE_WIDTH, node_height(1, 1))
        return (NODE_WIDTH, node_height(len(desc.inputs), len(desc.outputs)))

    def auto_layout(self) -> bool:
        """Arrange the nodes in layers from sources to sinks as one undo step.

        Returns
        -------
        bool
            Whether anything moved.
        """
        nodes = self._melody.nodes
        if not nodes:
            return False
        left = min(n.position[0] for n in nodes.values())
        top = min(n.position[1] for n in nodes.values())
        positions = layered_positions(self._melody, self.node_size, (left, top))
        moves = {k: (nodes[k].position, v) for k, v in positions.items() if nodes[k].position != v}
        if not moves:
            return False
        self._undo_stack.push(
            MoveCommand(self._melody, moves, {}, self._set_note_positions, "Auto-layout")
        )
        return True

    # ------------------------------------------------------------------ sticky notes

    def notes(self) -> list[Note]:
        """Return the sticky notes that can be read, in stacking order."""
        return [n for _, n in self._note_entries() if n is not None]

    def _note_entries(self) -> list[tuple[Any, Note | None]]:
        """Return each stored note with what it reads as (``None``: it cannot be read).

        A second note with an id already used cannot be told apart from the first, so it is
        treated as unreadable: kept, not shown.
        """
        raw = self._melody.metadata.get(NOTES_KEY)
        if not isinstance(raw, list):
            return []
        seen: set[str] = set()
        entries: list[tuple[Any, Note | None]] = []
        for item in raw:
            note = _note_from_json(item)
            if note is not None and note.id in seen:
                note = None
            if note is not None:
                seen.add(note.id)
            entries.append((item, note))
        return entries

    def _notes_json(self, notes: Sequence[Note]) -> list[Any]:
        """Return the stored notes list holding ``notes``.

        Notes that cannot be read stay where they are, as they are (hand-edited ones this
        version does not understand must survive an edit of the others); readable notes not
        in ``notes`` are gone; new ones come last (on top).

        Raises
        ------
        EditError
            If the metadata holds something other than a list under ``"notes"``: replacing
            it would lose it.
        """
        raw = self._melody.metadata.get(NOTES_KEY)
        if raw is not None and not isinstance(raw, list):
            raise EditError(
                f"the melody's metadata holds {type(raw).__name__} data under {NOTES_KEY!r}, "
                "not a list of notes: notes cannot be changed without losing it"
            )
        wanted = {n.id: n for n in notes}
        out: list[Any] = []
        for item, note in self._note_entries():
            if note is None:
                out.append(item)
            elif note.id in wanted:
                out.append(wanted.pop(note.id).to_json())
        out.extend(n.to_json() for n in notes if n.id in wanted)
        return out

    def note(self, note_id: str) -> Note:
        """Return note ``note_id``.

        Raises
        ------
        EditError
            If there is no such note.
        """
        for n in self.notes():
            if n.id == note_id:
                return n
        raise EditError(f"no note {note_id!r}")

    def add_note(self, pos: Point, text: str = "", size: Point = NOTE_DEFAULT_SIZE) -> str:
        """Add a sticky note; return its id."""
        # ids of notes that cannot be read are taken too: a new note must not share one
        taken = {str(item.get("id")) for item, _ in self._note_entries() if isinstance(item, dict)}
        note_id = next(f"note{i}" for i in itertools.count(1) if f"note{i}" not in taken)
        note = Note(note_id, text, (float(pos[0]), float(pos[1])), _note_size(size))
        self._push_notes([*self.notes(), note], "Add note")
        return note_id

    def edit_note(
        self, note_id: str, *, text: str | None = None, size: Point | None = None
    ) -> None:
        """Change a note's text and/or size (undoable)."""
        old = self.note(note_id)
        new = replace(
            old,
            text=old.text if text is None else text,
            size=old.size if size is None else _note_size(size),
        )
        if new != old:
            self._push_notes([new if n.id == note_id else n for n in self.notes()], "Edit note")

    def remove_notes(self, ids: Iterable[str]) -> None:
        """Remove sticky notes (undoable)."""
        gone = set(ids)
        for note_id in gone:
            self.note(note_id)
        if gone:
            self._push_notes([n for n in self.notes() if n.id not in gone], "Delete note")

    def _push_notes(self, notes: Sequence[Note], text: str) -> None:
        old = dict(self._melody.metadata)
        new = {**old, NOTES_KEY: self._notes_json(notes)}
        try:
            _copy_json(new, "metadata")
        except MelodyError as exc:  # checked before the command: a failing redo is no edit
            raise EditError(f"note: {exc}") from None
        self._push_set(self._melody.set_metadata, old, new, text)

    def _set_note_positions(self, positions: Mapping[str, Point]) -> None:
        notes = [
            replace(n, position=positions[n.id]) if n.id in positions else n for n in self.notes()
        ]
        self._melody.set_metadata({**self._melody.metadata, NOTES_KEY: self._notes_json(notes)})

    # ------------------------------------------------------------------ internals

    def _node(self, node_id: str) -> Node:
        try:
            return self._melody.nodes[node_id]
        except KeyError:
            raise EditError(f"no node {node_id!r}") from None

    def _push_set(self, setter: Any, old: Any, new: Any, text: str) -> None:
        self._undo_stack.push(SetValueCommand(setter, old, new, text))

    def _on_clean_changed(self, clean: bool) -> None:
        self.sig_modified_changed.emit(not clean)

    def _on_melody_event(self, _event: object) -> None:
        if self._selection and any(i not in self._melody.nodes for i in self._selection):
            self.set_selection(self._selection)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _note_size(size: Point) -> Point:
    return (max(float(size[0]), NOTE_MIN_SIZE[0]), max(float(size[1]), NOTE_MIN_SIZE[1]))
