"""The melody model: nodes, links, dependency kinds, per-node policy, breakpoints.

A :class:`Melody` owns immutable :class:`Node` and :class:`Link` values and replaces them on every
change. Each mutation method returns exactly what is needed to undo it (the old value, or the
removed node with its links), emits one event per changed thing on :attr:`Melody.events`, and
checks referential integrity (a link's nodes exist, ids are unique, no self-links, no duplicate
links). Typing rules (ports exist, types fit, required inputs are fed, no cycles) need the node-type
registry and live in :mod:`symphony.workflow.validation`.

Cost: every operation is a few dictionary reads and writes; removing a node touches only its own
links (per-node link indexes), so building a 1,000-node board is linear.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from symphony.workflow.events import (
    BreakpointChanged,
    EventBus,
    LinkAdded,
    LinkChanged,
    LinkRemoved,
    MelodyPropertiesChanged,
    NodeAdded,
    NodeConfigChanged,
    NodeMoved,
    NodePolicyChanged,
    NodeRemoved,
    NodeRenamed,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "DependencyKind",
    "Importance",
    "JsonDataError",
    "Link",
    "Melody",
    "MelodyError",
    "Node",
    "NodePolicy",
    "RemovedNode",
    "check_text",
]

# \Z, not $: "$" also matches before a final line break, so "read\n" would pass as an id
ID_RE: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\Z")
MAX_RETRIES: Final = 100
#: How deeply lists and objects may nest in a config value or in the metadata. Far more than
#: any real config needs, and low enough that reading, copying and writing them (recursive)
#: stays far from Python's recursion limit.
MAX_JSON_DEPTH: Final = 64


class MelodyError(ValueError):
    """A mutation that would break the melody's integrity (unknown id, duplicate, self-link)."""


class JsonDataError(MelodyError):
    """Config or metadata that a melody file cannot store.

    Attributes
    ----------
    path
        Where the bad value is, inside the config or metadata (``("a", 1, "b")``; ``()``: the
        whole value).
    reason
        What is wrong with it.
    at_key
        The problem is the key at the end of ``path``, not its value.
    """

    def __init__(
        self, where: str, path: tuple[str | int, ...], reason: str, *, at_key: bool = False
    ) -> None:
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.reason = reason
        self.at_key = at_key


class DependencyKind(StrEnum):
    """How a link's target depends on its source.

    ``hard``
        The target waits for the source and runs only if it succeeded (the default).
    ``soft``
        The target waits for the source to finish, and runs even if it failed or was skipped
        (the input is then absent).
    ``optional``
        The target uses the value if the source produced one, and does not wait for a source
        that is not scheduled to run.
    ``parallel``
        No ordering: the two may run at the same time; the target receives the value when it is
        ready (streamed).
    """

    HARD = "hard"
    SOFT = "soft"
    OPTIONAL = "optional"
    PARALLEL = "parallel"


class Importance(StrEnum):
    """How much a node matters to the melody's outcome (drives the conductor's recovery)."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class NodePolicy:
    """How the conductor runs one node and recovers from its failures.

    Attributes
    ----------
    max_retries
        Further attempts after a failure (0 to 100).
    timeout_s
        Seconds an attempt may take, or ``None`` for the conductor's default.
    fallback_models
        Model ids to switch to, in order, when the configured model keeps failing.
    skippable
        The melody may go on without this node's outputs (graceful skip).
    importance
        See :class:`Importance`.
    """

    max_retries: int = 2
    timeout_s: float | None = None
    fallback_models: tuple[str, ...] = ()
    skippable: bool = False
    importance: Importance = Importance.NORMAL

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or not 0 <= self.max_retries <= MAX_RETRIES
        ):
            raise MelodyError(
                f"max_retries must be a whole number from 0 to {MAX_RETRIES}, "
                f"got {self.max_retries!r}"
            )
        t = self.timeout_s
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0
        ):
            raise MelodyError(f"timeout_s must be a positive number of seconds, got {t!r}")
        if isinstance(self.fallback_models, str):
            # tuple("abc") would be the three models 'a', 'b' and 'c'
            raise MelodyError(
                f"fallback_models is a list of model ids, got the text {self.fallback_models!r}"
            )
        if not isinstance(self.fallback_models, tuple):
            object.__setattr__(self, "fallback_models", tuple(self.fallback_models))
        for model in self.fallback_models:
            if not isinstance(model, str) or not model.strip():
                raise MelodyError(f"fallback_models must be non-empty model ids, got {model!r}")
        if not isinstance(self.importance, Importance):
            try:
                importance = Importance(self.importance)
            except ValueError:
                known = ", ".join(i.value for i in Importance)
                raise MelodyError(
                    f"importance must be one of {known}, got {self.importance!r}"
                ) from None
            object.__setattr__(self, "importance", importance)


DEFAULT_POLICY: Final = NodePolicy()


@dataclass(frozen=True, slots=True)
class Node:
    """One step of a melody: an instance of a node type.

    Attributes
    ----------
    id
        Unique within the melody; letters, digits, ``_`` and ``-`` (at most 64).
    type_id
        The node type (``ai.summarizer``, ``op.template``, ...).
    name
        Shown on the board.
    config
        The type's config values (JSON data). Treat it as read-only: change it with
        :meth:`Melody.set_node_config`.
    position
        Scene coordinates of the node's top-left corner.
    policy
        Retries, timeout, fallbacks, skip and importance.
    breakpoint
        The conductor pauses before running this node in debug runs.
    """

    id: str
    type_id: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    position: tuple[float, float] = (0.0, 0.0)
    policy: NodePolicy = DEFAULT_POLICY
    breakpoint: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    """A connection from one node's output port to another node's input port.

    Attributes
    ----------
    id
        Unique within the melody.
    source_node, source_port
        Where the value comes from (an output).
    target_node, target_port
        Where it goes (an input).
    kind
        The :class:`DependencyKind`.
    condition
        A quality-gate expression (see :mod:`symphony.registry.expression`); the link is followed
        only when it holds. ``None``: always.
    """

    id: str
    source_node: str
    source_port: str
    target_node: str
    target_port: str
    kind: DependencyKind = DependencyKind.HARD
    condition: str | None = None

    @property
    def endpoints(self) -> tuple[str, str, str, str]:
        """Return ``(source_node, source_port, target_node, target_port)``."""
        return (self.source_node, self.source_port, self.target_node, self.target_port)


@dataclass(frozen=True, slots=True)
class RemovedNode:
    """What :meth:`Melody.remove_node` took out; give it to :meth:`Melody.restore_node` to undo."""

    node: Node
    links: tuple[Link, ...]


def _copy_json(
    value: Any, where: str = "config", path: tuple[str | int, ...] = (), depth: int = 0
) -> Any:
    r"""Return a private copy of JSON data (dicts and lists copied, scalars shared).

    Raises
    ------
    JsonDataError
        If ``value`` holds anything a melody file cannot store: a non-text key, a non-finite
        number, text that is not valid Unicode (a lone surrogate such as ``"\ud83d"``: UTF-8
        cannot encode it), lists and objects nested more than :data:`MAX_JSON_DEPTH` deep, or
        a type other than dict, list, str, int, float, bool and None (tuples are stored as
        lists). ``where`` and ``path`` say where ``value`` is (``config.a[1]``).
    """
    t = type(value)
    if (t is dict or t is list or t is tuple) and depth >= MAX_JSON_DEPTH:
        raise JsonDataError(
            where, path, f"lists and objects nest more than {MAX_JSON_DEPTH} levels deep"
        )
    if t is dict:
        copied: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str:
                raise JsonDataError(where, path, f"keys must be texts, got {k!r}")
            if not k.isascii():
                _check_text(k, where, (*path, k), at_key=True)
            tv = type(v)
            if tv is str:
                if not v.isascii():
                    _check_text(v, f"{where}.{k}", (*path, k))
                copied[k] = v
            elif tv is int or tv is bool or v is None:
                copied[k] = v
            else:
                copied[k] = _copy_json(v, f"{where}.{k}", (*path, k), depth + 1)
        return copied
    if t is list or t is tuple:
        return [_copy_json(v, f"{where}[{i}]", (*path, i), depth + 1) for i, v in enumerate(value)]
    if t is float:
        if not math.isfinite(value):
            raise JsonDataError(where, path, f"numbers must be finite, got {value!r}")
        return value
    if t is str:
        if not value.isascii():
            _check_text(value, where, path)
        return value
    if t in _ATOMS:
        return value
    raise JsonDataError(where, path, f"{t.__name__} is not JSON data")


def _check_text(
    text: str, where: str, path: tuple[str | int, ...], *, at_key: bool = False
) -> None:
    r"""Refuse text that UTF-8 cannot encode: a lone surrogate, as JSON's ``"\ud83d"`` gives."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        what = "a key" if at_key else "text"
        raise JsonDataError(
            where,
            path,
            f"{what} holds the lone surrogate {text[exc.start]!r}: half of a character, "
            "which a UTF-8 file cannot store",
            at_key=at_key,
        ) from None


def check_text(text: str, what: str) -> None:
    r"""Raise :class:`MelodyError` naming ``what`` if UTF-8 cannot encode ``text``.

    Names, ids and other texts of a melody are written to a UTF-8 file; a lone surrogate
    (``"\ud83d"`` read from JSON, or a broken string from elsewhere) would make every save fail.
    """
    if not text.isascii():
        _check_text(text, what, ())


_ATOMS: Final = frozenset({str, int, float, bool, type(None)})


def _check_node_fields(type_id: object, name: object, policy: object) -> None:
    if type(type_id) is not str or not type_id:
        raise MelodyError(f"a node type id is a non-empty text, got {type_id!r}")
    if type(name) is not str:
        raise MelodyError(f"a node name is a text, got {name!r}")
    check_text(type_id, "node type id")
    check_text(name, "node name")
    if type(policy) is not NodePolicy:
        raise MelodyError(f"a node policy is a NodePolicy, got {policy!r}")


def _position(value: Iterable[float]) -> tuple[float, float]:
    if type(value) is tuple and len(value) == 2:
        x, y = value
        if type(x) is float and type(y) is float and math.isfinite(x + y) and x == x and y == y:
            return value
    x, y = value
    if isinstance(x, bool) or isinstance(y, bool):
        raise MelodyError(f"a position is two numbers, got {(x, y)!r}")
    fx, fy = float(x), float(y)
    if not (math.isfinite(fx) and math.isfinite(fy)):
        raise MelodyError(f"a position must be finite, got {(x, y)!r}")
    return (fx, fy)


class Melody:
    """A workflow of nodes and links, with fine-grained, exactly invertible mutations.

    Parameters
    ----------
    name
        Shown in the window title and the file list.
    description
        Free text.
    metadata
        Free JSON object for tools (author, tags, ...).

    Attributes
    ----------
    events
        The :class:`~symphony.workflow.events.EventBus` views subscribe to.
    """

    def __init__(
        self,
        name: str = "Untitled melody",
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.events = EventBus()
        self._name = name
        self._description = description
        self._metadata: dict[str, Any] = _copy_json(dict(metadata or {}), "metadata")
        self._nodes: dict[str, Node] = {}
        self._links: dict[str, Link] = {}
        # per-node link ids (dicts as ordered sets) and an endpoint index for duplicates
        self._out: dict[str, dict[str, None]] = {}
        self._in: dict[str, dict[str, None]] = {}
        self._by_endpoints: dict[tuple[str, str, str, str], str] = {}
        self._next_node = 1
        self._next_link = 1

    # ------------------------------------------------------------------ reading

    @property
    def name(self) -> str:
        """The melody's name."""
        return self._name

    @property
    def description(self) -> str:
        """The melody's description."""
        return self._description

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Free JSON metadata (read-only view; change with :meth:`set_metadata`)."""
        return MappingProxyType(self._metadata)

    @property
    def nodes(self) -> Mapping[str, Node]:
        """Nodes by id, in insertion order (read-only view)."""
        return MappingProxyType(self._nodes)

    @property
    def links(self) -> Mapping[str, Link]:
        """Links by id, in insertion order (read-only view)."""
        return MappingProxyType(self._links)

    def node(self, node_id: str) -> Node:
        """Return node ``node_id``.

        Raises
        ------
        MelodyError
            If there is no such node.
        """
        try:
            return self._nodes[node_id]
        except KeyError:
            raise MelodyError(f"no node {node_id!r}") from None

    def link(self, link_id: str) -> Link:
        """Return link ``link_id``.

        Raises
        ------
        MelodyError
            If there is no such link.
        """
        try:
            return self._links[link_id]
        except KeyError:
            raise MelodyError(f"no link {link_id!r}") from None

    def outgoing(self, node_id: str) -> list[Link]:
        """Return the links leaving ``node_id`` (empty for an unknown node)."""
        return [self._links[i] for i in self._out.get(node_id, ())]

    def incoming(self, node_id: str) -> list[Link]:
        """Return the links entering ``node_id`` (empty for an unknown node)."""
        return [self._links[i] for i in self._in.get(node_id, ())]

    def links_of(self, node_id: str) -> list[Link]:
        """Return every link touching ``node_id``: incoming first, then outgoing."""
        return self.incoming(node_id) + self.outgoing(node_id)

    def find_link(
        self, source_node: str, source_port: str, target_node: str, target_port: str
    ) -> Link | None:
        """Return the link with these ends, or ``None``."""
        link_id = self._by_endpoints.get((source_node, source_port, target_node, target_port))
        return None if link_id is None else self._links[link_id]

    def __len__(self) -> int:
        return len(self._nodes)

    def __repr__(self) -> str:
        return f"<Melody {self._name!r}: {len(self._nodes)} nodes, {len(self._links)} links>"

    def snapshot(self) -> dict[str, Any]:
        """Return the melody as its canonical file document (equal melodies give equal dicts)."""
        from symphony.workflow.fileformat import to_document

        return to_document(self)

    # ------------------------------------------------------------------ ids

    def new_node_id(self) -> str:
        """Return an unused node id (``n1``, ``n2``, ...)."""
        while f"n{self._next_node}" in self._nodes:
            self._next_node += 1
        return f"n{self._next_node}"

    def new_link_id(self) -> str:
        """Return an unused link id (``l1``, ``l2``, ...)."""
        while f"l{self._next_link}" in self._links:
            self._next_link += 1
        return f"l{self._next_link}"

    # ------------------------------------------------------------------ melody properties

    def set_name(self, name: str) -> str:
        """Rename the melody; return the old name."""
        check_text(name, "melody name")
        old = self._name
        self._name = name
        self.events.emit(MelodyPropertiesChanged("name", old, name))
        return old

    def set_description(self, description: str) -> str:
        """Replace the description; return the old one."""
        check_text(description, "melody description")
        old = self._description
        self._description = description
        self.events.emit(MelodyPropertiesChanged("description", old, description))
        return old

    def set_metadata(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the metadata object; return the old one."""
        old = self._metadata
        self._metadata = _copy_json(dict(metadata), "metadata")
        self.events.emit(
            MelodyPropertiesChanged("metadata", old, _copy_json(self._metadata, "metadata"))
        )
        return old

    # ------------------------------------------------------------------ nodes

    def add_node(self, node: Node) -> Node:
        """Add ``node`` (its config is copied); return the stored node.

        Raises
        ------
        MelodyError
            If the id is malformed or taken.
        """
        node_id = node.id
        if type(node_id) is not str or node_id in self._nodes or not ID_RE.match(node_id):
            if type(node_id) is str and node_id in self._nodes:
                raise MelodyError(f"node id {node_id!r} is already used")
            raise MelodyError(
                f"node id {node_id!r} is malformed (1-64 letters, digits, '_' or '-')"
            )
        _check_node_fields(node.type_id, node.name, node.policy)
        config = node.config
        stored = Node(
            node_id,
            node.type_id,
            node.name,
            _copy_json(config if type(config) is dict else dict(config)),
            _position(node.position),
            node.policy,
            bool(node.breakpoint),
        )
        return self._insert_node(stored)

    def _insert_node(self, node: Node) -> Node:
        """Store a node whose id is free and valid and whose fields are already private copies."""
        node_id = node.id
        self._nodes[node_id] = node
        self._out[node_id] = {}
        self._in[node_id] = {}
        self.events.emit(NodeAdded(node))
        return node

    def create_node(
        self,
        type_id: str,
        name: str | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        position: tuple[float, float] = (0.0, 0.0),
        policy: NodePolicy = DEFAULT_POLICY,
        breakpoint: bool = False,
    ) -> Node:
        """Add a new node of ``type_id`` with a fresh id; return it (undo: :meth:`remove_node`)."""
        name = type_id if name is None else name
        _check_node_fields(type_id, name, policy)
        return self._insert_node(
            Node(
                self.new_node_id(),
                type_id,
                name,
                _copy_json(dict(config)) if config else {},
                _position(position),
                policy,
                bool(breakpoint),
            )
        )

    def remove_node(self, node_id: str) -> RemovedNode:
        """Remove a node and its links; return them for :meth:`restore_node`.

        Emits :class:`LinkRemoved` for each link, then :class:`NodeRemoved`.
        """
        node = self.node(node_id)
        link_ids = list(self._in[node_id]) + list(self._out[node_id])
        links = tuple(self._links[i] for i in link_ids)
        for link in links:
            self._drop_link(link)
        del self._nodes[node_id]
        del self._out[node_id]
        del self._in[node_id]
        self.events.emit(NodeRemoved(node))
        return RemovedNode(node, links)

    def restore_node(self, removed: RemovedNode) -> None:
        """Put back what :meth:`remove_node` took out (the node, then its links)."""
        self.add_node(removed.node)
        for link in removed.links:
            self.add_link(link)

    def _update_node(self, node_id: str, **changes: Any) -> tuple[Node, Node]:
        old = self.node(node_id)
        new = replace(old, **changes)
        self._nodes[node_id] = new
        return old, new

    def move_node(self, node_id: str, position: tuple[float, float]) -> tuple[float, float]:
        """Move a node; return its old position."""
        pos = _position(position)
        old, _ = self._update_node(node_id, position=pos)
        self.events.emit(NodeMoved(node_id, old.position, pos))
        return old.position

    def move_nodes(
        self, positions: Mapping[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        """Move several nodes (a dragged selection); return their old positions.

        All ids are checked before anything moves.
        """
        for node_id in positions:
            self.node(node_id)
        return {node_id: self.move_node(node_id, pos) for node_id, pos in positions.items()}

    def rename_node(self, node_id: str, name: str) -> str:
        """Change a node's display name; return the old one."""
        if type(name) is not str:
            raise MelodyError(f"a node name is a text, got {name!r}")
        check_text(name, f"node '{node_id}' name")
        old, _ = self._update_node(node_id, name=name)
        self.events.emit(NodeRenamed(node_id, old.name, name))
        return old.name

    def set_node_config(self, node_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a node's config (copied); return the old config."""
        new_config = _copy_json(dict(config))
        old, _ = self._update_node(node_id, config=new_config)
        self.events.emit(NodeConfigChanged(node_id, old.config, new_config))
        return old.config

    def set_node_policy(self, node_id: str, policy: NodePolicy) -> NodePolicy:
        """Replace a node's policy; return the old one."""
        if type(policy) is not NodePolicy:
            raise MelodyError(f"a node policy is a NodePolicy, got {policy!r}")
        old, _ = self._update_node(node_id, policy=policy)
        self.events.emit(NodePolicyChanged(node_id, old.policy, policy))
        return old.policy

    def set_breakpoint(self, node_id: str, enabled: bool) -> bool:
        """Set or clear a node's breakpoint; return the old state."""
        old, _ = self._update_node(node_id, breakpoint=bool(enabled))
        self.events.emit(BreakpointChanged(node_id, bool(enabled)))
        return old.breakpoint

    # ------------------------------------------------------------------ links

    def add_link(self, link: Link) -> Link:
        """Add ``link``; return it (undo with :meth:`remove_link`).

        Raises
        ------
        MelodyError
            If the id is malformed or taken, an end names an unknown node, both ends are the same
            node, or a link with the same ends exists.
        """
        link_id = link.id
        if type(link_id) is not str or link_id in self._links or not ID_RE.match(link_id):
            if type(link_id) is str and link_id in self._links:
                raise MelodyError(f"link id {link_id!r} is already used")
            raise MelodyError(
                f"link id {link_id!r} is malformed (1-64 letters, digits, '_' or '-')"
            )
        return self._insert_link(link)

    def _insert_link(self, link: Link) -> Link:
        """Check a link whose id is free and valid against the nodes and links, and store it."""
        link_id, source, target = link.id, link.source_node, link.target_node
        out_index = self._out.get(source)
        in_index = self._in.get(target)
        if out_index is None or in_index is None:
            end, node_id = ("source", source) if out_index is None else ("target", target)
            raise MelodyError(f"link {link_id!r}: {end} node {node_id!r} does not exist")
        if source == target:
            raise MelodyError(f"link {link_id!r}: node {source!r} cannot feed itself")
        if (
            type(link.source_port) is not str
            or type(link.target_port) is not str
            or not link.source_port
            or not link.target_port
        ):
            raise MelodyError(f"link {link_id!r}: both ports must be named")
        if link.condition is not None and type(link.condition) is not str:
            raise MelodyError(f"link {link_id!r}: a condition is a text or None")
        endpoints = (source, link.source_port, target, link.target_port)
        existing = self._by_endpoints.get(endpoints)
        if existing is not None:
            raise MelodyError(
                f"link {link_id!r}: {source}.{link.source_port} is already linked to "
                f"{target}.{link.target_port} by link {existing!r}"
            )
        if type(link.kind) is not DependencyKind:
            link = replace(link, kind=DependencyKind(link.kind))
        self._links[link_id] = link
        out_index[link_id] = None
        in_index[link_id] = None
        self._by_endpoints[endpoints] = link_id
        self.events.emit(LinkAdded(link))
        return link

    def connect(
        self,
        source_node: str,
        source_port: str,
        target_node: str,
        target_port: str,
        *,
        kind: DependencyKind = DependencyKind.HARD,
        condition: str | None = None,
    ) -> Link:
        """Add a link with a fresh id; return it."""
        return self._insert_link(
            Link(
                self.new_link_id(),
                source_node,
                source_port,
                target_node,
                target_port,
                DependencyKind(kind),
                condition,
            )
        )

    def remove_link(self, link_id: str) -> Link:
        """Remove a link; return it (undo with :meth:`add_link`)."""
        link = self.link(link_id)
        self._drop_link(link)
        return link

    def _drop_link(self, link: Link) -> None:
        del self._links[link.id]
        del self._out[link.source_node][link.id]
        del self._in[link.target_node][link.id]
        del self._by_endpoints[link.endpoints]
        self.events.emit(LinkRemoved(link))

    def _change_link(self, link_id: str, **changes: Any) -> Link:
        old = self.link(link_id)
        new = replace(old, **changes)
        self._links[link_id] = new
        self.events.emit(LinkChanged(old, new))
        return old

    def set_link_kind(self, link_id: str, kind: DependencyKind) -> DependencyKind:
        """Change a link's dependency kind; return the old one."""
        return self._change_link(link_id, kind=DependencyKind(kind)).kind

    def set_link_condition(self, link_id: str, condition: str | None) -> str | None:
        """Change a link's condition (``None`` or ``""`` removes it); return the old one."""
        if condition is not None and type(condition) is not str:
            raise MelodyError(f"link {link_id!r}: a condition is a text or None")
        return self._change_link(link_id, condition=condition or None).condition
