"""Ended runs close their gates (issue 19, item 3).

However a run ends (completed, failed, cancelled, or force-ended as "engine not
responding"), each gate still pending closes in the same flush: a ``gate_closed``
event (before the run's last events), status ``closed`` in the snapshot, the
JSON API and history, no decision buttons, no "decision needed" in the run list,
and a late decision is refused with a Conflict over every edge.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dagstream_app import services, state
from dagstream_app.engine import DagStream
from dagstream_app.models import Dag, Event, Gate
from dagstream_app.render.timeline import describe
from dagstream_app.services import Conflict

pytestmark = pytest.mark.django_db

ENDINGS = ["completed", "failed", "cancelled", "force_cancelled"]


def _end(dag_id: str, how: str, person: User) -> None:
    reports = services.reports(dag_id)
    if how == "completed":
        reports.complete({"ok": True})
    elif how == "failed":
        reports.fail("boom")
    elif how == "cancelled":
        services.control(dag_id, "cancel", actor=person)
        reports.set_state("cancelled")
    else:  # the engine went silent: a person ends the run
        seen = timezone.now() - timedelta(seconds=61)
        Dag.objects.filter(pk=dag_id).update(engine_seen_at=seen)
        services.force_cancel(dag_id, actor=person)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(make_user: Callable[..., User]) -> User:
    return make_user("view_dag", "decide_gate", "control_dag", username="ada")


@pytest.fixture
def gated(db: Any) -> str:
    services.create_dag("gated", name="deploys", nodes=["build", "review", "audit"])
    services.reports("gated").node_state("build", "completed")
    services.open_gate("gated", "review", {"title": "Ship it?"})
    services.open_gate("gated", "audit", {"title": "Audited?"})
    services.decide_gate("gated", "audit", "approve")  # decided: stays as it was
    return "gated"


@pytest.mark.parametrize("how", ENDINGS)
def test_a_run_that_ends_closes_its_pending_gates(gated: str, operator: User, how: str) -> None:
    _end(gated, how, operator)
    dag = Dag.objects.get(pk=gated)
    end = "cancelled" if how == "force_cancelled" else how
    assert dag.status == end
    statuses = dict(Gate.objects.values_list("node_id", "status"))
    assert statuses == {"review": "closed", "audit": "approved"}
    review = Gate.objects.get(node_id="review")
    assert (review.decision, review.decided_by, review.decided_at) == (None, "", dag.finished_at)

    # The log: gate_closed, then the run's last events; execution_state is the last.
    log = list(Event.objects.filter(dag=dag).order_by("seq").values_list("type", "payload"))
    closed_at = [i for i, (kind, _) in enumerate(log) if kind == "gate_closed"]
    assert len(closed_at) == 1
    assert log[closed_at[0]][1] == {"node_id": "review", "reason": end}
    assert log[-1] == ("execution_state", {"state": end})
    finals = [kind for kind, _ in log[closed_at[0] + 1 :]]
    assert finals == {
        "completed": ["execution_complete", "execution_state"],
        "failed": ["error", "execution_state"],
    }.get(how, ["execution_state"])

    # Snapshot and JSON API: closed, not pending.
    snap = state.snapshot(gated)
    assert snap is not None
    assert {g.node_id: g.status for g in snap.gates} == statuses
    body = json.loads(_client(operator).get(f"/api/dags/{gated}/").content)
    assert {g["node_id"]: g["status"] for g in body["gates"]} == statuses

    # History at the end agrees with the snapshot, gate for gate.
    past = state.history(gated, dag.last_seq)
    assert past is not None
    assert past.snapshot().gates == snap.gates

    # The run list counts no decision needed for it.
    (row,) = state.run_rows([gated])
    assert row.waiting == 0
    page = _client(operator).get("/dags/").content.decode()
    assert "decision needed" not in page

    with pytest.raises(Conflict, match="this gate was closed"):
        services.decide_gate(gated, "review", "approve", actor=operator)
    assert Gate.objects.get(node_id="review").status == "closed"


def test_a_gate_opened_in_the_flush_that_ends_the_run_closes_too(operator: User) -> None:
    services.create_dag("same", nodes=["review"])
    services.apply(
        "same",
        [
            services.Delta("open_gate", {"node_id": "review", "presentation": {}}),
            services.Delta("complete", {}),
        ],
    )
    assert Gate.objects.get(dag_id="same").status == "closed"
    kinds = list(Event.objects.filter(dag_id="same").order_by("seq").values_list("type", flat=True))
    assert kinds[-3:] == ["gate_closed", "execution_complete", "execution_state"]


def test_the_dashboard_shows_a_closed_gate_without_buttons(gated: str, operator: User) -> None:
    _end(gated, "cancelled", operator)
    page = _client(operator).get(f"/dags/{gated}/").content.decode()
    card = page[page.index('data-node-id="review" data-gate-status="closed"') :]
    card = card[: card.index("</article>")]
    assert "<strong>Closed</strong>" in card
    for button in ("Approve", "Reject", "Modify"):
        assert button not in card
    # A late decision from a page still open: 409, the reason in the card, no buttons.
    late = _client(operator).post(
        f"/dags/{gated}/gates/review/decide/", {"decision": "approve", "feedback": ""}
    )
    text = late.content.decode()
    assert late.status_code == 409
    assert "The run has ended; this gate was closed." in text and "Approve" not in text


def test_the_timeline_says_why_the_gate_closed(gated: str, operator: User) -> None:
    _end(gated, "cancelled", operator)
    event = Event.objects.get(type="gate_closed")
    wording = describe({"type": "gate_closed", **event.payload}, {"review": "Review"})
    assert (wording.subject, wording.text) == ("Review", "closed: the run was cancelled")
    replay = _client(operator).get(f"/dags/{gated}/history/").content.decode()
    assert "closed: the run was cancelled" in replay
    assert 'data-gate-status="closed"' in replay


def test_the_admin_refuses_a_decision_on_a_closed_gate(gated: str, make_user: Any) -> None:
    _end(gated, "completed", make_user("control_dag"))
    staff = make_user("view_dag", "decide_gate")
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    client = _client(User.objects.get(pk=staff.pk))
    gate = Gate.objects.get(node_id="review")
    url = reverse("admin:dagstream_app_gate_change", args=[quote(gate.pk)])
    answer = client.post(url, {"_decision": "approve", "feedback": ""}, follow=True)
    messages = [str(m) for m in answer.context["messages"]]
    assert "The run has ended; this gate was closed." in messages
    assert Gate.objects.get(pk=gate.pk).status == "closed"


@pytest.mark.django_db(transaction=True)
async def test_an_engine_waiting_at_a_gate_learns_the_run_ended(make_user: Any) -> None:
    stream = await DagStream.create("waits", nodes=["review"])
    waiting = asyncio.ensure_future(stream.gate("review", {"title": "?"}))
    for _ in range(200):  # until the gate is open
        if await database_sync_to_async(Gate.objects.filter(dag_id="waits").exists)():
            break
        await asyncio.sleep(0.01)
    person = await database_sync_to_async(make_user)("view_dag", "control_dag")

    def end_it() -> None:
        Dag.objects.filter(pk="waits").update(engine_seen_at=timezone.now() - timedelta(hours=1))
        services.force_cancel("waits", actor=person)

    await database_sync_to_async(end_it)()
    with pytest.raises(Conflict, match="was closed undecided"):
        await asyncio.wait_for(waiting, 10)
    await stream.close()
