"""graph: structure checks before anything is written."""

from __future__ import annotations

import re

import pytest

from dagstream_app import graph
from dagstream_app.errors import InvalidDelta


def test_find_cycle() -> None:
    assert graph.find_cycle([("a", "b"), ("b", "c")]) is None
    assert graph.find_cycle([("a", "b"), ("b", "c"), ("c", "b")]) == ["b", "c", "b"]
    assert graph.find_cycle([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]) is None


def test_check_structure_names_the_problem() -> None:
    graph.check_structure(["a", "b"], [("a", "b")])
    for nodes, edges, message in (
        (["a", "a", "b", "b"], [], "Duplicate node id(s): a, b."),
        (["a"], [("a", "ghost")], "names unknown node 'ghost'"),
        (["a", "b"], [("a", "b"), ("a", "b")], "Duplicate edge."),
        (["a", "b"], [("a", "b"), ("b", "a")], "cycle: a -> b -> a"),
    ):
        with pytest.raises(InvalidDelta, match=message.replace("(", r"\(").replace(")", r"\)")):
            graph.check_structure(nodes, edges)


def test_node_and_edge_forms() -> None:
    specs = graph.node_specs(["a", {"id": "b", "label": "B"}])
    assert [(s.id, s.label) for s in specs] == [("a", ""), ("b", "B")]
    assert graph.edge_pairs([("a", "b"), {"from": "b", "to": "c"}]) == [("a", "b"), ("b", "c")]
    with pytest.raises(InvalidDelta, match="Bad node"):
        graph.node_specs([{"id": ""}])
    with pytest.raises(InvalidDelta, match="Bad edge"):
        graph.edge_pairs([("a", "b", "c")])
    with pytest.raises(InvalidDelta, match="both ends"):
        graph.edge_pairs([("a", "")])


def test_node_and_edge_refusals_name_the_one_at_fault() -> None:
    # Nodes are converted all at once; a refusal still names the node, not a list index.
    with pytest.raises(InvalidDelta, match=r"^Bad node \{'id': 'b', 'colour': 'red'\}: "):
        graph.node_specs(["a", {"id": "b", "colour": "red"}, "c"])
    with pytest.raises(InvalidDelta, match=r"^Bad node 7: "):
        graph.node_specs(["a", 7])
    assert graph.node_specs(iter(["x", "y"]))[1].id == "y"  # any iterable, once
    assert graph.edge_pairs([["a", "b"]]) == [("a", "b")]
    for edge in ([1, "b"], ("a", None), {"from": "a", "to": ""}, {"from": "a"}, "ab"):
        with pytest.raises(InvalidDelta, match="^" + re.escape(f"Bad edge {edge!r}: ")):
            graph.edge_pairs([edge])
