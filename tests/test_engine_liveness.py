"""A run whose engine is gone: heartbeats, "engine not responding", and ending it.

Any engine report or heartbeat sets ``Dag.engine_seen_at``; a live run (running,
paused, cancelling) silent past ``ENGINE_STALE_SECONDS`` is shown as "engine not
responding" (not a new status), and a person with ``control_dag`` may end it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dagstream_app import services, state
from dagstream_app.engine import DagStream
from dagstream_app.models import Dag, Event, Gate, Node
from dagstream_app.services import Conflict, Forbidden

pytestmark = pytest.mark.django_db

NODES = ["extract", "load", "report"]


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def dag(db: Any) -> Dag:
    dag = services.create_dag("etl-1", nodes=NODES, edges=[("extract", "load")])
    services.reports("etl-1").node_state("extract", "completed")
    services.reports("etl-1").node_state("load", "running")
    services.open_gate("etl-1", "report", {"title": "Send it?"})
    return dag


def silence(dag_id: str = "etl-1", seconds: float = 61) -> None:
    """As if the engine had reported nothing for ``seconds``."""
    Dag.objects.filter(pk=dag_id).update(engine_seen_at=timezone.now() - timedelta(seconds=seconds))


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -------------------------------------------------------------- when seen


def test_engine_reports_set_seen_and_peoples_actions_do_not(dag: Dag, make_user: Any) -> None:
    silence()
    services.reports("etl-1").cost(spent=1)
    assert not state.engine_health("etl-1").stale  # type: ignore[union-attr]
    silence()
    services.control("etl-1", "pause", actor=make_user("control_dag"))
    assert state.engine_health("etl-1").stale  # type: ignore[union-attr]


def test_a_heartbeat_is_one_update_and_no_event(dag: Dag, django_assert_num_queries: Any) -> None:
    silence()
    last_seq = Dag.objects.get(pk="etl-1").last_seq
    with django_assert_num_queries(1):
        assert services.heartbeat("etl-1") is True
    assert not state.engine_health("etl-1").stale  # type: ignore[union-attr]
    assert Dag.objects.get(pk="etl-1").last_seq == last_seq == Event.objects.count()


def test_a_heartbeat_of_an_ended_or_unknown_run_says_stop(dag: Dag) -> None:
    services.reports("etl-1").fail("boom")
    assert services.heartbeat("etl-1") is False
    assert services.heartbeat("nope") is False


@pytest.mark.parametrize("status", ["running", "paused", "cancelling"])
def test_only_a_live_run_can_be_stale(dag: Dag, status: str, settings: Any) -> None:
    Dag.objects.filter(pk="etl-1").update(status=status)
    silence(seconds=59)
    assert state.snapshot("etl-1").engine_stale is False  # type: ignore[union-attr]
    silence(seconds=61)
    snap = state.snapshot("etl-1")
    assert snap is not None and snap.engine_stale is True and snap.engine_seen_at
    settings.DAGSTREAM = {"ENGINE_STALE_SECONDS": 120}
    assert state.snapshot("etl-1").engine_stale is False  # type: ignore[union-attr]


def test_an_ended_run_is_never_stale(dag: Dag) -> None:
    services.reports("etl-1").complete()
    silence(seconds=3600)
    assert state.snapshot("etl-1").engine_stale is False  # type: ignore[union-attr]


def test_paused_with_node_events_after_the_pause_says_engine_still_reporting(
    dag: Dag, make_user: Any
) -> None:
    services.control("etl-1", "pause", actor=make_user("control_dag"))
    assert not state.engine_health("etl-1").reporting_while_paused  # type: ignore[union-attr]
    services.reports("etl-1").node_state("load", "completed")
    assert state.engine_health("etl-1").reporting_while_paused  # type: ignore[union-attr]
    services.reports("etl-1").set_state("running")
    assert not state.engine_health("etl-1").reporting_while_paused  # type: ignore[union-attr]


# --------------------------------------------------------------- force end


def test_force_cancel_is_refused_while_the_engine_reports(dag: Dag, make_user: Any) -> None:
    before = (state.snapshot("etl-1"), Event.objects.count())
    with pytest.raises(Conflict, match="reported in the last 60 s; cancel it instead"):
        services.force_cancel("etl-1", actor=make_user("control_dag"))
    assert (state.snapshot("etl-1"), Event.objects.count()) == before


def test_force_cancel_needs_control_dag(dag: Dag, make_user: Any) -> None:
    silence()
    with pytest.raises(Forbidden):
        services.force_cancel("etl-1", actor=make_user("view_dag", "decide_gate"))
    assert Dag.objects.get(pk="etl-1").status == "running"


@pytest.mark.parametrize("cancel_first", [False, True], ids=["running", "cancelling"])
def test_force_cancel_ends_the_run_closes_its_gates_and_nodes(
    dag: Dag, make_user: Any, cancel_first: bool
) -> None:
    ada = make_user("view_dag", "control_dag", username="ada")
    if cancel_first:  # a cancel no engine ever confirms
        services.control("etl-1", "cancel", actor=ada)
    silence()
    before = Dag.objects.get(pk="etl-1").last_seq
    services.force_cancel("etl-1", actor=ada)
    dag.refresh_from_db()
    assert (dag.status, dag.finished_at is not None) == ("cancelled", True)
    # Nobody decided the gate: it closed with the run (not "rejected by ada").
    gate = Gate.objects.get()
    assert (gate.status, gate.decision, gate.decided_by, gate.feedback) == ("closed", None, "", "")
    assert gate.decided_at == dag.finished_at
    statuses = dict(Node.objects.values_list("node_id", "status"))
    assert statuses == {"extract": "completed", "load": "cancelled", "report": "cancelled"}
    new = list(Event.objects.filter(seq__gt=before).values_list("type", "payload"))
    assert [kind for kind, _ in new] == [
        "node_state",
        "node_state",
        "error",
        "gate_closed",
        "execution_state",
    ]
    assert "its engine was not responding" in new[2][1]["message"]
    assert new[-2][1] == {"node_id": "report", "reason": "cancelled"}
    assert new[-1][1] == {"state": "cancelled"}
    with pytest.raises(Conflict, match="this gate was closed"):  # a late decision
        services.decide_gate("etl-1", "report", "approve", actor=make_user("decide_gate"))
    with pytest.raises(Conflict):  # ended: nothing more
        services.force_cancel("etl-1", actor=ada)
    services.delete_dag("etl-1", actor=make_user("delete_dag", "view_dag"))  # and deletable


# --------------------------------------------------------- engine heartbeat


@pytest.mark.django_db(transaction=True)
async def test_an_open_stream_heartbeats_and_close_stops_it(settings: Any) -> None:
    settings.DAGSTREAM = {"ENGINE_HEARTBEAT_SECONDS": 0.05}
    stream = await DagStream.create("hb-1", nodes=["a"])
    await database_sync_to_async(silence)("hb-1")
    for _ in range(200):  # bounded: 200 polls of the database, each after a beat
        if not (await database_sync_to_async(state.engine_health)("hb-1")).stale:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("no heartbeat reached the database")
    beating = [t for t in asyncio.all_tasks() if "_heartbeat_loop" in repr(t.get_coro())]
    assert len(beating) == 1
    await stream.close()
    await asyncio.sleep(0)  # let the cancellation land
    assert beating[0].done()


@pytest.mark.django_db(transaction=True)
async def test_the_heartbeat_ends_by_itself_when_the_run_ends(settings: Any) -> None:
    settings.DAGSTREAM = {"ENGINE_HEARTBEAT_SECONDS": 0.05}
    stream = await DagStream.create("hb-2", nodes=["a"])
    [beating] = [t for t in asyncio.all_tasks() if "_heartbeat_loop" in repr(t.get_coro())]
    await stream.complete()
    await asyncio.wait_for(beating, 10)  # returns once a heartbeat hears the run ended
    await stream.close()


# ------------------------------------------------------------------ pages


def test_detail_page_says_engine_not_responding_and_offers_end_run(
    dag: Dag, make_user: Any
) -> None:
    operator = client_for(make_user("view_dag", "control_dag"))
    watcher = client_for(make_user("view_dag"))
    page = operator.get("/dags/etl-1/").content.decode()
    assert 'data-engine="ok"' in page and "End run" not in page
    silence()
    page = operator.get("/dags/etl-1/").content.decode()
    assert 'data-engine="stale"' in page and "Engine not responding" in page
    assert "last report 1 m 01 s ago" in page and "End run" in page
    assert "End run" not in watcher.get("/dags/etl-1/").content.decode()


def test_the_page_polls_liveness_and_gets_the_controls_when_they_change(
    dag: Dag, make_user: Any
) -> None:
    operator = client_for(make_user("view_dag", "control_dag"))
    fresh = operator.get("/dags/etl-1/engine/", {"shown": "0"}).content.decode()
    assert 'data-engine="ok"' in fresh and 'hx-trigger="every 10s"' in fresh
    assert 'id="controls"' not in fresh  # nothing changed: the controls stay as they are
    silence()
    stale = operator.get("/dags/etl-1/engine/", {"shown": "0"}).content.decode()
    assert 'data-engine="stale"' in stale and 'hx-get="/dags/etl-1/engine/?shown=1"' in stale
    assert 'id="controls"' in stale and 'hx-swap-oob="true"' in stale and "End run" in stale
    services.heartbeat("etl-1")  # the engine came back: the button goes away
    back = operator.get("/dags/etl-1/engine/", {"shown": "1"}).content.decode()
    assert 'data-engine="ok"' in back and 'id="controls"' in back and "End run" not in back
    services.reports("etl-1").complete()
    assert "hx-trigger" not in operator.get("/dags/etl-1/engine/").content.decode()


def test_end_run_from_the_dashboard(dag: Dag, make_user: Any) -> None:
    operator = client_for(make_user("view_dag", "control_dag"))
    refused = operator.post("/dags/etl-1/control/", {"action": "force_cancel"})
    assert refused.status_code == 409 and "cancel it instead" in refused.content.decode()
    silence()
    ended = operator.post("/dags/etl-1/control/", {"action": "force_cancel"})
    assert ended.status_code == 200 and "End run" not in ended.content.decode()
    assert Dag.objects.get(pk="etl-1").status == "cancelled"


def test_paused_engine_still_reporting_is_shown(dag: Dag, make_user: Any) -> None:
    operator = client_for(make_user("view_dag", "control_dag"))
    services.control("etl-1", "pause", actor=make_user("control_dag"))
    services.reports("etl-1").node_state("load", "completed")
    page = operator.get("/dags/etl-1/").content.decode()
    assert "Paused — started steps still finishing" in page


# ------------------------------------------------------------------ admin


def test_admin_ends_a_run_whose_engine_is_gone(dag: Dag, make_user: Any) -> None:
    user = make_user("view_dag", "control_dag")
    user.is_staff = True
    user.save()
    client = client_for(user)
    url = reverse("admin:dagstream_app_dag_change", args=[quote("etl-1")])
    assert "End run (engine not responding)" not in client.get(url).content.decode()
    silence()
    page = client.get(url).content.decode()
    assert "End run (engine not responding)" in page and "not responding" in page
    response = client.post(url, {"_control": "force_cancel"}, follow=True)
    assert "Ended etl-1." in response.content.decode()
    assert Dag.objects.get(pk="etl-1").status == "cancelled"


def test_admin_list_action_ends_only_runs_whose_engine_is_gone(dag: Dag, make_user: Any) -> None:
    services.create_dag("fresh", nodes=["a"])
    user = make_user("view_dag", "control_dag")
    user.is_staff = True
    user.save()
    silence()
    client_for(user).post(
        reverse("admin:dagstream_app_dag_changelist"),
        {"action": "force_cancel_selected", "_selected_action": ["etl-1", "fresh"]},
    )
    assert dict(Dag.objects.values_list("dag_id", "status")) == {
        "etl-1": "cancelled",
        "fresh": "running",
    }


def test_run_list_marks_runs_whose_engine_is_gone(dag: Dag, make_user: Any) -> None:
    services.create_dag("fresh", nodes=["a"])
    silence()
    page = client_for(make_user("view_dag")).get("/dags/").content.decode()
    stale_row = page[page.index('data-dag-id="etl-1"') :]
    assert 'data-engine="stale"' in stale_row[: stale_row.index("</tr>")]
    fresh_row = page[page.index('data-dag-id="fresh"') :]
    assert 'data-engine="stale"' not in fresh_row[: fresh_row.index("</tr>")]
