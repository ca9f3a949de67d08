"""Layered auto-layout of a melody (Sugiyama-style, via networkx).

Nodes are put in columns by their longest path from a source (``topological_generations`` of the
graph with its cycles condensed), ordered within a column by the mean row of their predecessors
(a few barycentre sweeps cut most crossings), and stacked with even gaps. Disconnected nodes go in
the first column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from symphony.workflow.model import Melody

__all__ = ["layered_positions"]

COLUMN_GAP: Final = 90.0
ROW_GAP: Final = 40.0
SWEEPS: Final = 4


def layered_positions(
    melody: Melody,
    size_of: Callable[[str], tuple[float, float]],
    origin: tuple[float, float] = (0.0, 0.0),
) -> dict[str, tuple[float, float]]:
    """Return a top-left position for every node of ``melody``.

    Parameters
    ----------
    melody
        The melody to lay out.
    size_of
        ``(width, height)`` of a node by id.
    origin
        Where the first column's top goes.
    """
    import networkx as nx  # type: ignore[import-untyped]  # imported lazily: ~0.1 s

    graph = nx.DiGraph()
    graph.add_nodes_from(melody.nodes)
    graph.add_edges_from((link.source_node, link.target_node) for link in melody.links.values())
    if not graph:
        return {}
    condensed = nx.condensation(graph)
    members: Mapping[int, set[str]] = nx.get_node_attributes(condensed, "members")
    columns: list[list[str]] = []
    for generation in nx.topological_generations(condensed):
        column: list[str] = []
        for component in sorted(generation):
            column.extend(sorted(members[component], key=_order_key(melody)))
        columns.append(column)
    row_of: dict[str, float] = {}
    for column in columns:
        for row, node_id in enumerate(column):
            row_of[node_id] = float(row)
    for sweep in range(SWEEPS):
        order = columns[1:] if sweep % 2 == 0 else columns[-2::-1]
        for column in order:
            neighbours = graph.predecessors if sweep % 2 == 0 else graph.successors

            def barycentre(node_id: str, near: Callable[[str], object] = neighbours) -> float:
                rows = [row_of[n] for n in near(node_id)]  # type: ignore[attr-defined]
                return sum(rows) / len(rows) if rows else row_of[node_id]

            column.sort(key=barycentre)
            for row, node_id in enumerate(column):
                row_of[node_id] = float(row)
    positions: dict[str, tuple[float, float]] = {}
    x = origin[0]
    for column in columns:
        y = origin[1]
        width = 0.0
        for node_id in column:
            w, h = size_of(node_id)
            positions[node_id] = (x, y)
            y += h + ROW_GAP
            width = max(width, w)
        x += width + COLUMN_GAP
    return positions


def _order_key(melody: Melody) -> Callable[[str], tuple[float, float]]:
    def key(node_id: str) -> tuple[float, float]:
        x, y = melody.nodes[node_id].position
        return (y, x)

    return key
