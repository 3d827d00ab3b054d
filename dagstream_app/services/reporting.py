"""The engine's reports one at a time: a DAG's creation, then one delta per call.

Each report function (:func:`node_state`, :func:`edge_active`, ...) is
:func:`~.engine_deltas.apply` with one :class:`~.validation.Delta` of its name,
and raises that delta's refusal. :func:`create_dag` and :func:`heartbeat` are
the two that are not deltas: the first writes the DAG and its structure, the
second only shows the engine is alive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
        refuse_nul(f"node {spec.id!r}", spec.id + spec.label)
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
        sql.insert_nodes(dag.pk, dag.created_at, [(s.id, s.label) for s in specs])
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


def _seq(dag_id: str, kind: DeltaKind, **args: Any) -> int:
    """:func:`_report` of a kind whose result is the seq of its event."""
    return cast(int, _report(dag_id, kind, **args))


def node_state(
    dag_id: str,
    node_id: str,
    status: str,
    *,
    output: Any = None,
    metrics: Mapping[str, Any] | None = None,
) -> int:
    """Record a node's new status (and output / metrics); emits ``node_state``; its seq."""
    return _seq(
        dag_id, "node_state", node_id=node_id, status=status, output=output, metrics=metrics
    )


def edge_active(dag_id: str, src: str, dst: str) -> int:
    """Mark data flowing along an existing edge; emits ``edge_active``; its seq."""
    return _seq(dag_id, "edge_active", src=src, dst=dst)


def mutate(dag_id: str, mutation: Mapping[str, Any]) -> int:
    """Change the DAG's structure; emits ``dag_mutated``; its seq. Cycles are refused."""
    return _seq(dag_id, "mutate", mutation=mutation)


def cost(
    dag_id: str,
    *,
    spent: float | None = None,
    budget: float | None = None,
    add: float | None = None,
) -> int:
    """Set the running cost (absolute ``spent``, or ``add`` to it) and/or the budget;
    emits ``cost_update``; its seq."""
    return _seq(dag_id, "cost", spent=spent, budget=budget, add=add)


def complete(dag_id: str, results: Any = None) -> int:
    """Finish the run with its results; emits ``execution_complete`` then the state."""
    return _seq(dag_id, "complete", results=results)


def fail(dag_id: str, message: str, *, node_id: str | None = None) -> int:
    """End the run as failed; emits ``error`` then ``execution_state`` failed."""
    return _seq(dag_id, "fail", message=message, node_id=node_id)


def report_error(dag_id: str, message: str, *, node_id: str | None = None) -> int:
    """Emit an ``error`` event without ending the run."""
    return _seq(dag_id, "error", message=message, node_id=node_id)


def set_state(dag_id: str, state: str) -> int:
    """Engine-side transition: ``paused``, ``running`` (resume) or ``cancelled``."""
    return _seq(dag_id, "set_state", state=state)


def open_gate(
    dag_id: str,
    node_id: str,
    presentation: Mapping[str, Any],
    *,
    timeout_at: datetime | None = None,
    default: str | None = None,
) -> Gate:
    """Open the gate at ``node_id`` (emits ``human_gate_waiting``), or return the existing one."""
    gate = _report(
        dag_id,
        "open_gate",
        node_id=node_id,
        presentation=presentation,
        timeout_at=timeout_at,
        default=default,
    )
    return cast(Gate, gate)


def heartbeat(dag_id: str) -> bool:
    """The engine is alive: one UPDATE of ``engine_seen_at``, no event.

    False once the run has ended (or is gone): there is nothing left to watch.
    """
    live = Dag.objects.filter(pk=dag_id, status__in=protocol.LIVE_STATUSES)
    return bool(live.update(engine_seen_at=timezone.now()))
