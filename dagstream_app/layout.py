"""Left-to-right layered layout of a DAG, computed with networkx.

Layers are networkx's topological generations (longest path from a source).
An edge that spans several layers gets a virtual point in each layer it
crosses, so it has room of its own and bends around the boxes instead of
running through them. Within a layer, nodes and virtual points are ordered by
a few barycenter sweeps (down, then up): the Sugiyama heuristic for few edge
crossings. Coordinates are SVG user units; boxes are ``NODE_W`` wide and
``NODE_H`` high unless a node's height is given (a label on two lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

# Narrow boxes and columns, so that a run of a dozen nodes fits a laptop's screen at a
# size where labels are readable (long labels wrap onto a second line: render/graph.py).
NODE_W = 184
NODE_H = 52
LANE_H = 14  # the height a passing edge takes in a layer
COL_GAP = 40
ROW_GAP = 18
PAD = 20
SWEEPS = 4

Point = tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """Top-left corner of every node's box, the bends of long edges, the drawing's size."""

    positions: dict[str, Point]
    width: int
    height: int
    # (src, dst) -> the centre-line y and left x of each layer a long edge passes.
    bends: dict[tuple[str, str], list[Point]] = field(default_factory=dict)
    # The boxes that are not NODE_H high.
    heights: Mapping[str, int] = field(default_factory=dict)

    def edge_path(self, src: str, dst: str) -> str:
        """An SVG path from the right side of ``src`` to the left side of ``dst``."""
        x1, y1 = self.positions[src]
        x2, y2 = self.positions[dst]
        ax, ay = x1 + NODE_W, y1 + self.heights.get(src, NODE_H) // 2
        parts = [f"M{ax} {ay}"]
        for bx, by in self.bends.get((src, dst), ()):
            parts.append(_curve(ax, ay, bx, by))
            ax, ay = bx + NODE_W, by
            parts.append(f"L{ax} {ay}")
        parts.append(_curve(ax, ay, x2, y2 + self.heights.get(dst, NODE_H) // 2))
        return "".join(parts)


def _curve(ax: int, ay: int, bx: int, by: int) -> str:
    bend = max(24, (bx - ax) // 2)
    return f"C{ax + bend} {ay} {bx - bend} {by} {bx} {by}"


def _order(
    layers: list[list[str]], parents: dict[str, list[str]], children: dict[str, list[str]]
) -> None:
    """Barycenter sweeps, in place."""
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        neighbours = parents if down else children
        sequence = layers[1:] if down else layers[-2::-1]
        index = {node: i for layer in layers for i, node in enumerate(layer)}
        for layer in sequence:
            keys: dict[str, float] = {}
            for pos, node in enumerate(layer):
                near = neighbours.get(node, ())
                # Nodes without neighbours on that side keep their place.
                keys[node] = sum(index[n] for n in near) / len(near) if near else float(pos)
            layer.sort(key=keys.__getitem__)
            index.update({node: i for i, node in enumerate(layer)})


def compute(
    node_ids: Sequence[str],
    edges: Iterable[tuple[str, str]],
    heights: Mapping[str, int] | None = None,
) -> Layout:
    """Lay ``node_ids`` out in layers, left to right, each layer centred vertically.

    ``heights`` gives the boxes that are not ``NODE_H`` high.
    """
    tall = dict(heights or {})
    edge_list = list(edges)
    if not node_ids:
        return Layout({}, NODE_W + 2 * PAD, NODE_H + 2 * PAD)
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(node_ids)
    graph.add_edges_from(edge_list)
    order = {node: i for i, node in enumerate(node_ids)}
    layers = [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(graph)]
    rank = {node: r for r, layer in enumerate(layers) for node in layer}

    parents: dict[str, list[str]] = {node: [] for node in node_ids}
    children: dict[str, list[str]] = {node: [] for node in node_ids}
    chains: dict[tuple[str, str], list[str]] = {}
    for src, dst in edge_list:
        prev = src
        chain = []
        for r in range(rank[src] + 1, rank[dst]):
            # Virtual ids cannot clash with node ids: those never hold a NUL.
            virtual = f"\x00{src}\x00{dst}\x00{r}"
            layers[r].append(virtual)
            parents[virtual], children[virtual] = [prev], []
            children[prev].append(virtual)
            chain.append(virtual)
            prev = virtual
        children[prev].append(dst)
        parents[dst].append(prev)
        if chain:
            chains[(src, dst)] = chain
    _order(layers, parents, children)

    def size(item: str) -> int:
        return LANE_H if item.startswith("\x00") else tall.get(item, NODE_H)

    spans = [sum(size(i) + ROW_GAP for i in layer) - ROW_GAP for layer in layers]
    height = max(max(spans), NODE_H) + 2 * PAD
    positions: dict[str, Point] = {}
    lanes: dict[str, Point] = {}
    for col, layer in enumerate(layers):
        x = PAD + col * (NODE_W + COL_GAP)
        y = (height - spans[col]) // 2
        for item in layer:
            if item.startswith("\x00"):
                lanes[item] = (x, y + LANE_H // 2)
            else:
                positions[item] = (x, y)
            y += size(item) + ROW_GAP
    width = max(len(layers) * (NODE_W + COL_GAP) - COL_GAP, NODE_W) + 2 * PAD
    bends = {edge: [lanes[v] for v in chain] for edge, chain in chains.items()}
    return Layout(positions, width, height, bends, tall)
