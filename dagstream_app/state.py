"""Read-only views of DAG state: snapshots, event frames, replay decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from dagstream_app import protocol
from dagstream_app.conf import get_config
from dagstream_app.models import Dag, Edge, Event, Gate, Node
from dagstream_app.protocol import format_ts


def gate_dict(gate: Gate) -> dict[str, Any]:
    return {
        "node_id": gate.node_id,
        "presentation": gate.presentation,
        "status": gate.status,
        "decision": gate.decision,
        "feedback": gate.feedback,
        "decided_by": gate.decided_by,
        "decided_at": format_ts(gate.decided_at) if gate.decided_at else None,
    }


def snapshot(dag_id: str) -> dict[str, Any] | None:
    """The whole current state of a DAG (``last_seq`` included), or None if unknown.

    Read under the DAG's row lock (PostgreSQL) or in one read transaction
    (SQLite), so the state and ``last_seq`` agree.
    """
    with transaction.atomic():
        dag = Dag.objects.select_for_update(no_key=True).filter(pk=dag_id).first()
        if dag is None:
            return None
        nodes = [
            {
                "id": n.node_id,
                "label": n.label,
                "status": n.status,
                "output": n.output,
                "metrics": n.metrics,
                "started_at": format_ts(n.started_at) if n.started_at else None,
                "finished_at": format_ts(n.finished_at) if n.finished_at else None,
            }
            for n in Node.objects.filter(dag=dag)
        ]
        edges = [
            {"from": src, "to": dst}
            for src, dst in Edge.objects.filter(dag=dag).values_list("src", "dst")
        ]
        gates = [gate_dict(g) for g in Gate.objects.filter(dag=dag).order_by("created_at")]
    return {
        "dag_id": dag.dag_id,
        "name": dag.name,
        "status": dag.status,
        "budget": dag.budget,
        "spent": dag.spent,
        "remaining": dag.remaining,
        "results": dag.results,
        "last_seq": dag.last_seq,
        "created_at": format_ts(dag.created_at),
        "finished_at": format_ts(dag.finished_at) if dag.finished_at else None,
        "nodes": nodes,
        "edges": edges,
        "gates": gates,
    }


def event_frames(dag_id: str, after: int, upto: int | None = None) -> list[tuple[int, str]]:
    """(seq, JSON text) of the events with ``after < seq <= upto``, in order."""
    rows = Event.objects.filter(dag_id=dag_id, seq__gt=after)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [
        (seq, protocol.event_frame(kind, dag_id, seq, format_ts(created), payload))
        for seq, kind, created, payload in rows.order_by("seq").values_list(
            "seq", "type", "created_at", "payload"
        )
    ]


def progress(dag_id: str) -> tuple[int, str] | None:
    """The DAG's (last seq, status), or None if it is unknown."""
    return Dag.objects.filter(pk=dag_id).values_list("last_seq", "status").first()


def can_replay(dag_id: str, after: int, current: int) -> bool:
    """True if the events after ``after`` are retained and within the replay window."""
    config = get_config()
    # Never replay more than a consumer may catch up (MAX_LAG): it would close
    # with 4013 and the client would resume from the same seq, forever.
    if after > current or current - after > min(config["REPLAY_WINDOW"], config["MAX_LAG"]):
        return False
    if after == current:
        return True
    return Event.objects.filter(dag_id=dag_id, seq=after + 1).exists()


def gate(dag_id: str, node_id: str) -> Gate | None:
    """The gate at ``node_id`` with its DAG, or None."""
    return Gate.objects.select_related("dag").filter(dag_id=dag_id, node_id=node_id).first()


def latest_command_seq(dag_id: str) -> int | None:
    """The seq of the DAG's latest pause / resume / cancel, or None."""
    return (
        Event.objects.filter(dag_id=dag_id)
        .exclude(command="")
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )


def commands_after(dag_id: str, cursor: int) -> tuple[list[tuple[int, str]], str | None]:
    """People's commands (seq, pause|resume|cancel) after ``cursor``, and the DAG's status."""
    # Status first: commands precede a terminal state, so they are visible then.
    status = Dag.objects.filter(pk=dag_id).values_list("status", flat=True).first()
    rows = list(
        Event.objects.filter(dag_id=dag_id, seq__gt=cursor)
        .exclude(command="")
        .order_by("seq")
        .values_list("seq", "command")
    )
    return rows, status


def finished_before(moment: datetime, limit: int | None = None) -> list[str]:
    """Ids of runs that finished before ``moment``, oldest first (at most ``limit``)."""
    rows = Dag.objects.filter(
        status__in=protocol.TERMINAL_STATUSES, finished_at__lt=moment
    ).order_by("finished_at", "pk")
    ids = rows.values_list("pk", flat=True)
    return list(ids if limit is None else ids[:limit])
