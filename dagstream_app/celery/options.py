"""What :func:`dagstream_app.celery.install` was told, for the handlers and gate tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Options:
    """The integration's knobs (see docs/celery.md)."""

    app: Any = None  # the Celery app install() was given: revokes go through it
    report_window: float = 0.2  # seconds a task's reports wait to share a transaction
    output_limit: int = 4096  # bytes of JSON a task's result may show as its node's output
    gate_hold: float = 2.0  # seconds a gate task waits in its worker slot for a decision ...
    gate_poll: float = 2.0  # ... then it frees the slot and looks again this much later
    cancel_grace: float = 10.0  # seconds a task of a cancelled run waits to be terminated


options = Options()
