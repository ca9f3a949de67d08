"""The node-type registry: built-ins plus what extension manifests contribute."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from symphony.registry.builtins import builtin_descriptions
from symphony.registry.descriptions import (
    Category,
    NodeTypeDescription,
    NodeTypeError,
    description_from_dict,
)
from symphony.registry.operators import OPERATORS, Operator, OperatorError

__all__ = ["NodeTypeRegistry", "RegistryChanged", "default_registry"]


@dataclass(frozen=True, slots=True)
class RegistryChanged:
    """Told to registry listeners after types were added or removed.

    Attributes
    ----------
    added, removed
        Type ids, in registration order.
    source
        ``"builtin"`` or the extension id whose types changed.
    """

    added: tuple[str, ...]
    removed: tuple[str, ...]
    source: str


class NodeTypeRegistry:
    """Node-type descriptions by type id; lookups are dictionary reads.

    Create an empty one, or :func:`default_registry` for one holding the built-in operators.
    """

    def __init__(self) -> None:
        self._types: dict[str, NodeTypeDescription] = {}
        self._listeners: list[Callable[[RegistryChanged], None]] = []

    # ------------------------------------------------------------------ reading

    def get(self, type_id: str) -> NodeTypeDescription | None:
        """Return the description of ``type_id``, or ``None`` if it is not registered."""
        return self._types.get(type_id)

    def __getitem__(self, type_id: str) -> NodeTypeDescription:
        try:
            return self._types[type_id]
        except KeyError:
            raise KeyError(f"unknown node type {type_id!r}") from None

    def __contains__(self, type_id: object) -> bool:
        return type_id in self._types

    def __iter__(self) -> Iterator[NodeTypeDescription]:
        return iter(list(self._types.values()))

    def __len__(self) -> int:
        return len(self._types)

    def type_ids(self) -> list[str]:
        """Return every registered type id, sorted."""
        return sorted(self._types)

    def by_category(self) -> dict[Category, list[NodeTypeDescription]]:
        """Return the descriptions grouped by palette category, each group sorted by title."""
        groups: dict[Category, list[NodeTypeDescription]] = {c: [] for c in Category}
        for d in self._types.values():
            groups[d.category].append(d)
        for items in groups.values():
            items.sort(key=lambda d: (d.title.casefold(), d.type_id))
        return groups

    def search(self, text: str) -> list[NodeTypeDescription]:
        """Return the descriptions whose id, title or description contain ``text`` (any case)."""
        needle = text.casefold().strip()
        found = [
            d
            for d in self._types.values()
            if not needle
            or needle in d.type_id
            or needle in d.title.casefold()
            or needle in d.description.casefold()
        ]
        return sorted(found, key=lambda d: (d.title.casefold(), d.type_id))

    def from_source(self, source: str) -> list[NodeTypeDescription]:
        """Return the descriptions contributed by ``source`` (an extension id or ``"builtin"``)."""
        return [d for d in self._types.values() if d.source == source]

    # ------------------------------------------------------------------ changing

    def register(self, description: NodeTypeDescription) -> None:
        """Add one description.

        Raises
        ------
        NodeTypeError
            If its type id is already registered; the message names both sources.
        """
        self._check_free(description, "id")
        self._types[description.type_id] = description
        self._notify(RegistryChanged((description.type_id,), (), description.source))

    def register_from_manifest(
        self, extension_id: str, node_types: Sequence[Mapping[str, Any]]
    ) -> tuple[NodeTypeDescription, ...]:
        """Register the ``[[node_types]]`` tables of extension ``extension_id``'s manifest.

        All or nothing: if any table is malformed or any id is taken, nothing is registered.

        Parameters
        ----------
        extension_id
            The contributing extension; recorded as each description's ``source``.
        node_types
            The tables as parsed from TOML.

        Returns
        -------
        tuple of NodeTypeDescription
            The new descriptions, in order.

        Raises
        ------
        NodeTypeError
            Naming the extension and the field, e.g. ``extension 'ai_instrument':
            node_types[1].outputs[0].type: unknown port type 'txt'; expected one of: ...``.
        """
        if not extension_id or not isinstance(extension_id, str):
            raise NodeTypeError("", f"extension id must be a non-empty text, got {extension_id!r}")
        if isinstance(node_types, str | bytes) or not isinstance(node_types, Sequence):
            raise NodeTypeError(
                f"extension '{extension_id}': node_types",
                f"expected a list of tables, got {type(node_types).__name__}",
            )
        parsed: list[NodeTypeDescription] = []
        seen: dict[str, int] = {}
        for i, table in enumerate(node_types):
            path = f"node_types[{i}]"
            try:
                desc = description_from_dict(table, path=path, source=extension_id)
                self._check_free(desc, f"{path}.id")
            except NodeTypeError as exc:
                raise NodeTypeError(f"extension '{extension_id}': {exc.path}", exc.reason) from None
            if desc.type_id in seen:
                raise NodeTypeError(
                    f"extension '{extension_id}': {path}.id",
                    f"{desc.type_id!r} is already declared by node_types[{seen[desc.type_id]}]",
                )
            seen[desc.type_id] = i
            parsed.append(desc)
        for desc in parsed:
            self._types[desc.type_id] = desc
        if parsed:
            self._notify(RegistryChanged(tuple(d.type_id for d in parsed), (), extension_id))
        return tuple(parsed)

    def unregister_source(self, source: str) -> tuple[str, ...]:
        """Remove every description contributed by ``source`` (an extension that was unloaded).

        Returns
        -------
        tuple of str
            The removed type ids.
        """
        removed = tuple(t for t, d in self._types.items() if d.source == source)
        for type_id in removed:
            del self._types[type_id]
        if removed:
            self._notify(RegistryChanged((), removed, source))
        return removed

    def _check_free(self, description: NodeTypeDescription, path: str) -> None:
        existing = self._types.get(description.type_id)
        if existing is not None:
            raise NodeTypeError(
                path,
                f"node type {description.type_id!r} is already registered by "
                f"{_source_name(existing.source)}",
            )

    # ------------------------------------------------------------------ listening

    def subscribe(self, listener: Callable[[RegistryChanged], None]) -> None:
        """Call ``listener`` after every change (synchronously, in subscription order)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[RegistryChanged], None]) -> None:
        """Stop calling ``listener``; a listener that is not subscribed is ignored."""
        try:
            self._listeners.remove(listener)
        except ValueError:
            pass

    def _notify(self, event: RegistryChanged) -> None:
        for listener in list(self._listeners):
            listener(event)

    # ------------------------------------------------------------------ running built-ins

    def operator(self, type_id: str) -> Operator | None:
        """Return the in-process implementation of a built-in operator, or ``None``."""
        desc = self._types.get(type_id)
        if desc is None or desc.source != "builtin":
            return None
        return OPERATORS.get(type_id)

    def run_operator(
        self, type_id: str, inputs: Mapping[str, Any], config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run built-in operator ``type_id`` with ``config`` merged over its defaults.

        Raises
        ------
        KeyError
            If ``type_id`` is not a built-in operator.
        OperatorError
            If the operator fails; the message names the port, field or position.
        """
        fn = self.operator(type_id)
        if fn is None:
            raise KeyError(f"{type_id!r} is not a built-in operator")
        desc = self._types[type_id]
        merged = {**desc.default_config(), **config}
        problems = desc.check_config(merged)
        if problems:
            raise OperatorError(type_id, "; ".join(problems))
        return fn(inputs, merged)


def _source_name(source: str) -> str:
    return "the built-ins" if source == "builtin" else f"extension '{source}'"


def default_registry() -> NodeTypeRegistry:
    """Return a new registry holding the built-in operators."""
    registry = NodeTypeRegistry()
    for desc in builtin_descriptions():
        registry._types[desc.type_id] = desc
    return registry
