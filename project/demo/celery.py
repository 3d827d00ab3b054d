"""The example project's Celery app and its demo canvas (``make demo-celery``).

Start a worker with ``celery -A project.demo.celery worker``; the broker and the
results are on ``CELERY_BROKER_URL`` (default: ``REDIS_URL``, else
``redis://127.0.0.1:6379/0``) under the key prefix ``dagstream-demo:``
(``DAGSTREAM_DEMO_CELERY_PREFIX`` changes it).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from celery import Celery, chain, chord, group

from dagstream_app.celery import gate, install, report_cost
from project.demo.workers import configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

BROKER = (
    os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)
PREFIX = os.environ.get("DAGSTREAM_DEMO_CELERY_PREFIX", "dagstream-demo:")
DEMO_NAME = "celery-report"
SOURCES = ("IEA outlook", "NREL field trial", "Fraunhofer cost study", "Met Office data")

app = Celery("dagstream_demo")
configure(app, BROKER, PREFIX, worker_prefetch_multiplier=1)
install(app)  # dagstream's handlers: every canvas launch() sends is reported live


def _work(low: float, high: float) -> None:
    time.sleep(random.uniform(low, high))  # stands in for real work


@app.task(bind=True, max_retries=2)
def fetch(self: Any, source: str) -> dict[str, Any]:
    """Download a source; the first try of one in four fails and is retried."""
    _work(0.5, 2.0)
    if self.request.retries == 0 and random.random() < 0.25:
        raise self.retry(exc=ConnectionError(f"{source}: connection reset"), countdown=1)
    report_cost(0.01)
    return {"source": source, "words": random.randint(800, 4000)}


@app.task
def summarise(pages: list[dict[str, Any]]) -> dict[str, Any]:
    _work(1.0, 2.5)
    report_cost(0.04)
    return {"sources": [p["source"] for p in pages], "words": sum(p["words"] for p in pages)}


@app.task(bind=True)
def plan_reads(self: Any, summary: dict[str, Any]) -> Any:
    """Decides at run time what to read closely: replaces itself with one read each."""
    _work(0.3, 0.8)
    picked = random.sample(summary["sources"], k=2)
    return self.replace(group(read.s(source) for source in picked))


@app.task
def read(source: str) -> str:
    _work(1.0, 3.0)
    report_cost(0.02)
    return f"notes on {source}"


@app.task
def draft(notes: list[str]) -> str:
    _work(1.0, 2.0)
    report_cost(0.05)
    return "Draft report built from " + "; ".join(notes)


@app.task
def publish(review: dict[str, Any]) -> str:
    _work(0.3, 1.0)
    extra = f" (with changes: {review['feedback']})" if review.get("feedback") else ""
    return f"published{extra}"


@app.task
def file_draft(text: str) -> str:
    _work(0.3, 1.0)
    return f"filed without review: {text[:40]}"


def report_canvas(*, review: bool = True) -> Any:
    """Fetch the sources in parallel, summarise, plan and read, draft, review, publish.

    Without ``review`` the report is published with nobody asked (a run that needs nobody).
    """
    asked = gate.s(
        title="Publish the report?",
        body="Approve to publish; modify to ask for changes (approved after 10 minutes).",
        timeout=600,
        default="approve",
    )
    steps = [chord(group(fetch.s(source) for source in SOURCES), summarise.s()), plan_reads.s()]
    if not review:
        return chain(*steps, draft.s(), file_draft.s())
    return chain(*steps, draft.s(), asked, publish.s())
