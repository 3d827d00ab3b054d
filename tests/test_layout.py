"""The layered layout: left to right, no overlaps, few crossings; labels that fit their box."""

from __future__ import annotations

import itertools

from dagstream_app import layout
from dagstream_app.dagviews import NodeView
from dagstream_app.render.graph import LABEL_ROOM, box_height, label_lines, node_svg, text_width


def view(node_id: str, label: str, status: str) -> NodeView:
    return NodeView(node_id, label, status, None, {}, None, None)  # type: ignore[arg-type]


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


def test_taller_boxes_take_their_height_and_edges_meet_their_middle() -> None:
    lay = layout.compute(["a", "b", "c"], [("a", "b"), ("a", "c")], {"b": 69})
    (_, by), (_, cy) = lay.positions["b"], lay.positions["c"]
    top, bottom = sorted([("b", by, 69), ("c", cy, layout.NODE_H)], key=lambda t: t[1])
    assert top[1] + top[2] + layout.ROW_GAP == bottom[1]  # stacked, no overlap
    assert lay.edge_path("a", "b").endswith(f" {by + 69 // 2}")
    assert lay.height == 69 + layout.NODE_H + layout.ROW_GAP + 2 * layout.PAD


def test_labels_wrap_onto_two_lines_that_fit_the_box() -> None:
    assert label_lines("Gather sources") == ["Gather sources"]
    assert label_lines("Continental Grid Institute") == ["Continental Grid", "Institute"]
    assert label_lines("  Human   review ") == ["Human review"]
    # One word too long for a line is cut where it must; past two lines, "…".
    long = label_lines("supercalifragilisticexpialidocious_task_name")
    assert len(long) == 2 and long[1].endswith("…") and "".join(long)[:-1] in "".join(long)
    assert len(label_lines("word " * 40)) == 2 and label_lines("word " * 40)[1].endswith("…")
    for label in ("WWWWWWWWWWWWWWWWWWWWWWWW", "Refrigerant Policy Review", "x" * 80):
        assert all(text_width(line) <= LABEL_ROOM for line in label_lines(label)), label
    assert box_height(1) == layout.NODE_H and box_height(2) > layout.NODE_H


def test_a_wrapped_label_draws_one_tspan_a_line_in_a_taller_box() -> None:
    svg = node_svg("d1", view("read-grid", "Continental Grid Institute", "running"))
    assert (
        '<text class="node-label" x="44" y="22"><tspan x="44" dy="0">Continental Grid</tspan>'
        in svg
    )
    assert f'height="{box_height(2)}"' in svg
    assert 'aria-label="Continental Grid Institute: Running"' in svg
    one_line = node_svg("d1", view("publish", "Publish", "pending"))
    assert '<text class="node-label" x="44" y="22">Publish</text>' in one_line
