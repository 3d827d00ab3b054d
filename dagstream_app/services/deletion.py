"""Deleting a finished run with everything it holds, and telling its live viewers.

Events go first, :data:`DELETE_CHUNK` per transaction, so deleting a run with a
long log never holds locks for long on a live database; the DAG row goes last,
its nodes, edges and gates with it.
"""

from __future__ import annotations

from django.db import transaction

from dagstream_app import broadcast
from dagstream_app.errors import Conflict
from dagstream_app.models import Event
from dagstream_app.services.actors import Actor, authorized
from dagstream_app.services.flush import lock

__all__ = ["DELETE_CHUNK", "delete_dag"]

# Events deleted per transaction before the DAG row itself.
DELETE_CHUNK = 10_000


def delete_dag(dag_id: str, *, actor: Actor = None) -> None:
    """Delete a finished run with everything it holds; its live viewers are told.

    ``actor`` None is the system (``manage.py dagstream_prune``): no permission
    check. A run that has not finished is refused: cancel it first.
    """
    if actor is not None:
        authorized(actor, "delete", dag_id)
    while True:
        with transaction.atomic():
            dag = lock(dag_id)
            if not dag.is_terminal:
                raise Conflict(
                    f"DAG {dag_id!r} is {dag.status}; only finished runs can be deleted."
                )
            chunk = list(
                Event.objects.filter(dag=dag)
                .order_by("seq")
                .values_list("pk", flat=True)[:DELETE_CHUNK]
            )
            if len(chunk) < DELETE_CHUNK:
                dag.delete()  # the rest goes with it (fast cascading deletes)
                transaction.on_commit(lambda: broadcast.publish_deleted(dag_id))
                return
            Event.objects.filter(pk__in=chunk).delete()
