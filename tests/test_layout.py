"""The layered layout: left to right, no overlaps, few crossings."""

from __future__ import annotations

import itertools

from dagstream_app import layout


def crossings(lay: layout.Layout, edges: list[tuple[str, str]]) -> int:
    count = 0
    for (a, b), (c, d) in itertools.combinations(edges, 2):
        if len({a, b, c, d}) < 4 or lay.positions[a][0] != lay.positions[c][0]:
            continue
        if lay.positions[b][0] != lay.positions[d][0]:
            continue
        above_src = lay.positions[a][1] < lay.positions[c][1]
        above_dst = lay.positions[b][1] < lay.positions[d][1]
        count += above_src != above_dst
    return count


def test_layers_go_left_to_right() -> None:
    lay = layout.compute(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "d"), ("d", "c")])
    xs = {n: lay.positions[n][0] for n in "abcd"}
    assert xs["a"] < xs["b"] == xs["d"] < xs["c"]


def test_no_two_nodes_overlap() -> None:
    ids = [f"n{i}" for i in range(40)]
    edges = [(f"n{i}", f"n{i + 1 + i % 3}") for i in range(36)]
    lay = layout.compute(ids, edges)
    boxes = list(lay.positions.values())
    assert len(set(boxes)) == len(boxes)
    for x, y in boxes:
        assert x >= 0 and x + layout.NODE_W <= lay.width
        assert y >= 0 and y + layout.NODE_H <= lay.height


def test_barycenter_untangles_crossed_input_order() -> None:
    # Listed so that the naive order crosses every edge pair.
    ids = ["a1", "a2", "a3", "b3", "b2", "b1"]
    edges = [("a1", "b1"), ("a2", "b2"), ("a3", "b3")]
    assert crossings(layout.compute(ids, edges), edges) == 0


def test_edge_path_joins_right_side_to_left_side() -> None:
    lay = layout.compute(["a", "b"], [("a", "b")])
    ax, ay = lay.positions["a"]
    bx, by = lay.positions["b"]
    path = lay.edge_path("a", "b")
    assert path.startswith(f"M{ax + layout.NODE_W} {ay + layout.NODE_H // 2}")
    assert path.endswith(f"{bx} {by + layout.NODE_H // 2}")


def test_empty_and_isolated_nodes() -> None:
    assert layout.compute([], []).positions == {}
    lay = layout.compute(["x", "y"], [])
    assert lay.positions["x"][0] == lay.positions["y"][0]


def test_long_edges_bend_around_the_boxes_between() -> None:
    ids = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")]
    lay = layout.compute(ids, edges)
    bends = lay.bends[("a", "d")]
    assert len(bends) == 2  # one lane in each of b's and c's layers
    for (x, y), middle in zip(bends, ("b", "c"), strict=True):
        mx, my = lay.positions[middle]
        assert x == mx
        assert not my <= y <= my + layout.NODE_H  # the lane is beside the box
    assert lay.edge_path("a", "d").count("C") == 3
    assert ("a", "b") not in lay.bends
