"""Tasks an engine hands back while its run waits for a person (``models.HeldTask``).

An engine whose workers must not wait in a slot (Celery) holds a task here
instead: :func:`hold_task` keeps it, :func:`release_held` gives each one whose wait
is over to the engine's ``carry_out`` exactly once, across any number of
processes, and forgets it. What the message means is the engine's business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from dagstream_app import protocol
from dagstream_app.models import Dag, Gate, HeldTask
from dagstream_app.protocol import TERMINAL_STATUSES

__all__ = ["expired_held_gates", "heartbeat_held", "hold_task", "holds", "release_held"]

log = logging.getLogger(__name__)

REASONS = frozenset(HeldTask.Reason.values)


def hold_task(dag_id: str, key: str, node_id: str, reason: str, message: str = "") -> bool:
    """Keep a task of ``dag_id`` until its wait is over; False if the run has ended.

    ``key`` identifies the message: one delivered twice (a worker lost before its
    acknowledgement) is held once.
    """
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {sorted(REASONS)}, not {reason!r}.")
    if not Dag.objects.filter(pk=dag_id).exclude(status__in=TERMINAL_STATUSES).exists():
        return False
    HeldTask.objects.bulk_create(
        [HeldTask(dag_id=dag_id, key=key, node_id=node_id, reason=reason, message=message)],
        ignore_conflicts=True,
    )
    return True


def _ready() -> Q:
    """Held tasks whose wait is over: their run ended or is being cancelled, a paused run
    runs again, or the gate they wait for exists and is decided (or closed).

    A gate's task is held before its gate is written (so that no decision is ever
    lost): until the gate exists, it is not ready.
    """
    settled_gate = Gate.objects.filter(dag=OuterRef("dag"), node_id=OuterRef("node_id")).exclude(
        status=Gate.Status.PENDING
    )
    return (
        Q(dag__status__in=(*TERMINAL_STATUSES, Dag.Status.CANCELLING))
        | (Q(reason=HeldTask.Reason.PAUSED) & ~Q(dag__status=Dag.Status.PAUSED))
        | (~Q(reason=HeldTask.Reason.PAUSED) & Q(Exists(settled_gate)))
    )


def release_held(carry_out: Callable[[HeldTask], None], limit: int = 100) -> int:
    """Give each held task whose wait is over to ``carry_out``, once; how many were.

    Rows are claimed under a lock (other processes skip them) and deleted before
    ``carry_out`` runs, in one savepoint each: if it raises, the task stays held
    and is offered again by a later call. A process that dies after sending but
    before its commit leaves the task to be sent again (at least once, as Celery's
    own ``acks_late``).
    """
    if not HeldTask.objects.exists():  # the common case: one cheap query
        return 0
    done = 0
    with transaction.atomic():
        rows = list(
            HeldTask.objects.filter(_ready())
            .select_related("dag")
            .select_for_update(skip_locked=True, of=("self",))[:limit]
        )
        for row in rows:
            try:
                with transaction.atomic():
                    HeldTask.objects.filter(pk=row.pk).delete()
                    carry_out(row)
                done += 1
            except Exception:
                log.warning("dagstream: cannot release held task %s", row, exc_info=True)
    return done


def expired_held_gates() -> list[tuple[str, str, str]]:
    """(DAG id, node id, default decision) of pending gates past their timeout that
    held tasks wait for: nobody waits in a slot to decide them by default."""
    held = HeldTask.objects.filter(dag=OuterRef("dag"), node_id=OuterRef("node_id"))
    expired = Gate.objects.filter(
        Exists(held), status=Gate.Status.PENDING, timeout_at__lte=timezone.now()
    )
    return [
        (dag_id, node_id, default or "reject")
        for dag_id, node_id, default in expired.values_list("dag_id", "node_id", "default_decision")
    ]


def holds(dag_id: str) -> bool:
    """True if a task of ``dag_id`` is held: the run is parked until a person acts."""
    return HeldTask.objects.filter(dag_id=dag_id).exists()


def heartbeat_held() -> int:
    """The engine of every live run with a held task is alive (the workers that hold
    it): one UPDATE of ``engine_seen_at``, whatever the number of runs; how many."""
    live = Dag.objects.filter(
        status__in=protocol.LIVE_STATUSES, pk__in=HeldTask.objects.values("dag_id")
    )
    return live.update(engine_seen_at=timezone.now())
