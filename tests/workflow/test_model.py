from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from symphony.workflow import (
    DependencyKind,
    Importance,
    Link,
    Melody,
    MelodyError,
    Node,
    NodePolicy,
)


def check_indexes(m: Melody) -> None:
    """The per-node link indexes agree with the links."""
    for node_id in m.nodes:
        assert {link.id for link in m.incoming(node_id)} == {
            link.id for link in m.links.values() if link.target_node == node_id
        }
        assert {link.id for link in m.outgoing(node_id)} == {
            link.id for link in m.links.values() if link.source_node == node_id
        }
    for link in m.links.values():
        assert m.find_link(*link.endpoints) == link


def chain(m: Melody, n: int) -> list[Node]:
    nodes = [m.create_node("op.template", f"T{i}", position=(i * 100, 0)) for i in range(n)]
    for a, b in zip(nodes, nodes[1:], strict=False):
        m.connect(a.id, "text", b.id, "input")
    return nodes


# ------------------------------------------------------------------------- basic mutations


def test_create_and_read() -> None:
    m = Melody("M", "d", {"k": [1]})
    a = m.create_node("op.template", "A", config={"template": "x"}, position=(1, 2))
    b = m.create_node("op.split")
    assert (a.id, b.id) == ("n1", "n2")
    assert b.name == "op.split"
    assert m.node("n1") == a
    assert a.position == (1.0, 2.0)
    assert a.policy == NodePolicy()
    link = m.connect("n1", "text", "n2", "text")
    assert link == Link("l1", "n1", "text", "n2", "text", DependencyKind.HARD, None)
    assert m.outgoing("n1") == [link]
    assert m.incoming("n2") == [link]
    assert m.links_of("n2") == [link]
    assert m.incoming("nope") == []
    assert len(m) == 2
    assert repr(m) == "<Melody 'M': 2 nodes, 1 links>"
    assert m.metadata == {"k": [1]}
    check_indexes(m)


def test_config_is_copied_in() -> None:
    m = Melody()
    config: dict[str, Any] = {"template": ["a"]}
    node = m.create_node("op.template", config=config)
    config["template"].append("b")
    assert m.node(node.id).config == {"template": ["a"]}
    m.set_node_config(node.id, config)
    config["template"].append("c")
    assert m.node(node.id).config == {"template": ["a", "b"]}


def test_new_ids_skip_used_ones() -> None:
    m = Melody()
    m.add_node(Node("n1", "op.split", "x"))
    m.add_node(Node("n2", "op.split", "x"))
    assert m.create_node("op.split").id == "n3"
    m.remove_node("n1")
    assert m.new_node_id() == "n4"  # ids are never reused while the counter moves on


def test_remove_node_takes_its_links_and_restore_puts_them_back() -> None:
    m = Melody()
    a, b, c = chain(m, 3)
    before = m.snapshot()
    removed = m.remove_node(b.id)
    assert removed.node == b
    assert [link.id for link in removed.links] == ["l1", "l2"]
    assert list(m.links) == []
    check_indexes(m)
    m.restore_node(removed)
    assert m.snapshot() == before
    check_indexes(m)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda m: m.node("zz"), "no node 'zz'"),
        (lambda m: m.link("zz"), "no link 'zz'"),
        (lambda m: m.add_node(Node("n1", "op.split", "x")), "node id 'n1' is already used"),
        (
            lambda m: m.add_node(Node("a b", "op.split", "x")),
            "node id 'a b' is malformed (1-64 letters, digits, '_' or '-')",
        ),
        (lambda m: m.move_node("zz", (0, 0)), "no node 'zz'"),
        (
            lambda m: m.connect("n1", "text", "n1", "input"),
            "link 'l2': node 'n1' cannot feed itself",
        ),
        (
            lambda m: m.connect("n1", "text", "zz", "input"),
            "link 'l2': target node 'zz' does not exist",
        ),
        (
            lambda m: m.connect("n1", "text", "n2", "input"),
            "link 'l2': n1.text is already linked to n2.input by link 'l1'",
        ),
        (
            lambda m: m.add_link(Link("l1", "n2", "text", "n1", "input")),
            "link id 'l1' is already used",
        ),
        (lambda m: m.connect("n1", "", "n2", "x"), "link 'l2': both ports must be named"),
        (lambda m: m.move_node("n1", (float("nan"), 0)), "a position must be finite, got (nan, 0)"),
        (lambda m: m.move_nodes({"n1": (0, 0), "zz": (1, 1)}), "no node 'zz'"),
        (lambda m: m.remove_link("l9"), "no link 'l9'"),
        (
            lambda m: m.add_node(Node(["x"], "a.b", "n")),
            "node id ['x'] is malformed (1-64 letters, digits, '_' or '-')",
        ),  # type: ignore[arg-type]
        (lambda m: m.create_node(""), "a node type id is a non-empty text, got ''"),
        (lambda m: m.create_node("a.b", 3), "a node name is a text, got 3"),  # type: ignore[arg-type]
        (lambda m: m.rename_node("n1", None), "a node name is a text, got None"),  # type: ignore[arg-type]
        (lambda m: m.set_node_policy("n1", {}), "a node policy is a NodePolicy, got {}"),  # type: ignore[arg-type]
        (lambda m: m.set_link_condition("l1", 1), "link 'l1': a condition is a text or None"),  # type: ignore[arg-type]
        (lambda m: m.connect("n1", 1, "n2", "x"), "link 'l2': both ports must be named"),  # type: ignore[arg-type]
        (lambda m: m.set_link_kind("l9", DependencyKind.SOFT), "no link 'l9'"),
    ],
)
def test_integrity_errors(action: Callable[[Melody], object], message: str) -> None:
    m = Melody()
    chain(m, 2)
    before = m.snapshot()
    with pytest.raises(MelodyError) as info:
        action(m)
    assert str(info.value) == message
    assert m.snapshot() == before  # a refused edit changes nothing


def test_move_nodes_is_all_or_nothing() -> None:
    m = Melody()
    chain(m, 2)
    with pytest.raises(MelodyError):
        m.move_nodes({"n1": (5, 5), "zz": (1, 1)})
    assert m.node("n1").position == (0.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_retries": -1}, "max_retries must be a whole number from 0 to 100, got -1"),
        ({"max_retries": 1.5}, "max_retries must be a whole number from 0 to 100, got 1.5"),
        ({"timeout_s": 0}, "timeout_s must be a positive number of seconds, got 0"),
        ({"timeout_s": float("inf")}, "timeout_s must be a positive number of seconds, got inf"),
        ({"fallback_models": ("",)}, "fallback_models must be non-empty model ids, got ''"),
        # a text is not a list of one model: tuple("abc") made it the models 'a', 'b', 'c'
        ({"fallback_models": "abc"}, "fallback_models is a list of model ids, got the text 'abc'"),
        # a MelodyError naming the value and the choices, not Importance's bare ValueError
        (
            {"importance": "urgent"},
            "importance must be one of low, normal, high, critical, got 'urgent'",
        ),
    ],
)
def test_policy_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MelodyError) as info:
        NodePolicy(**kwargs)
    assert str(info.value) == message


def test_policy_normalises() -> None:
    p = NodePolicy(fallback_models=["a", "b"], importance="high")  # type: ignore[arg-type]
    assert p.fallback_models == ("a", "b")
    assert p.importance is Importance.HIGH


@pytest.mark.parametrize("kind", list(DependencyKind))
def test_every_dependency_kind_is_accepted(kind: DependencyKind) -> None:
    m = Melody()
    chain(m, 2)
    m.remove_link("l1")
    link = m.connect("n1", "text", "n2", "input", kind=kind)
    assert link.kind is kind
    assert m.set_link_kind(link.id, DependencyKind.HARD) is kind
    assert m.set_link_kind(link.id, kind.value) is DependencyKind.HARD  # type: ignore[arg-type]
    assert m.link(link.id).kind is kind


def test_link_condition_set_and_cleared() -> None:
    m = Melody()
    chain(m, 2)
    assert m.set_link_condition("l1", "score >= 0.8") is None
    assert m.link("l1").condition == "score >= 0.8"
    assert m.set_link_condition("l1", "") == "score >= 0.8"
    assert m.link("l1").condition is None


# ------------------------------------------------------------------------- undo-ability


@dataclass
class Command:
    """What a QUndoCommand in document/ does: redo and undo through model methods only."""

    redo: Callable[[], object]
    undo: Callable[[], object]


def random_command(m: Melody, rng: random.Random) -> Command:  # noqa: C901 - one branch per edit
    node_ids = list(m.nodes)
    link_ids = list(m.links)
    choice = rng.randrange(14)
    if choice == 0 or len(node_ids) < 3:
        node = Node(
            m.new_node_id(),
            rng.choice(["op.template", "op.split", "ai.summarizer"]),
            f"N{rng.randrange(100)}",
            {"template": "{input}"},
            (rng.uniform(-500, 500), rng.uniform(-500, 500)),
        )
        return Command(lambda: m.add_node(node), lambda: m.remove_node(node.id))
    nid = rng.choice(node_ids)
    if choice == 1:
        removed: list[Any] = []
        return Command(
            lambda: removed.append(m.remove_node(nid)), lambda: m.restore_node(removed.pop())
        )
    if choice == 2:
        pos = (rng.uniform(0, 900), rng.uniform(0, 900))
        old = m.node(nid).position
        return Command(lambda: m.move_node(nid, pos), lambda: m.move_node(nid, old))
    if choice == 3:
        moved = {n: (rng.uniform(0, 9), 1.5) for n in rng.sample(node_ids, 2)}
        olds = {n: m.node(n).position for n in moved}
        return Command(lambda: m.move_nodes(moved), lambda: m.move_nodes(olds))
    if choice == 4:
        name, old_name = f"renamed {rng.random()}", m.node(nid).name
        return Command(lambda: m.rename_node(nid, name), lambda: m.rename_node(nid, old_name))
    if choice == 5:
        config, old_config = {"template": str(rng.random()), "extra": [1]}, m.node(nid).config
        return Command(
            lambda: m.set_node_config(nid, config),
            lambda: m.set_node_config(nid, old_config),
        )
    if choice == 6:
        policy = NodePolicy(
            max_retries=rng.randrange(5),
            timeout_s=rng.choice([None, 30.0]),
            fallback_models=("local-b",),
            skippable=rng.random() < 0.5,
            importance=rng.choice(list(Importance)),
        )
        old_policy = m.node(nid).policy
        return Command(
            lambda: m.set_node_policy(nid, policy),
            lambda: m.set_node_policy(nid, old_policy),
        )
    if choice == 7:
        old_bp = m.node(nid).breakpoint
        return Command(
            lambda: m.set_breakpoint(nid, not old_bp),
            lambda: m.set_breakpoint(nid, old_bp),
        )
    if choice in (8, 9):
        a, b = rng.sample(node_ids, 2)
        port = f"p{rng.randrange(3)}"
        if m.find_link(a, "text", b, port) is not None:
            return Command(lambda: None, lambda: None)
        link = Link(m.new_link_id(), a, "text", b, port, rng.choice(list(DependencyKind)))
        return Command(lambda: m.add_link(link), lambda: m.remove_link(link.id))
    if not link_ids:
        return Command(lambda: None, lambda: None)
    lid = rng.choice(link_ids)
    if choice == 10:
        gone = m.link(lid)
        return Command(lambda: m.remove_link(lid), lambda: m.add_link(gone))
    if choice == 11:
        kind, old_kind = rng.choice(list(DependencyKind)), m.link(lid).kind
        return Command(
            lambda: m.set_link_kind(lid, kind),
            lambda: m.set_link_kind(lid, old_kind),
        )
    if choice == 12:
        cond, old_cond = (
            rng.choice([None, "score > 0.5", "status == 'failed'"]),
            m.link(lid).condition,
        )
        return Command(
            lambda: m.set_link_condition(lid, cond),
            lambda: m.set_link_condition(lid, old_cond),
        )
    field = rng.choice(["name", "description", "metadata"])
    if field == "name":
        new_name, old_melody_name = f"M{rng.random()}", m.name
        return Command(lambda: m.set_name(new_name), lambda: m.set_name(old_melody_name))
    if field == "description":
        new_d, old_d = "desc", m.description
        return Command(lambda: m.set_description(new_d), lambda: m.set_description(old_d))
    new_meta, old_meta = {"tag": rng.random()}, dict(m.metadata)
    return Command(lambda: m.set_metadata(new_meta), lambda: m.set_metadata(old_meta))


@pytest.mark.parametrize("seed", range(25))
def test_n_edits_then_undo_all_restores_the_snapshot(seed: int) -> None:
    rng = random.Random(seed)
    m = Melody("Start", "before", {"a": 1})
    chain(m, 4)
    start = m.snapshot()
    done: list[Command] = []
    for _ in range(60):
        command = random_command(m, rng)
        command.redo()
        done.append(command)
        check_indexes(m)
    end = m.snapshot()
    for command in reversed(done):
        command.undo()
    assert m.snapshot() == start
    check_indexes(m)
    for command in done:
        command.redo()
    assert m.snapshot() == end
    check_indexes(m)


EDITS: dict[str, Callable[[Melody], Callable[[], object]]] = {
    # each edit applies one mutation and returns its inverse, built from the returned value
    "create_node": lambda m: (lambda n: lambda: m.remove_node(n.id))(m.create_node("op.split")),
    "add_node": lambda m: (lambda n: lambda: m.remove_node(n.id))(
        m.add_node(Node("x", "op.split", "X", {"a": [1]}, (3, 4), NodePolicy(1), True))
    ),
    "remove_node": lambda m: (lambda r: lambda: m.restore_node(r))(m.remove_node("n2")),
    "move_node": lambda m: (lambda old: lambda: m.move_node("n1", old))(m.move_node("n1", (9, 9))),
    "move_nodes": lambda m: (lambda old: lambda: m.move_nodes(old))(
        m.move_nodes({"n1": (1, 1), "n3": (2, 2)})
    ),
    "rename_node": lambda m: (lambda old: lambda: m.rename_node("n1", old))(
        m.rename_node("n1", "new")
    ),
    "set_node_config": lambda m: (lambda old: lambda: m.set_node_config("n1", old))(
        m.set_node_config("n1", {"template": "{input}!"})
    ),
    "set_node_policy": lambda m: (lambda old: lambda: m.set_node_policy("n1", old))(
        m.set_node_policy("n1", NodePolicy(5, 9.0, ("b",), True, Importance.LOW))
    ),
    "set_breakpoint": lambda m: (lambda old: lambda: m.set_breakpoint("n1", old))(
        m.set_breakpoint("n1", True)
    ),
    "connect": lambda m: (lambda link: lambda: m.remove_link(link.id))(
        m.connect("n1", "text", "n3", "values", kind=DependencyKind.OPTIONAL)
    ),
    "add_link": lambda m: (lambda link: lambda: m.remove_link(link.id))(
        m.add_link(Link("lx", "n3", "text", "n1", "input", DependencyKind.PARALLEL, "score > 1"))
    ),
    "remove_link": lambda m: (lambda link: lambda: m.add_link(link))(m.remove_link("l1")),
    "set_link_kind": lambda m: (lambda old: lambda: m.set_link_kind("l1", old))(
        m.set_link_kind("l1", DependencyKind.SOFT)
    ),
    "set_link_condition": lambda m: (lambda old: lambda: m.set_link_condition("l1", old))(
        m.set_link_condition("l1", "status == 'failed'")
    ),
    "set_name": lambda m: (lambda old: lambda: m.set_name(old))(m.set_name("Renamed")),
    "set_description": lambda m: (lambda old: lambda: m.set_description(old))(
        m.set_description("New")
    ),
    "set_metadata": lambda m: (lambda old: lambda: m.set_metadata(old))(
        m.set_metadata({"tags": ["x"]})
    ),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_mutation_is_exactly_inverted_by_its_return_value(edit: str) -> None:
    m = Melody("M", "d", {"a": 1})
    chain(m, 3)
    before = m.snapshot()
    undo = EDITS[edit](m)
    assert m.snapshot() != before
    undo()
    assert m.snapshot() == before
    check_indexes(m)


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_json_data_at_the_depth_limit_is_kept() -> None:
    m = Melody()
    node = m.create_node("op.split")
    m.set_node_config(node.id, {"a": _nested(63)})
    assert m.node(node.id).config == {"a": _nested(63)}


def test_ids_and_texts_that_could_not_be_saved_are_refused() -> None:
    m = Melody()
    with pytest.raises(MelodyError, match="malformed"):
        m.add_node(Node("read\n", "a.b", "n"))  # "$" matched before the final line break
    node = m.create_node("a.b")
    with pytest.raises(MelodyError, match="^node 'n1' name: text holds the lone surrogate"):
        m.rename_node(node.id, "x\ud83d")
    with pytest.raises(MelodyError, match="^melody name: text holds the lone surrogate"):
        m.set_name("\udc00")
    assert m.node(node.id).name == "a.b"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"a": float("nan")}, "config.a: numbers must be finite, got nan"),
        ({1: 2}, "config: keys must be texts, got 1"),
        ({"a": {1, 2}}, "config.a: set is not JSON data"),
        ({"a": [1, {"b": float("inf")}]}, "config.a[1].b: numbers must be finite, got inf"),
        # what UTF-8 cannot encode would make every save fail
        (
            {"a": ["\ud83d"]},
            "config.a[0]: text holds the lone surrogate '\\ud83d': half of a character, "
            "which a UTF-8 file cannot store",
        ),
        (
            {"k\udc00": 1},
            "config: a key holds the lone surrogate '\\udc00': half of a character, "
            "which a UTF-8 file cannot store",
        ),
        # copying, saving and reading are recursive: a bound keeps them off the stack's limit
        (
            {"a": _nested(64)},  # the config object, then 64 lists in one another
            "config.a" + "[0]" * 63 + ": lists and objects nest more than 64 levels deep",
        ),
    ],
)
def test_config_must_be_json_data(config: dict[Any, Any], message: str) -> None:
    m = Melody()
    node = m.create_node("op.split")
    with pytest.raises(MelodyError) as info:
        m.set_node_config(node.id, config)
    assert str(info.value) == message
    assert m.node(node.id).config == {}
    with pytest.raises(MelodyError, match="^metadata: keys must be texts"):
        m.set_metadata({2: 1})


def test_tuples_are_stored_as_lists() -> None:
    m = Melody()
    node = m.create_node("op.split", config={"a": (1, 2)})
    assert m.node(node.id).config == {"a": [1, 2]}
