from __future__ import annotations

import pytest

from symphony.registry import NodeTypeRegistry
from symphony.workflow import (
    CycleError,
    DependencyKind,
    Issue,
    Link,
    Melody,
    Node,
    Severity,
    check_link,
    find_cycles,
    topological_order,
    validate,
)


def messages(issues: list[Issue]) -> list[str]:
    return [i.message for i in issues]


def idea_chain() -> Melody:
    m = Melody()
    m.add_node(Node("enhance", "ai.prompt_enhancer", "Enhance prompt"))
    m.add_node(Node("features", "ai.feature_extractor", "Extract features"))
    m.add_node(Node("code", "ai.code_generator", "Generate code"))
    m.add_node(Node("docs", "ai.doc_writer", "Write docs"))
    m.connect("enhance", "enhanced", "features", "prompt")
    m.connect("features", "features", "code", "features")
    m.connect("code", "code", "docs", "code")
    return m


def test_a_good_melody_has_no_issues(registry: NodeTypeRegistry) -> None:
    m = idea_chain()
    assert validate(m, registry) == []
    assert topological_order(m) == ["enhance", "features", "code", "docs"]


@pytest.mark.parametrize("kind", list(DependencyKind))
def test_every_dependency_kind_validates(registry: NodeTypeRegistry, kind: DependencyKind) -> None:
    m = idea_chain()
    m.connect("features", "features", "docs", "features", kind=kind, condition="score >= 0.5")
    assert validate(m, registry) == []
    m.set_link_kind("l2", kind)  # feeds the required input code.features
    issues = validate(m, registry)
    if kind is DependencyKind.HARD:
        assert issues == []
    else:
        assert issues == [
            Issue(
                Severity.WARNING,
                "weak-input",
                f"node 'code' (Generate code): required input 'features' is fed only by {kind} "
                "links (l2); it may be empty when the node runs",
                ("code",),
                port="features",
            )
        ]


def test_type_mismatch_names_both_ports(registry: NodeTypeRegistry) -> None:
    m = Melody()
    m.add_node(Node("enhance", "ai.prompt_enhancer", "Enhance prompt"))
    m.add_node(Node("code", "ai.code_generator", "Generate code"))
    m.connect("enhance", "enhanced", "code", "features")
    issues = validate(m, registry)
    assert issues == [
        Issue(
            Severity.ERROR,
            "type-mismatch",
            "link 'l1': type mismatch: output enhance.enhanced (text) cannot feed input "
            "code.features (json)",
            ("enhance", "code"),
            "l1",
        )
    ]


def test_subtypes_fit(registry: NodeTypeRegistry) -> None:
    m = Melody()
    m.add_node(Node("code", "ai.code_generator", "Generate code"))
    m.add_node(Node("review", "ai.reviewer", "Review"))
    m.add_node(Node("gate", "op.quality_gate", "Gate"))
    m.add_node(Node("write", "files.write", "Write", {"path": "x.md"}))
    m.add_node(Node("f", "ai.feature_extractor", "F"))
    m.connect("f", "features", "code", "features")
    m.connect("code", "code", "review", "text")  # code → text
    m.connect("review", "findings", "gate", "value")  # markdown → any
    m.connect("review", "score", "gate", "score")  # json → json
    m.connect("gate", "passed", "write", "content")  # any → text
    m.add_node(Node("e", "ai.prompt_enhancer", "E"))
    m.connect("e", "enhanced", "f", "prompt")
    assert validate(m, registry) == []


def test_missing_required_input_names_the_port(registry: NodeTypeRegistry) -> None:
    m = Melody()
    m.add_node(Node("code", "ai.code_generator", "Generate code"))
    assert messages(validate(m, registry)) == [
        "node 'code' (Generate code): required input 'features' (json) is not connected"
    ]
    assert validate(m, registry)[0].port == "features"


def test_cycle_names_its_nodes_in_order(registry: NodeTypeRegistry) -> None:
    m = Melody()
    for node_id in ("a", "b", "c", "d"):
        m.add_node(Node(node_id, "op.template", node_id.upper()))
    m.connect("a", "text", "b", "input")
    m.connect("b", "text", "c", "input")
    m.connect("c", "text", "a", "input")
    m.connect("c", "text", "d", "input")
    issues = validate(m, registry)
    assert messages(issues) == ["cycle: 'a' (A) → 'b' (B) → 'c' (C) → 'a' (A)"]
    assert issues[0].node_ids == ("a", "b", "c")
    assert find_cycles(m) == [["a", "b", "c"]]
    with pytest.raises(CycleError) as info:
        topological_order(m)
    assert str(info.value) == "cycle: 'a' (A) → 'b' (B) → 'c' (C) → 'a' (A)"
    assert info.value.nodes == ("a", "b", "c")


def test_separate_cycles_are_each_named(registry: NodeTypeRegistry) -> None:
    m = Melody()
    for node_id in ("x1", "x2", "y1", "y2", "y3"):
        m.add_node(Node(node_id, "op.merge", node_id))
    m.connect("x1", "merged", "x2", "first")
    m.connect("x2", "merged", "x1", "first")
    m.connect("y3", "merged", "y1", "first")
    m.connect("y1", "merged", "y2", "first")
    m.connect("y2", "merged", "y3", "first")
    m.connect("y2", "merged", "y1", "second")  # a shorter cycle inside the same group
    assert find_cycles(m) == [["x1", "x2"], ["y1", "y2"]]
    cycles = [i for i in validate(m, registry) if i.code == "cycle"]
    assert messages(cycles) == ["cycle: 'x1' → 'x2' → 'x1'", "cycle: 'y1' → 'y2' → 'y1'"]


def test_unknown_type_and_ports(registry: NodeTypeRegistry) -> None:
    m = Melody()
    m.add_node(Node("a", "ai.nope", "Mystery"))
    m.add_node(Node("b", "op.template", "B"))
    m.add_node(Node("c", "op.split", "C"))
    m.connect("a", "out", "b", "input")  # unknown type: reported once, not per link
    m.connect("b", "txt", "c", "text")
    m.connect("b", "text", "c", "body")
    assert messages(validate(m, registry)) == [
        "node 'a' (Mystery): unknown node type 'ai.nope'",
        "link 'l2': node 'b' (B) has no output port 'txt' (outputs: text)",
        "link 'l3': node 'c' (C) has no input port 'body' (inputs: text)",
    ]


def test_config_problems(registry: NodeTypeRegistry) -> None:
    m = Melody()
    m.add_node(Node("w", "files.write", "Write", {"mode": "clobber"}))
    m.add_node(Node("s", "op.split", "s", {"max_parts": 1.5, "colour": "red"}))
    assert messages(validate(m, registry)) == [
        "node 'w' (Write): config 'path': is required",
        "node 'w' (Write): config 'mode': 'clobber' is not one of: overwrite, append, fail",
        "node 's': config 'colour': unknown field (known: separator, max_parts, strip, drop_empty)",
        "node 's': config 'max_parts': expected a whole number, got 1.5",
        "node 'w' (Write): required input 'content' (text) is not connected",
        "node 's': required input 'text' (text) is not connected",
    ]


def test_a_template_that_reads_an_unconnected_port_is_caught_before_a_run(
    registry: NodeTypeRegistry,
) -> None:
    m = Melody()
    m.add_node(Node("t", "op.template", "Greet"))  # the default template is "{input}"
    m.add_node(Node("v", "op.template", "Title", {"template": "# {title} by {input}"}))
    m.add_node(Node("b", "op.template", "Broken", {"template": "Hi {name"}))
    m.add_node(Node("f", "op.template", "Fixed text", {"template": "hello {{world}}"}))
    assert messages(validate(m, registry)) == [
        "node 't' (Greet): config 'template': placeholder {input} at column 1 reads the 'input' "
        "port, which is not connected",
        "node 'v' (Title): config 'template': placeholder {title} at column 3 reads 'title' from "
        "the 'values' port, which is not connected",
        "node 'v' (Title): config 'template': placeholder {input} at column 14 reads the 'input' "
        "port, which is not connected",
        "node 'b' (Broken): config 'template': placeholder opened at column 4 is never closed",
    ]
    m.add_node(Node("src", "op.json_extract", "Source", {"path": "$"}))
    m.add_node(Node("txt", "op.template", "Text", {"template": "x"}))
    m.connect("txt", "text", "t", "input")
    m.connect("src", "value", "v", "values")  # {input} may then be a key of the values
    assert [i.node_ids for i in validate(m, registry) if i.code == "config"] == [("b",)]


def test_one_link_per_single_input(registry: NodeTypeRegistry) -> None:
    m = Melody()
    m.add_node(Node("a", "op.template", "A", {"template": "a"}))
    m.add_node(Node("b", "op.template", "B", {"template": "b"}))
    m.add_node(Node("c", "op.split", "C"))
    m.add_node(Node("merge", "op.merge", "Merge"))
    m.connect("a", "text", "c", "text")
    m.connect("b", "text", "c", "text")
    m.connect("a", "text", "merge", "first")
    m.connect("b", "text", "merge", "second")
    m.connect("a", "text", "merge", "more")
    m.connect("b", "text", "merge", "more")  # 'more' accepts many
    assert messages(validate(m, registry)) == [
        "node 'c' (C): input 'text' takes one link but has 2: l1, l2"
    ]


def test_conditions_are_checked(registry: NodeTypeRegistry) -> None:
    m = idea_chain()
    m.set_link_condition("l1", "score >")
    m.set_link_condition("l2", "quality > 0.5")
    m.set_link_condition("l3", "status == 'succeeded' and length > 10")
    assert messages(validate(m, registry)) == [
        "link 'l1': condition: expected a value but found the end of the expression at column 8 "
        "in 'score >'",
        "link 'l2': condition 'quality > 0.5' uses unknown name 'quality' (known: length, score, "
        "status, text, value)",
    ]


def test_check_link_for_drag_feedback(registry: NodeTypeRegistry) -> None:
    m = idea_chain()
    m.add_node(Node("split", "op.split", "Split"))
    assert check_link(m, registry, "enhance", "enhanced", "split", "text") is None
    assert check_link(m, registry, "code", "code", "code", "features") == (
        "node 'code' cannot feed itself"
    )
    assert check_link(m, registry, "zz", "x", "code", "features") == "no node 'zz'"
    assert check_link(m, registry, "enhance", "enhanced", "code", "features") == (
        "type mismatch: output enhance.enhanced (text) cannot feed input code.features (json)"
    )
    assert check_link(m, registry, "features", "features", "code", "features") == (
        "features.features is already linked to code.features"
    )
    m.add_node(Node("f2", "ai.feature_extractor", "F2"))
    assert check_link(m, registry, "f2", "features", "code", "features") == (
        "input code.features takes one link and already has 'l2'"
    )
    assert check_link(m, registry, "docs", "docs", "enhance", "prompt") == (
        "linking docs.docs to enhance.prompt would close a cycle ('enhance' already leads to "
        "'docs')"
    )
    assert check_link(m, registry, "split", "parts", "docs", "nope") == (
        "node 'docs' (Write docs) has no input port 'nope' (inputs: code, features)"
    )


def test_topological_order_keeps_insertion_order_for_ties() -> None:
    m = Melody()
    for node_id in ("c", "a", "b", "d"):
        m.add_node(Node(node_id, "op.template", node_id))
    m.add_link(Link("l1", "a", "text", "d", "input"))
    m.add_link(Link("l2", "c", "text", "d", "values"))
    assert topological_order(m) == ["c", "a", "b", "d"]
