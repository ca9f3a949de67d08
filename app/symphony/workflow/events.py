"""Model events and a tiny synchronous observer (no Qt).

Every mutation of a :class:`~symphony.workflow.model.Melody` emits exactly one event per changed
thing, after the change is made, carrying both the old and the new value so a view can update
itself without reading the model back and an undo command can be checked against it.
Removing a node first emits :class:`LinkRemoved` for each of its links, then :class:`NodeRemoved`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from symphony.workflow.model import Link, Node, NodePolicy

__all__ = [
    "BreakpointChanged",
    "EventBus",
    "LinkAdded",
    "LinkChanged",
    "LinkRemoved",
    "MelodyEvent",
    "MelodyPropertiesChanged",
    "NodeAdded",
    "NodeConfigChanged",
    "NodeMoved",
    "NodePolicyChanged",
    "NodeRemoved",
    "NodeRenamed",
]


@dataclass(frozen=True, slots=True)
class MelodyEvent:
    """Base of every model event."""


@dataclass(frozen=True, slots=True)
class NodeAdded(MelodyEvent):
    """A node was added (or restored by undo)."""

    node: Node


@dataclass(frozen=True, slots=True)
class NodeRemoved(MelodyEvent):
    """A node was removed; its links were removed just before, each with :class:`LinkRemoved`."""

    node: Node


@dataclass(frozen=True, slots=True)
class NodeMoved(MelodyEvent):
    """A node's position changed."""

    node_id: str
    old: tuple[float, float]
    new: tuple[float, float]


@dataclass(frozen=True, slots=True)
class NodeRenamed(MelodyEvent):
    """A node's display name changed."""

    node_id: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class NodeConfigChanged(MelodyEvent):
    """A node's config was replaced."""

    node_id: str
    old: dict[str, Any]
    new: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodePolicyChanged(MelodyEvent):
    """A node's execution policy was replaced."""

    node_id: str
    old: NodePolicy
    new: NodePolicy


@dataclass(frozen=True, slots=True)
class BreakpointChanged(MelodyEvent):
    """A node's breakpoint was set or cleared."""

    node_id: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class LinkAdded(MelodyEvent):
    """A link was added (or restored by undo)."""

    link: Link


@dataclass(frozen=True, slots=True)
class LinkRemoved(MelodyEvent):
    """A link was removed."""

    link: Link


@dataclass(frozen=True, slots=True)
class LinkChanged(MelodyEvent):
    """A link's dependency kind or condition changed (its ends never change)."""

    old: Link
    new: Link


@dataclass(frozen=True, slots=True)
class MelodyPropertiesChanged(MelodyEvent):
    """The melody's name, description or metadata changed; ``field`` names which."""

    field: str
    old: Any
    new: Any


E = TypeVar("E", bound=MelodyEvent)
Listener = Callable[[Any], None]


class EventBus:
    """Synchronous observer: listeners run in the emitting thread, before the mutation returns.

    A listener subscribes to one event class (and its subclasses) or to :class:`MelodyEvent` for
    all. Listeners of the exact class run first, then those of its bases; within a class, in
    subscription order. If listeners raise, every listener still runs; then the first error is
    re-raised (or an :class:`ExceptionGroup` if several failed). The model is already changed.
    """

    __slots__ = ("_by_type", "_cache")

    def __init__(self) -> None:
        self._by_type: dict[type[MelodyEvent], list[Listener]] = {}
        self._cache: dict[type[MelodyEvent], tuple[Listener, ...]] = {}

    def subscribe(
        self,
        listener: Callable[[E], None],
        event_type: type[E] = MelodyEvent,  # type: ignore[assignment]
    ) -> None:
        """Call ``listener(event)`` for every emitted ``event_type`` (default: every event)."""
        self._by_type.setdefault(event_type, []).append(listener)
        self._cache.clear()

    def unsubscribe(
        self,
        listener: Callable[[E], None],
        event_type: type[E] = MelodyEvent,  # type: ignore[assignment]
    ) -> None:
        """Stop calling ``listener`` for ``event_type``; unknown pairs are ignored."""
        listeners = self._by_type.get(event_type)
        if listeners is not None and listener in listeners:
            listeners.remove(listener)
            self._cache.clear()

    def has_listeners(self) -> bool:
        """Return whether anyone listens (emitters may skip building events when not)."""
        return any(self._by_type.values())

    def emit(self, event: MelodyEvent) -> None:
        """Deliver ``event`` to its listeners."""
        cls = type(event)
        listeners = self._cache.get(cls)
        if listeners is None:
            listeners = tuple(
                fn for base in cls.__mro__ if base in self._by_type for fn in self._by_type[base]
            )
            self._cache[cls] = listeners
        if not listeners:
            return
        errors: list[Exception] = []
        for fn in listeners:
            try:
                fn(event)
            except Exception as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(f"{len(errors)} listeners failed on {cls.__name__}", errors)
