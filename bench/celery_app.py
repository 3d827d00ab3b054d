"""The Celery app of ``bench_celery.py``: no-op tasks, dagstream's handlers if asked.

``BENCH_DAGSTREAM=1`` installs them; ``BENCH_BROKER_PREFIX`` keeps the run's keys apart.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery, signals

from dagstream_app.celery import install, report_cost
from project.demo.workers import configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

READY = "bench-worker-ready"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("BENCH_BROKER_PREFIX", "dagstream-bench:")

app = Celery("dagstream_bench")
configure(app, REDIS, PREFIX)
if os.environ.get("BENCH_DAGSTREAM") == "1":
    install(app)


@signals.worker_ready.connect
def _ready(**_: Any) -> None:
    sys.__stdout__.write(f"{READY}\n")
    sys.__stdout__.flush()


@app.task
def noop(*_: Any) -> None:
    return None


@app.task
def spend(amount: float) -> float | None:
    """Report ``amount`` of cost: past the run's budget, the run waits at a budget gate."""
    return report_cost(amount)
