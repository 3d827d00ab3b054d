"""``execution_state``: the run's state changed (paused, resumed, cancelled, ended)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from dagstream_app.dagviews import EngineHealth, Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.render.format import STATUS_ICONS, Part, Perms
from dagstream_app.render.regions import controls_html, engine_html, status_html
from dagstream_app.vocabulary import TERMINAL_STATUSES, EventPayload, ExecutionStatus, status_word


class ExecutionState(EventPayload, tag="execution_state"):
    state: ExecutionStatus


def reduce(work: Working, event: EventData) -> None:
    work.status = event["state"]
    if work.status in TERMINAL_STATUSES:
        work.finished_at = event["ts"]


def describe(event: EventData, name: Namer) -> Wording:
    state = event["state"]
    icon = STATUS_ICONS.get(state, "pending")
    return Wording(icon=icon, tone=state, subject=_("Run"), text=status_word(state))


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The status badge and the controls; on resume, the engine's line too (a pause's
    "tasks still finishing" ends with it: the next look at the engine re-reads the rest)."""
    parts: list[Part] = [
        (None, status_html(work.status, work.created_at, work.finished_at, oob=True)),
        (None, controls_html(dag_id, work.status, perms[1], oob=True)),
    ]
    if work.status == "running":
        parts.append((None, engine_html(dag_id, EngineHealth(work.status, None, False), oob=True)))
    return parts


KIND = EventKind(
    ExecutionState,
    reduce,
    describe,
    fragments,
    reads=frozenset({"run"}),
    redraws=frozenset({"progress", "gantt"}),
)
