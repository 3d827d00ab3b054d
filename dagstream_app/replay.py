"""A DAG's state folded from its events, each applied by its type's reducer.

History folds the event log up to a seq into a :class:`~dagstream_app.dagviews.Working`
(:func:`rebuild`); the live dashboard applies one event to the few rows its
fragment shows (:func:`apply`). Each type's reducer is declared in its home in
:mod:`dagstream_app.events`. Nothing here reads the database:
:mod:`dagstream_app.state` does, and calls this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dagstream_app import events
from dagstream_app.dagviews import Pair, Working, new_node
from dagstream_app.events.dag_mutated import initial_structure


def apply(work: Working, event: events.EventData) -> None:
    """Apply one event to ``work`` (an unknown type changes only the seq)."""
    work.last_seq, work.at = event["seq"], event["ts"]
    kind = events.kind_of(event["type"])
    if kind is not None:
        kind.reduce(work, event)


def rebuild(
    work: Working,
    labels: Mapping[str, str],
    edges: Iterable[Pair],
    mutations: Sequence[Mapping[str, Any]],
    history: Iterable[events.EventData],
) -> Working:
    """``work`` (a DAG as created) with the structure before ``mutations``, then ``history``.

    ``labels`` and ``edges`` are today's structure, ``mutations`` every one
    after creation (:func:`~dagstream_app.events.dag_mutated.initial_structure`
    undoes them), and ``history`` the log up to the seq wanted, in order.
    """
    first_labels, work.edges = initial_structure(labels, edges, mutations)
    work.nodes = {node_id: new_node(node_id, label) for node_id, label in first_labels.items()}
    for event in history:
        apply(work, event)
    return work
