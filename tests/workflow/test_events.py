from __future__ import annotations

import pytest

from symphony.workflow import (
    BreakpointChanged,
    DependencyKind,
    EventBus,
    LinkAdded,
    LinkChanged,
    LinkRemoved,
    Melody,
    MelodyEvent,
    MelodyPropertiesChanged,
    NodeAdded,
    NodeConfigChanged,
    NodeMoved,
    NodePolicy,
    NodePolicyChanged,
    NodeRemoved,
    NodeRenamed,
)


def recorded() -> tuple[Melody, list[MelodyEvent]]:
    m = Melody()
    events: list[MelodyEvent] = []
    m.events.subscribe(events.append)
    return m, events


def test_every_mutation_emits_its_event() -> None:
    m, events = recorded()
    a = m.create_node("op.template", "A")
    b = m.create_node("op.split", "B")
    assert events == [NodeAdded(a), NodeAdded(b)]
    events.clear()

    link = m.connect(a.id, "text", b.id, "text")
    m.move_node(a.id, (5, 6))
    m.move_nodes({a.id: (7, 8), b.id: (1, 1)})
    m.rename_node(a.id, "A2")
    m.set_node_config(a.id, {"template": "x"})
    policy = NodePolicy(max_retries=4)
    m.set_node_policy(a.id, policy)
    m.set_breakpoint(a.id, True)
    m.set_link_kind(link.id, DependencyKind.PARALLEL)
    parallel = m.link(link.id)
    m.set_link_condition(link.id, "score > 1")
    m.set_name("New")
    m.set_description("D")
    m.set_metadata({"k": 1})
    assert events == [
        LinkAdded(link),
        NodeMoved(a.id, (0.0, 0.0), (5.0, 6.0)),
        NodeMoved(a.id, (5.0, 6.0), (7.0, 8.0)),
        NodeMoved(b.id, (0.0, 0.0), (1.0, 1.0)),
        NodeRenamed(a.id, "A", "A2"),
        NodeConfigChanged(a.id, {}, {"template": "x"}),
        NodePolicyChanged(a.id, NodePolicy(), policy),
        BreakpointChanged(a.id, True),
        LinkChanged(link, parallel),
        LinkChanged(parallel, m.link(link.id)),
        MelodyPropertiesChanged("name", "Untitled melody", "New"),
        MelodyPropertiesChanged("description", "", "D"),
        MelodyPropertiesChanged("metadata", {}, {"k": 1}),
    ]
    events.clear()

    final_a = m.node(a.id)
    final_link = m.link(link.id)
    removed = m.remove_node(a.id)
    assert events == [LinkRemoved(final_link), NodeRemoved(final_a)]
    events.clear()
    m.restore_node(removed)
    assert events == [NodeAdded(final_a), LinkAdded(final_link)]
    events.clear()
    m.remove_link(link.id)
    assert events == [LinkRemoved(final_link)]


def test_refused_edits_emit_nothing() -> None:
    m, events = recorded()
    m.create_node("op.split")
    events.clear()
    with pytest.raises(ValueError, match="cannot feed itself"):
        m.connect("n1", "parts", "n1", "text")
    with pytest.raises(ValueError, match="no node"):
        m.rename_node("zz", "x")
    assert events == []


def test_typed_subscription_and_unsubscribe() -> None:
    m = Melody()
    moved: list[NodeMoved] = []
    everything: list[MelodyEvent] = []
    m.events.subscribe(moved.append, NodeMoved)
    m.events.subscribe(everything.append)
    node = m.create_node("op.split")
    m.move_node(node.id, (1, 1))
    assert moved == [NodeMoved(node.id, (0.0, 0.0), (1.0, 1.0))]
    assert len(everything) == 2
    m.events.unsubscribe(moved.append, NodeMoved)
    m.events.unsubscribe(moved.append, NodeMoved)  # twice is harmless
    m.events.unsubscribe(everything.append)
    assert not m.events.has_listeners()
    m.move_node(node.id, (2, 2))
    assert len(moved) == 1
    assert len(everything) == 2


def test_a_failing_listener_does_not_starve_the_others() -> None:
    bus = EventBus()
    seen: list[MelodyEvent] = []

    def boom(event: MelodyEvent) -> None:
        raise RuntimeError("listener broke")

    bus.subscribe(boom)
    bus.subscribe(seen.append)
    event = BreakpointChanged("n1", True)
    with pytest.raises(RuntimeError, match="listener broke"):
        bus.emit(event)
    assert seen == [event]
    bus.subscribe(boom, BreakpointChanged)
    with pytest.raises(ExceptionGroup) as info:
        bus.emit(event)
    assert len(info.value.exceptions) == 2
    assert str(info.value).startswith("2 listeners failed on BreakpointChanged")


def test_events_are_frozen() -> None:
    event = NodeRenamed("n1", "a", "b")
    with pytest.raises(AttributeError):
        event.new = "c"  # type: ignore[misc]
