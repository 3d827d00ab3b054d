"""The structure (node ids, edges) each DAG had at its last ``structure_version``, per process.

A flush checks its deltas against it without reading every node and edge
again. ``Dag.structure_version`` changes, to a new random value, whenever nodes
or edges are added or removed (by any process), so a structure remembered under
an older version is simply never looked up again. Random rather than counted:
a run deleted and created again under the same id must not find the structure
its namesake left here.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

from dagstream_app import graph
from dagstream_app.models import Dag, Edge, Node

__all__ = ["new_structure_version", "remember", "structure_of"]

_structures: OrderedDict[tuple[str, int], graph.Structure] = OrderedDict()
_structures_lock = threading.Lock()
_STRUCTURES_KEPT = 256


def new_structure_version() -> int:
    """A fresh ``structure_version``: random, never 0 (the column's default, which a
    row written without services, e.g. by a fixture, has)."""
    return secrets.randbits(62) or 1


def structure_of(dag: Dag) -> graph.Structure:
    """The DAG's structure at its current version: remembered, or read (two queries)."""
    key = (dag.dag_id, dag.structure_version)
    with _structures_lock:
        known = _structures.get(key)
        if known is not None:
            _structures.move_to_end(key)
            return known
    nodes = Node.objects.filter(dag=dag).values_list("node_id", flat=True)
    edges = Edge.objects.filter(dag=dag).values_list("src", "dst")
    return graph.Structure(nodes, edges)


def remember(dag: Dag, structure: graph.Structure) -> None:
    """Keep ``structure`` as the DAG's at its current version (the oldest go first)."""
    with _structures_lock:
        _structures[(dag.dag_id, dag.structure_version)] = structure
        while len(_structures) > _STRUCTURES_KEPT:
            _structures.popitem(last=False)
