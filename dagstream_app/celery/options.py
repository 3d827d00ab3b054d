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
    release_poll: float = 1.0  # seconds between a worker's looks for held tasks to release


options = Options()
