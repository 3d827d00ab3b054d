"""Left-to-right layered layout of a DAG, computed with networkx.

Layers are networkx's topological generations (longest path from a source);
within a layer, nodes are ordered by a few barycenter sweeps (down, then up),
the classic Sugiyama heuristic for few edge crossings. Coordinates are in SVG
user units; the caller draws boxes of ``NODE_W`` x ``NODE_H`` at each position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx

NODE_W = 196
NODE_H = 52
COL_GAP = 60
ROW_GAP = 18
PAD = 20
SWEEPS = 4


@dataclass(frozen=True)
class Layout:
    """Top-left corner of every node's box, and the drawing's size."""

    positions: dict[str, tuple[int, int]]
    width: int
    height: int

    def edge_path(self, src: str, dst: str) -> str:
        """An SVG path from the right side of ``src`` to the left side of ``dst``."""
        x1, y1 = self.positions[src]
        x2, y2 = self.positions[dst]
        ax, ay = x1 + NODE_W, y1 + NODE_H // 2
        bx, by = x2, y2 + NODE_H // 2
        bend = max(24, (bx - ax) // 2)
        return f"M{ax} {ay}C{ax + bend} {ay} {bx - bend} {by} {bx} {by}"


def _layers(node_ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(node_ids)
    graph.add_edges_from(edges)
    order = {node: i for i, node in enumerate(node_ids)}
    layers = [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(graph)]
    parents = {node: list(graph.predecessors(node)) for node in node_ids}
    children = {node: list(graph.successors(node)) for node in node_ids}
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        neighbours = parents if down else children
        sequence = layers[1:] if down else layers[-2::-1]
        index = {node: i for layer in layers for i, node in enumerate(layer)}
        for layer in sequence:
            keys: dict[str, float] = {}
            for pos, node in enumerate(layer):
                near = neighbours[node]
                # Nodes without neighbours on that side keep their place.
                keys[node] = sum(index[n] for n in near) / len(near) if near else float(pos)
            layer.sort(key=keys.__getitem__)
            index.update({node: i for i, node in enumerate(layer)})
    return layers


def compute(node_ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> Layout:
    """Lay ``node_ids`` out in layers, left to right, each layer centred vertically."""
    edge_list = [(a, b) for a, b in edges]
    layers = _layers(node_ids, edge_list) if node_ids else []
    tallest = max((len(layer) for layer in layers), default=0)
    height = max(tallest * (NODE_H + ROW_GAP) - ROW_GAP, NODE_H) + 2 * PAD
    positions: dict[str, tuple[int, int]] = {}
    for col, layer in enumerate(layers):
        x = PAD + col * (NODE_W + COL_GAP)
        span = len(layer) * (NODE_H + ROW_GAP) - ROW_GAP
        top = (height - span) // 2
        for row, node in enumerate(layer):
            positions[node] = (x, top + row * (NODE_H + ROW_GAP))
    width = max(len(layers) * (NODE_W + COL_GAP) - COL_GAP, NODE_W) + 2 * PAD
    return Layout(positions, width, height)
