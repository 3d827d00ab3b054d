"""``execution_complete``: the run's results (its state follows in ``execution_state``)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from dagstream_app.dagviews import Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.render.format import Part, Perms
from dagstream_app.render.regions import results_html
from dagstream_app.vocabulary import EventPayload


class ExecutionComplete(EventPayload, tag="execution_complete"):
    results: Any


def reduce(work: Working, event: EventData) -> None:
    work.results = event.get("results")


def describe(event: EventData, name: Namer) -> Wording:
    return Wording(
        icon="completed", tone="completed", subject=_("Run"), text=_("completed with results")
    )


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The results card."""
    return [(None, results_html("completed", work.results, oob=True))]


KIND = EventKind(ExecutionComplete, reduce, describe, fragments)
