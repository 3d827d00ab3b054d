"""Celery canvases, live (the ``[celery]`` extra): watch and steer them from dagstream.

::

    from dagstream_app.celery import install, launch, gate, report_cost

    install(app)                       # once, where the Celery app is made
    run = launch(chain(fetch.s(url), gate.si(title="Publish?"), publish.s()), name="etl")
    run.dag_id, run.result             # the DAG's id, Celery's AsyncResult

See docs/celery.md. Importing this package does not need Django set up; ``launch``
and the tasks' own calls do.
"""

from __future__ import annotations

from dagstream_app.celery.launch import Launched, launch
from dagstream_app.celery.signals import install
from dagstream_app.celery.tasks import GateRejected, gate, report_cost

__all__ = ["GateRejected", "Launched", "gate", "install", "launch", "report_cost"]
