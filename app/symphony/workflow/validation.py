"""Validation of a melody against the node-type registry, with precise messages.

:func:`validate` returns every :class:`Issue` at once (the board marks them all); each message names
what it is about: a type mismatch names both ports and both types, a cycle names its nodes in
order, a missing required input names the port. The checks are linear in nodes plus links.

Link conditions may read the names in :data:`~symphony.workflow.conditions.CONDITION_NAMES`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from symphony.registry import NodeTypeRegistry
from symphony.registry.expression import ExpressionSyntaxError, compile_expression
from symphony.registry.operators import STATIC_CHECKS
from symphony.registry.types import is_compatible
from symphony.workflow.conditions import CONDITION_NAMES
from symphony.workflow.model import DependencyKind, Link, Melody, MelodyError, Node

__all__ = [
    "CONDITION_NAMES",
    "CycleError",
    "Issue",
    "Severity",
    "check_link",
    "find_cycles",
    "topological_order",
    "validate",
]


class Severity(StrEnum):
    """How bad an issue is: errors stop a run, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found by :func:`validate`.

    Attributes
    ----------
    severity
        :class:`Severity`.
    code
        Stable machine name: ``unknown-type``, ``config``, ``unknown-port``, ``type-mismatch``,
        ``too-many-links``, ``missing-input``, ``weak-input`` (a warning: a required input fed
        only by soft, optional or parallel links), ``cycle``, ``condition``.
    message
        The human sentence, naming nodes, ports and types.
    node_ids
        The nodes concerned (for a cycle, in cycle order).
    link_id
        The link concerned, if any.
    port
        The port concerned, if any.
    """

    severity: Severity
    code: str
    message: str
    node_ids: tuple[str, ...] = ()
    link_id: str | None = None
    port: str | None = None

    def __str__(self) -> str:
        return self.message


class CycleError(MelodyError):
    """The melody has a cycle, so it has no execution order; ``nodes`` lists one, in order."""

    def __init__(self, message: str, nodes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.nodes = nodes


#: Kinds that may leave an input empty: a soft or optional source may fail or not have run, and
#: a parallel one may not have finished when the target starts (its value is not streamed).
_WEAK: Final = frozenset({DependencyKind.SOFT, DependencyKind.OPTIONAL, DependencyKind.PARALLEL})


def _label(node: Node) -> str:
    return f"'{node.id}' ({node.name})" if node.name and node.name != node.id else f"'{node.id}'"


def check_link(
    melody: Melody,
    registry: NodeTypeRegistry,
    source_node: str,
    source_port: str,
    target_node: str,
    target_port: str,
) -> str | None:
    """Return why this link would be wrong, or ``None`` if it fits (for drag feedback).

    Checks that both nodes and ports exist, that the types fit, that the link is not a self-link
    or a duplicate, that a single-link input is free, and that it would not close a cycle.
    """
    if source_node == target_node:
        return f"node '{source_node}' cannot feed itself"
    nodes = melody.nodes
    if source_node not in nodes or target_node not in nodes:
        missing = source_node if source_node not in nodes else target_node
        return f"no node '{missing}'"
    problem = _port_problem(
        nodes[source_node], source_port, nodes[target_node], target_port, registry
    )
    if problem is not None:
        return problem
    if melody.find_link(source_node, source_port, target_node, target_port) is not None:
        return f"{source_node}.{source_port} is already linked to {target_node}.{target_port}"
    target_desc = registry.get(nodes[target_node].type_id)
    spec = target_desc.input(target_port) if target_desc is not None else None
    if spec is not None and not spec.multiple:
        taken = [link for link in melody.incoming(target_node) if link.target_port == target_port]
        if taken:
            return (
                f"input {target_node}.{target_port} takes one link and already has '{taken[0].id}'"
            )
    if _reaches(melody, target_node, source_node):
        return (
            f"linking {source_node}.{source_port} to {target_node}.{target_port} would close "
            f"a cycle ('{target_node}' already leads to '{source_node}')"
        )
    return None


def _reaches(melody: Melody, start: str, goal: str) -> bool:
    seen = {start}
    stack = [start]
    while stack:
        current = stack.pop()
        if current == goal:
            return True
        for link in melody.outgoing(current):
            if link.target_node not in seen:
                seen.add(link.target_node)
                stack.append(link.target_node)
    return False


def _port_problem(
    source: Node, source_port: str, target: Node, target_port: str, registry: NodeTypeRegistry
) -> str | None:
    source_desc = registry.get(source.type_id)
    target_desc = registry.get(target.type_id)
    if source_desc is None or target_desc is None:
        return None  # reported once per node as unknown-type
    out_spec = source_desc.output(source_port)
    if out_spec is None:
        known = ", ".join(p.name for p in source_desc.outputs) or "none"
        return f"node {_label(source)} has no output port '{source_port}' (outputs: {known})"
    in_spec = target_desc.input(target_port)
    if in_spec is None:
        known = ", ".join(p.name for p in target_desc.inputs) or "none"
        return f"node {_label(target)} has no input port '{target_port}' (inputs: {known})"
    if not is_compatible(out_spec.type, in_spec.type):
        return (
            f"type mismatch: output {source.id}.{source_port} ({out_spec.type}) cannot feed "
            f"input {target.id}.{target_port} ({in_spec.type})"
        )
    return None


def validate(melody: Melody, registry: NodeTypeRegistry) -> list[Issue]:
    """Return every problem in ``melody`` (empty when it is ready to run).

    Config is checked with the type's defaults filled in (as the node will run). Order: per
    node (unknown type, config), per link (ports, types, condition), per input
    (too many links, missing required), then cycles.
    """
    issues: list[Issue] = []
    err = Severity.ERROR
    nodes = melody.nodes
    for node in nodes.values():
        desc = registry.get(node.type_id)
        if desc is None:
            issues.append(
                Issue(
                    err,
                    "unknown-type",
                    f"node {_label(node)}: unknown node type '{node.type_id}'",
                    (node.id,),
                )
            )
            continue
        config = {**desc.default_config(), **node.config}
        problems = desc.check_config(config)
        check = STATIC_CHECKS.get(node.type_id) if desc.source == "builtin" else None
        if check is not None and not problems:
            connected = {link.target_port for link in melody.incoming(node.id)}
            problems = check(config, connected)
        for problem in problems:
            issues.append(Issue(err, "config", f"node {_label(node)}: {problem}", (node.id,)))
    for link in melody.links.values():
        issues.extend(_link_issues(link, nodes, registry))
    for node in nodes.values():
        desc = registry.get(node.type_id)
        if desc is None:
            continue
        fed: dict[str, list[Link]] = {}
        for link in melody.incoming(node.id):
            fed.setdefault(link.target_port, []).append(link)
        for spec in desc.inputs:
            links = fed.get(spec.name, [])
            link_ids = [link.id for link in links]
            if len(link_ids) > 1 and not spec.multiple:
                issues.append(
                    Issue(
                        err,
                        "too-many-links",
                        f"node {_label(node)}: input '{spec.name}' takes one link but has "
                        f"{len(link_ids)}: {', '.join(link_ids)}",
                        (node.id,),
                        port=spec.name,
                    )
                )
            if spec.required and not link_ids:
                issues.append(
                    Issue(
                        err,
                        "missing-input",
                        f"node {_label(node)}: required input '{spec.name}' ({spec.type}) "
                        f"is not connected",
                        (node.id,),
                        port=spec.name,
                    )
                )
            elif spec.required and all(link.kind in _WEAK for link in links):
                kinds = "/".join(sorted({link.kind.value for link in links}))
                issues.append(
                    Issue(
                        Severity.WARNING,
                        "weak-input",
                        f"node {_label(node)}: required input '{spec.name}' is fed only by "
                        f"{kinds} links ({', '.join(link_ids)}); it may be empty when the node "
                        "runs",
                        (node.id,),
                        port=spec.name,
                    )
                )
    for cycle in find_cycles(melody):
        names = " → ".join(_label(nodes[n]) for n in (*cycle, cycle[0]))
        issues.append(Issue(err, "cycle", f"cycle: {names}", tuple(cycle)))
    return issues


def _link_issues(link: Link, nodes: Mapping[str, Node], registry: NodeTypeRegistry) -> list[Issue]:
    found: list[Issue] = []
    source = nodes[link.source_node]
    target = nodes[link.target_node]
    problem = _port_problem(source, link.source_port, target, link.target_port, registry)
    if problem is not None:
        code = "type-mismatch" if problem.startswith("type mismatch") else "unknown-port"
        found.append(
            Issue(
                Severity.ERROR,
                code,
                f"link '{link.id}': {problem}",
                (link.source_node, link.target_node),
                link.id,
            )
        )
    if link.condition is not None:
        try:
            expression = compile_expression(link.condition)
        except ExpressionSyntaxError as exc:
            found.append(
                Issue(
                    Severity.ERROR,
                    "condition",
                    f"link '{link.id}': condition: {exc}",
                    (link.source_node, link.target_node),
                    link.id,
                )
            )
        else:
            unknown = sorted(expression.names - CONDITION_NAMES)
            if unknown:
                known = ", ".join(sorted(CONDITION_NAMES))
                found.append(
                    Issue(
                        Severity.ERROR,
                        "condition",
                        f"link '{link.id}': condition {link.condition!r} uses unknown name "
                        f"'{unknown[0]}' (known: {known})",
                        (link.source_node, link.target_node),
                        link.id,
                    )
                )
    return found


# ----------------------------------------------------------------------------- graph order


def find_cycles(melody: Melody) -> list[list[str]]:
    """Return one cycle per strongly connected group of nodes, each as node ids in link order.

    Each cycle starts at its smallest node id; the list is sorted by that id. Linear time
    (Tarjan's algorithm, iterative).
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    succ: dict[str, list[str]] = {
        n: [link.target_node for link in melody.outgoing(n)] for n in melody.nodes
    }
    for root in melody.nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, i = work[-1]
            children = succ[node]
            if i < len(children):
                work[-1] = (node, i + 1)
                child = children[i]
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    cycles = [_cycle_in(set(c), succ) for c in components]
    return sorted(cycles, key=lambda c: c[0])


def _cycle_in(members: set[str], succ: dict[str, list[str]]) -> list[str]:
    """Return a shortest cycle through the smallest id of a strongly connected ``members``."""
    start = min(members)
    parent: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        current = queue.popleft()
        for child in succ[current]:
            if child not in members:
                continue
            if child == start:
                path = [current]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return path[::-1]
            if child not in seen:
                seen.add(child)
                parent[child] = current
                queue.append(child)
    raise AssertionError("a strongly connected group has a cycle")  # pragma: no cover


def topological_order(melody: Melody) -> list[str]:
    """Return the node ids so every link goes forward (ties keep insertion order).

    Raises
    ------
    CycleError
        If the melody has a cycle; the message and ``nodes`` name one.
    """
    indegree = {n: len(melody.incoming(n)) for n in melody.nodes}
    ready = deque(n for n, d in indegree.items() if d == 0)
    order: list[str] = []
    while ready:
        current = ready.popleft()
        order.append(current)
        for link in melody.outgoing(current):
            indegree[link.target_node] -= 1
            if indegree[link.target_node] == 0:
                ready.append(link.target_node)
    if len(order) < len(indegree):
        cycle = find_cycles(melody)[0]
        nodes = melody.nodes
        names = " → ".join(_label(nodes[n]) for n in (*cycle, cycle[0]))
        raise CycleError(f"cycle: {names}", tuple(cycle))
    return order
