"""Carrying out a cancel: the run ends ``cancelled`` once, then every message of it is revoked.

Django must be set up before this module is imported.
"""

from __future__ import annotations

import logging

from dagstream_app import services, state
from dagstream_app.celery.canvas import DAG_STAMP
from dagstream_app.celery.options import options
from dagstream_app.engine import deltas
from dagstream_app.protocol import FINISHED_NODE_STATUSES, TERMINAL_STATUSES
from dagstream_app.services import DagstreamError

__all__ = ["cancel_run", "revoke_run"]

log = logging.getLogger(__name__)


def revoke_run(dag_id: str) -> None:
    """Revoke every task message of the run, terminating those running where the pool can."""
    if options.app is None:
        log.warning("dagstream: install(app) was not called; cannot revoke run %s", dag_id)
        return
    options.app.control.revoke_by_stamped_headers({DAG_STAMP: dag_id}, terminate=True)


def cancel_run(dag_id: str) -> bool:
    """Carry out a cancel: unfinished nodes cancelled and the run cancelled in one
    transaction, then every message of the run revoked. False (and nothing done) if
    the run had ended already: another process carried it out (and revoked)."""
    snapshot = state.snapshot(dag_id)
    if snapshot is None or snapshot.status in TERMINAL_STATUSES:
        return False
    reports = [
        deltas.node_state(n.id, "cancelled")
        for n in snapshot.nodes
        if n.status not in FINISHED_NODE_STATUSES
    ]
    # One transaction: a second process cancelling at once is refused whole.
    results = services.apply(dag_id, [*reports, deltas.set_state("cancelled")]).results
    if isinstance(results[-1], DagstreamError):
        return False
    revoke_run(dag_id)  # last: it may terminate this very process's task
    return True
