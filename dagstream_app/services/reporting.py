"""What an engine does beside its reports: create a DAG, open a gate, show it is alive.

The reports themselves (``node_state``, ``cost``, ...) are written once, in
:mod:`.reports`. :func:`create_dag` writes the DAG and its structure,
:func:`open_gate` applies one ``open_gate`` delta, and :func:`heartbeat` only
shows the engine is alive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.utils import timezone

from dagstream_app import graph, protocol
from dagstream_app.errors import Conflict, DagstreamError, InvalidDelta
from dagstream_app.models import Dag, Gate
from dagstream_app.services import sql
from dagstream_app.services.engine_deltas import apply
from dagstream_app.services.flush import Flush
from dagstream_app.services.structures import new_structure_version
from dagstream_app.services.validation import Delta, DeltaKind, refuse_nul


def create_dag(
    dag_id: str,
    *,
    name: str = "",
    nodes: Iterable[Any] = (),
    edges: Iterable[Any] = (),
    budget: float | None = None,
) -> Dag:
    """Create a running DAG with its nodes and edges; emits ``execution_state``."""
    if not isinstance(dag_id, str) or not protocol.DAG_ID_RE.match(dag_id):
        raise InvalidDelta(
            f"Bad DAG id {dag_id!r}: use 1-100 letters, digits, '_', '.' or '-' "
            "(not '.' or '..', which no browser can open)."
        )
    if budget is not None and not protocol.is_non_negative(budget):
        raise InvalidDelta(f"Budget must be a non-negative number, not {budget!r}.")
    if len(name) > 200:
        raise InvalidDelta("A DAG name is at most 200 characters.")
    refuse_nul("DAG name", name)
    specs = graph.node_specs(nodes)
    for spec in specs:
        refuse_nul(f"node {spec.id!r}", spec.id + spec.label + spec.group_name)
    pairs = graph.edge_pairs(edges)
    graph.check_structure([s.id for s in specs], pairs)
    with transaction.atomic():
        try:
            with transaction.atomic():
                dag = Dag.objects.create(
                    dag_id=dag_id,
                    name=name,
                    budget=budget,
                    structure_version=new_structure_version(),
                    engine_seen_at=timezone.now(),
                )
        except IntegrityError:
            raise Conflict(f"DAG {dag_id!r} already exists.") from None
        sql.insert_nodes(dag.pk, dag.created_at, [(s.id, s.label, s.group_name) for s in specs])
        sql.insert_edges(dag.pk, pairs)
        flush = Flush(dag, graph.Structure((s.id for s in specs), pairs))
        flush.emit(protocol.ExecutionState(state="running"))
        flush.save(publish=True)
    return dag


def _report(dag_id: str, kind: DeltaKind, **args: Any) -> int | Gate:
    """Apply the one delta ``kind`` with ``args``; its result, or raise its refusal."""
    result = apply(dag_id, [Delta(kind, args)]).results[0]
    if isinstance(result, DagstreamError):
        raise result
    return result


def open_gate(
    dag_id: str,
    node_id: str,
    presentation: Mapping[str, Any],
    *,
    timeout_at: datetime | None = None,
    default: str | None = None,
    assignees: Sequence[str] = (),
    quorum: int = 1,
) -> Gate:
    """Open the gate at ``node_id`` (emits ``human_gate_waiting``), or return the existing one.

    ``assignees`` (usernames, ``"group:<name>"``) are who may decide it; ``quorum``
    how many approvals from distinct people it needs (see :mod:`.votes`).
    """
    gate = _report(
        dag_id,
        "open_gate",
        node_id=node_id,
        presentation=presentation,
        timeout_at=timeout_at,
        default=default,
        assignees=assignees,
        quorum=quorum,
    )
    return cast(Gate, gate)


def heartbeat(dag_id: str) -> bool:
    """The engine is alive: one UPDATE of ``engine_seen_at``, no event.

    False once the run has ended (or is gone): there is nothing left to watch.
    """
    live = Dag.objects.filter(pk=dag_id, status__in=protocol.LIVE_STATUSES)
    return bool(live.update(engine_seen_at=timezone.now()))
