"""Django admin through the test client: gate review, DAG control, event log, tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dagstream_app import broadcast, services, tokens
from dagstream_app.engine import DagStream
from dagstream_app.models import ApiToken, Dag, Event, Gate

pytestmark = pytest.mark.django_db

GATES = "admin:dagstream_app_gate_changelist"
DAGS = "admin:dagstream_app_dag_changelist"
TOKENS = "admin:dagstream_app_apitoken_changelist"
NODES = [{"id": "extract", "label": "Extract"}, {"id": "review"}, {"id": "ship"}]


HOOK = {"PERMISSION_HOOK": "tests.hooks.only_prod_refused"}


@pytest.fixture
def staff(make_user: Callable[..., User]) -> Callable[..., Client]:
    """A logged-in admin client for a staff user with the given dagstream permissions."""

    def make(*perms: str) -> Client:
        user = make_user(*perms)
        User.objects.filter(pk=user.pk).update(is_staff=True)
        client = Client()
        client.force_login(User.objects.get(pk=user.pk))
        client.user = user  # type: ignore[attr-defined]
        return client

    return make


def _dag(dag_id: str = "etl-1", name: str = "etl") -> Dag:
    return services.create_dag(dag_id, name=name, nodes=NODES, edges=[("extract", "review")])


def _gate(dag_id: str, node_id: str = "review", **presentation: Any) -> Gate:
    return services.open_gate(dag_id, node_id, presentation or {"title": f"Ship {dag_id}?"})


def _change_url(model: str, pk: Any) -> str:
    return reverse(f"admin:dagstream_app_{model}_change", args=[quote(pk)])


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def _gate_events(dag_id: str) -> int:
    return Event.objects.filter(dag_id=dag_id, type="gate_decided").count()


# --------------------------------------------------------------- gate list


def test_gate_list_needs_view_dag(staff: Callable[..., Client]) -> None:
    _gate(_dag().dag_id)
    assert staff().get(reverse(GATES)).status_code == 403
    assert staff("view_dag").get(reverse(GATES)).status_code == 200


def test_gate_list_shows_pending_first_and_filters(staff: Callable[..., Client]) -> None:
    for dag_id in ("a-1", "a-2", "a-3"):
        _dag(dag_id)
        _gate(dag_id)
    admin_user = staff("view_dag", "decide_gate").user  # type: ignore[attr-defined]
    services.decide_gate("a-2", "review", "approve", actor=admin_user)
    client = staff("view_dag")
    listed = list(client.get(reverse(GATES)).context["cl"].result_list)
    assert [g.status for g in listed] == ["pending", "pending", "approved"]
    assert [g.dag_id for g in listed] == ["a-3", "a-1", "a-2"]
    pending = client.get(reverse(GATES), {"status__exact": "approved"}).context["cl"].result_list
    assert [g.dag_id for g in pending] == ["a-2"]
    by_dag = client.get(reverse(GATES), {"dag__dag_id__exact": "a-1"}).context["cl"].result_list
    assert [g.dag_id for g in by_dag] == ["a-1"]


def test_gate_actions_are_offered_only_with_decide_gate(staff: Callable[..., Client]) -> None:
    _gate(_dag().dag_id)
    choices = dict(
        staff("view_dag", "decide_gate")
        .get(reverse(GATES))
        .context["action_form"]
        .fields["action"]
        .choices
    )
    labels = [str(label) for label in choices.values()]
    assert any(label.startswith("Approve") for label in labels)
    assert any(label.startswith("Reject") for label in labels)
    assert "delete_selected" not in choices
    # Without decide_gate there is no action at all, so no action form.
    assert staff("view_dag").get(reverse(GATES)).context["action_form"] is None


# ------------------------------------------------------ approve / reject action


@pytest.mark.parametrize(("action", "status"), [("approve", "approved"), ("reject", "rejected")])
def test_decision_action_asks_for_feedback_then_decides_through_services(
    staff: Callable[..., Client], action: str, status: str
) -> None:
    for dag_id in ("b-1", "b-2", "b-3"):
        _dag(dag_id)
    gates = [_gate("b-1"), _gate("b-2"), _gate("b-3")]
    client = staff("view_dag", "decide_gate")
    earlier = staff("view_dag", "decide_gate").user  # type: ignore[attr-defined]
    services.decide_gate("b-3", "review", "reject", feedback="no", actor=earlier)
    selected = {"action": f"{action}_selected", "_selected_action": [g.pk for g in gates]}

    page = client.post(reverse(GATES), selected)
    assert page.status_code == 200
    assert page.templates[0].name == "admin/dagstream_app/gate/decide_selected.html"
    assert b'name="feedback"' in page.content
    assert Gate.objects.filter(status="pending").count() == 2  # nothing decided yet

    done = client.post(
        reverse(GATES), {**selected, "post": "yes", "feedback": "ok by me"}, follow=True
    )
    assert done.status_code == 200
    for dag_id in ("b-1", "b-2"):
        gate = Gate.objects.get(dag_id=dag_id)
        assert (gate.status, gate.feedback) == (status, "ok by me")
        assert gate.decided_by == client.user.username  # type: ignore[attr-defined]
        assert gate.decided_at is not None
        assert _gate_events(dag_id) == 1
    # The gate decided earlier keeps its decision; the user is told so.
    assert Gate.objects.get(dag_id="b-3").decided_by == earlier.username
    assert _gate_events("b-3") == 1
    text = " ".join(_messages(done))
    assert "b-1/review" in text and "b-3/review: Gate 'review' was already decided" in text


def test_decision_action_feedback_is_optional(staff: Callable[..., Client]) -> None:
    gate = _gate(_dag().dag_id)
    client = staff("view_dag", "decide_gate")
    client.post(
        reverse(GATES),
        {"action": "reject_selected", "_selected_action": [gate.pk], "post": "yes", "feedback": ""},
    )
    gate.refresh_from_db()
    assert (gate.status, gate.feedback) == ("rejected", "")


@override_settings(DAGSTREAM={"FEEDBACK_MAX_LENGTH": 10})
def test_decision_action_refuses_feedback_over_the_limit(staff: Callable[..., Client]) -> None:
    gate = _gate(_dag().dag_id)
    client = staff("view_dag", "decide_gate")
    page = client.post(
        reverse(GATES),
        {
            "action": "approve_selected",
            "_selected_action": [gate.pk],
            "post": "yes",
            "feedback": "x" * 11,
        },
    )
    assert page.status_code == 200 and page.context["form"].errors
    gate.refresh_from_db()
    assert gate.status == "pending" and _gate_events(gate.dag_id) == 0


def test_decision_action_without_decide_gate_changes_nothing(staff: Callable[..., Client]) -> None:
    gate = _gate(_dag().dag_id)
    client = staff("view_dag")
    response = client.post(
        reverse(GATES),
        {"action": "approve_selected", "_selected_action": [gate.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    gate.refresh_from_db()
    assert gate.status == "pending" and _gate_events(gate.dag_id) == 0


@override_settings(DAGSTREAM=HOOK)
def test_decision_action_honours_the_per_dag_hook(staff: Callable[..., Client]) -> None:
    _dag("dev-1", name="dev")
    _dag("prod-1", name="prod")
    gates = [_gate("dev-1"), _gate("prod-1")]
    client = staff("view_dag", "decide_gate")
    done = client.post(
        reverse(GATES),
        {"action": "approve_selected", "_selected_action": [g.pk for g in gates], "post": "yes"},
        follow=True,
    )
    assert Gate.objects.get(dag_id="dev-1").status == "approved"
    assert Gate.objects.get(dag_id="prod-1").status == "pending"
    assert _gate_events("prod-1") == 0
    assert any("prod-1/review: You may not decide" in m for m in _messages(done))


# ---------------------------------------------------------- gate change page


def test_gate_page_shows_presentation_escaped_and_offers_decisions(
    staff: Callable[..., Client],
) -> None:
    gate = _gate(_dag().dag_id, title="<script>alert(1)</script>", rows=[1, 2])
    page = staff("view_dag", "decide_gate").get(_change_url("gate", gate.pk))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Pretty JSON (PostgreSQL's jsonb may reorder the keys).
    assert '<pre class="dagstream-json">{\n  &quot;' in html
    assert "\n  &quot;rows&quot;: [\n    1,\n    2\n  ]" in html
    for value in ("approve", "reject", "modify"):
        assert f'name="_decision" value="{value}"' in html
    assert 'name="feedback"' in html
    # Read-only: no input for the gate's own fields, no delete link.
    assert 'name="presentation"' not in html and 'name="node_id"' not in html
    assert "deletelink" not in html


def test_gate_page_without_decide_gate_is_read_only(staff: Callable[..., Client]) -> None:
    gate = _gate(_dag().dag_id)
    page = staff("view_dag").get(_change_url("gate", gate.pk))
    assert page.status_code == 200 and b'name="_decision"' not in page.content
    assert staff().get(_change_url("gate", gate.pk)).status_code == 403


@pytest.mark.parametrize(
    ("decision", "feedback", "status"),
    [
        ("approve", "", "approved"),
        ("reject", "too risky", "rejected"),
        ("modify", "smaller", "modified"),
    ],
)
def test_gate_page_decides_through_services(
    staff: Callable[..., Client], decision: str, feedback: str, status: str
) -> None:
    gate = _gate(_dag().dag_id)
    client = staff("view_dag", "decide_gate")
    url = _change_url("gate", gate.pk)
    response = client.post(url, {"_decision": decision, "feedback": feedback}, follow=True)
    assert response.redirect_chain[-1][0] == url
    gate.refresh_from_db()
    assert (gate.status, gate.feedback, gate.decided_by) == (
        status,
        feedback,
        client.user.username,  # type: ignore[attr-defined]
    )
    event = Event.objects.get(dag_id=gate.dag_id, type="gate_decided")
    assert event.payload == {
        "node_id": "review",
        "decision": decision,
        "feedback": feedback,
        "decided_by": client.user.username,  # type: ignore[attr-defined]
    }
    # Now decided: read-only, shows who and when, offers nothing.
    html = response.content.decode()
    assert 'name="_decision"' not in html
    assert f"by {client.user.username} at" in html  # type: ignore[attr-defined]


def test_gate_page_modify_needs_feedback(staff: Callable[..., Client]) -> None:
    gate = _gate(_dag().dag_id)
    response = staff("view_dag", "decide_gate").post(
        _change_url("gate", gate.pk), {"_decision": "modify", "feedback": "  "}, follow=True
    )
    assert "A modify decision needs feedback." in _messages(response)
    gate.refresh_from_db()
    assert gate.status == "pending" and _gate_events(gate.dag_id) == 0


def test_gate_page_second_decision_is_a_conflict_showing_the_winner(
    staff: Callable[..., Client],
) -> None:
    gate = _gate(_dag().dag_id)
    first, second = staff("view_dag", "decide_gate"), staff("view_dag", "decide_gate")
    url = _change_url("gate", gate.pk)
    first.post(url, {"_decision": "approve"})
    response = second.post(url, {"_decision": "reject", "feedback": "no"}, follow=True)
    assert "Gate 'review' was already decided: approve." in _messages(response)
    gate.refresh_from_db()
    assert gate.decided_by == first.user.username  # type: ignore[attr-defined]
    assert _gate_events(gate.dag_id) == 1


def test_gate_page_decision_without_permission_is_forbidden(staff: Callable[..., Client]) -> None:
    gate = _gate(_dag().dag_id)
    response = staff("view_dag").post(_change_url("gate", gate.pk), {"_decision": "approve"})
    assert response.status_code == 403
    gate.refresh_from_db()
    assert gate.status == "pending" and _gate_events(gate.dag_id) == 0


@override_settings(DAGSTREAM=HOOK)
def test_gate_page_decision_refused_by_hook_is_forbidden(staff: Callable[..., Client]) -> None:
    gate = _gate(_dag("prod-1", name="prod").dag_id)
    client = staff("view_dag", "decide_gate")
    assert b'name="_decision"' not in client.get(_change_url("gate", gate.pk)).content
    assert client.post(_change_url("gate", gate.pk), {"_decision": "approve"}).status_code == 403
    gate.refresh_from_db()
    assert gate.status == "pending"


def test_gates_cannot_be_added_edited_or_deleted(staff: Callable[..., Client]) -> None:
    gate = _gate(_dag().dag_id)
    client = staff("view_dag", "decide_gate", "control_dag")
    User.objects.filter(pk=client.user.pk).update(is_superuser=True)  # type: ignore[attr-defined]
    services.decide_gate(gate.dag_id, "review", "approve", actor=client.user)  # type: ignore[attr-defined]
    url = _change_url("gate", gate.pk)
    assert client.get(reverse("admin:dagstream_app_gate_add")).status_code == 403
    assert client.get(reverse("admin:dagstream_app_gate_delete", args=[gate.pk])).status_code == 403
    assert (
        client.post(
            reverse("admin:dagstream_app_gate_delete", args=[gate.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert (
        client.post(url, {"node_id": "x", "status": "pending", "feedback": "edited"}).status_code
        == 403
    )
    response = client.post(
        reverse(GATES), {"action": "delete_selected", "_selected_action": [gate.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302)
    gate.refresh_from_db()
    assert (gate.status, gate.node_id, gate.feedback) == ("approved", "review", "")


# -------------------------------------------------------------------- DAGs


def test_dag_list_columns_filters_and_search(staff: Callable[..., Client]) -> None:
    services.create_dag("etl-7", name="etl", nodes=["a", "b", "c", "d"], budget=2.0)
    services.create_dag("ml-1", name="train", nodes=["x"])
    services.reports("etl-7").node_state("a", "completed")
    services.reports("etl-7").node_state("b", "skipped")
    services.reports("etl-7").node_state("c", "running")
    services.reports("etl-7").cost(spent=0.5)
    client = staff("view_dag")
    response = client.get(reverse(DAGS))
    html = response.content.decode()
    assert "2 / 4" in html and "$0.50 / $2.00" in html and "0 / 1" in html and "$0.00 / —" in html
    for column in (
        "column-dag_id",
        "column-name",
        "column-status",
        "column-progress",
        "column-spend",
        "column-created_at",
    ):
        assert column in html
    found = client.get(reverse(DAGS), {"q": "train"}).context["cl"].result_list
    assert [d.dag_id for d in found] == ["ml-1"]
    services.reports("ml-1").fail("boom")
    failed = client.get(reverse(DAGS), {"status__exact": "failed"}).context["cl"].result_list
    assert [d.dag_id for d in failed] == ["ml-1"]
    assert staff().get(reverse(DAGS)).status_code == 403


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        ("pause", "running", "paused"),
        ("resume", "paused", "running"),
        ("cancel", "running", "cancelling"),
        ("cancel", "paused", "cancelling"),
    ],
)
def test_dag_control_actions_go_through_services(
    staff: Callable[..., Client], action: str, before: str, after: str
) -> None:
    dag = _dag()
    client = staff("view_dag", "control_dag")
    if before == "paused":
        services.control(dag.dag_id, "pause", actor=client.user)  # type: ignore[attr-defined]
    seq = Dag.objects.get(pk=dag.pk).last_seq
    client.post(reverse(DAGS), {"action": f"{action}_selected", "_selected_action": [dag.pk]})
    dag.refresh_from_db()
    assert dag.status == after and dag.last_seq == seq + 1
    event = Event.objects.get(dag=dag, seq=dag.last_seq)
    assert (event.type, event.payload, event.command) == (
        "execution_state",
        {"state": after},
        action,
    )


def test_dag_control_action_in_the_wrong_state_is_reported_and_changes_nothing(
    staff: Callable[..., Client],
) -> None:
    _dag("r-1")
    services.reports(_dag("c-1").dag_id).complete({"ok": True})
    client = staff("view_dag", "control_dag")
    response = client.post(
        reverse(DAGS),
        {"action": "resume_selected", "_selected_action": ["r-1", "c-1"]},
        follow=True,
    )
    assert {d.status for d in Dag.objects.all()} == {"running", "completed"}
    assert Event.objects.filter(command="resume").count() == 0
    text = " ".join(_messages(response))
    assert "r-1: Cannot resume a DAG that is running." in text
    assert "c-1: Cannot resume a DAG that is completed." in text


def test_dag_control_actions_need_control_dag(staff: Callable[..., Client]) -> None:
    dag = _dag()
    client = staff("view_dag", "decide_gate")
    assert client.get(reverse(DAGS)).context["action_form"] is None
    client.post(reverse(DAGS), {"action": "pause_selected", "_selected_action": [dag.pk]})
    dag.refresh_from_db()
    assert (dag.status, dag.last_seq) == ("running", 1)


@override_settings(DAGSTREAM=HOOK)
def test_dag_control_action_honours_the_per_dag_hook(staff: Callable[..., Client]) -> None:
    _dag("dev-1", name="dev")
    _dag("prod-1", name="prod")
    client = staff("view_dag", "control_dag")
    client.post(
        reverse(DAGS), {"action": "pause_selected", "_selected_action": ["dev-1", "prod-1"]}
    )
    assert Dag.objects.get(pk="dev-1").status == "paused"
    assert Dag.objects.get(pk="prod-1").status == "running"


def test_dag_page_lists_events_newest_first_paginated(staff: Callable[..., Client]) -> None:
    dag = _dag("etl_12.x")  # an id the admin must quote in URLs
    for i in range(60):
        services.reports(dag.dag_id).node_state("extract", "running" if i % 2 else "pending")
    client = staff("view_dag")
    url = _change_url("dag", dag.dag_id)
    first = client.get(url)
    assert first.status_code == 200
    seqs = [event.seq for event, _ in first.context["events"]]
    assert seqs == list(range(61, 11, -1))
    second = client.get(url, {"events_page": 2})
    assert [event.seq for event, _ in second.context["events"]] == list(range(11, 0, -1))
    html = first.content.decode()
    assert "?events_page=2" in html and 'name="_control"' not in html  # no control_dag
    assert 'name="dag_id"' not in html and "deletelink" not in html  # read-only


def test_dag_page_buttons_control_through_services(staff: Callable[..., Client]) -> None:
    dag = _dag()
    client = staff("view_dag", "control_dag")
    url = _change_url("dag", dag.dag_id)
    html = client.get(url).content.decode()
    assert 'value="pause"' in html and 'value="cancel"' in html and 'value="resume"' not in html
    response = client.post(url, {"_control": "pause"}, follow=True)
    dag.refresh_from_db()
    assert dag.status == "paused"
    assert 'value="resume"' in response.content.decode()
    again = client.post(url, {"_control": "pause"}, follow=True)
    assert "Cannot pause a DAG that is paused." in _messages(again)
    dag.refresh_from_db()
    assert dag.last_seq == 2


def test_dag_page_control_without_permission_is_forbidden(staff: Callable[..., Client]) -> None:
    dag = _dag()
    response = staff("view_dag", "decide_gate").post(
        _change_url("dag", dag.dag_id), {"_control": "cancel"}
    )
    assert response.status_code == 403
    dag.refresh_from_db()
    assert (dag.status, dag.last_seq) == ("running", 1)


def test_dags_cannot_be_added_edited_or_deleted(staff: Callable[..., Client]) -> None:
    dag = _dag()
    client = staff("view_dag", "control_dag")
    User.objects.filter(pk=client.user.pk).update(is_superuser=True)  # type: ignore[attr-defined]
    assert client.get(reverse("admin:dagstream_app_dag_add")).status_code == 403
    assert client.post(_change_url("dag", dag.dag_id), {"name": "renamed"}).status_code == 403
    delete = reverse("admin:dagstream_app_dag_delete", args=[quote(dag.dag_id)])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    dag.refresh_from_db()
    assert dag.name == "etl"


# ------------------------------------------------------------------ tokens


def test_tokens_show_no_key_cannot_be_added_and_delete_revokes(
    admin_client: Client, make_user: Callable[..., User]
) -> None:
    owner = make_user("view_dag")
    token, key = tokens.create_api_token(owner, "ci")
    page = admin_client.get(reverse(TOKENS)).content.decode()
    assert f"{token.prefix}…" in page and key not in page and token.key_hash not in page
    assert "manage.py dagstream_token" in page
    detail = admin_client.get(_change_url("apitoken", token.pk)).content.decode()
    assert key not in detail and token.key_hash not in detail
    assert admin_client.get(reverse("admin:dagstream_app_apitoken_add")).status_code == 403
    assert admin_client.post(_change_url("apitoken", token.pk), {"name": "x"}).status_code == 403
    assert tokens.user_for_token(key) == owner
    admin_client.post(
        reverse(TOKENS),
        {"action": "delete_selected", "_selected_action": [token.pk], "post": "yes"},
    )
    assert not ApiToken.objects.exists()
    assert tokens.user_for_token(key) is None


# ---------------------------------------------------- taking effect live


@pytest.mark.django_db(transaction=True)
async def test_admin_decision_reaches_the_engine_and_viewers_live(
    staff: Callable[..., Client],
) -> None:
    # The engine polls only once a minute here: returning at once proves the wake-up.
    with override_settings(DAGSTREAM={"IDLE_CHECK_SECONDS": 60}):
        client = await database_sync_to_async(staff)("view_dag", "decide_gate")
        stream = await DagStream.create("live-1", nodes=["review"])
        layer = get_channel_layer()
        viewer = await layer.new_channel()
        await layer.group_add(broadcast.group_name("live-1"), viewer)
        waiting = asyncio.ensure_future(stream.gate("review", {"title": "Ship it?"}))
        opened = await asyncio.wait_for(layer.receive(viewer), 10)
        assert [e["event"] for e in opened["events"]] == ["node_state", "human_gate_waiting"]
        gate = await database_sync_to_async(Gate.objects.get)(dag_id="live-1")
        await database_sync_to_async(client.post)(
            _change_url("gate", gate.pk), {"_decision": "approve", "feedback": "go"}
        )
        decision = await asyncio.wait_for(waiting, 10)
        assert (decision.decision, decision.feedback, decision.decided_by) == (
            "approve",
            "go",
            client.user.username,
        )
        seen = await asyncio.wait_for(layer.receive(viewer), 10)
        assert [(e["event"], e["seq"]) for e in seen["events"]] == [("gate_decided", 4)]
        await stream.close()


@pytest.mark.django_db(transaction=True)
async def test_admin_control_reaches_the_engine_live(staff: Callable[..., Client]) -> None:
    with override_settings(DAGSTREAM={"IDLE_CHECK_SECONDS": 60}):
        client = await database_sync_to_async(staff)("view_dag", "control_dag")
        stream = await DagStream.create("live-2", nodes=["a"])
        commands = stream.commands()
        first = asyncio.ensure_future(anext(commands))
        await database_sync_to_async(client.post)(
            reverse(DAGS), {"action": "pause_selected", "_selected_action": ["live-2"]}
        )
        command = await asyncio.wait_for(first, 10)
        assert command.type == "pause"
        await commands.aclose()  # type: ignore[attr-defined]
        await stream.close()


# The hook refuses "no DAG" too, which proves admin never asks that.
@override_settings(DAGSTREAM={"PERMISSION_HOOK": "tests.hooks.hide_secret_dags"})
def test_per_dag_view_rules_hide_dags_and_their_gates(staff: Callable[..., Client]) -> None:
    _gate(_dag("open-1", name="etl").dag_id)
    secret = _gate(_dag("hidden-1", name="secret").dag_id)
    client = staff("view_dag", "decide_gate", "control_dag")
    assert [d.dag_id for d in client.get(reverse(DAGS)).context["cl"].result_list] == ["open-1"]
    assert [g.dag_id for g in client.get(reverse(GATES)).context["cl"].result_list] == ["open-1"]
    assert client.get(_change_url("dag", "hidden-1")).status_code == 302  # "does not exist"
    assert client.get(_change_url("gate", secret.pk)).status_code == 302
    client.post(
        reverse(GATES),
        {"action": "approve_selected", "_selected_action": [secret.pk], "post": "yes"},
    )
    assert client.post(_change_url("gate", secret.pk), {"_decision": "approve"}).status_code == 404
    secret.refresh_from_db()
    assert secret.status == "pending"


@pytest.mark.parametrize("hook", [None, "tests.hooks.hide_secret_dags"])
def test_narrowing_to_viewable_runs_never_reads_every_runs_results(
    staff: Callable[..., Client], hook: str | None
) -> None:
    # It used to read every run's whole row, results JSON included, on every request.
    for n in range(3):
        _gate(_dag(f"run-{n}").dag_id)
        services.reports(f"run-{n}").complete({"rows": ["x" * 100] * 100})
    client = staff("view_dag")
    for changelist in (DAGS, GATES):
        with (
            override_settings(DAGSTREAM={"PERMISSION_HOOK": hook} if hook else {}),
            CaptureQueriesContext(connection) as queries,
        ):
            response = client.get(reverse(changelist))
        assert len(response.context["cl"].result_list) == 3
        every_run = [
            q["sql"] for q in queries if '"results"' in q["sql"] and "WHERE" not in q["sql"]
        ]
        assert every_run == []


# ----------------------------------------------------------------- deleting


def _finished(dag_id: str) -> Dag:
    dag = _dag(dag_id)
    services.reports(dag_id).complete({"ok": True})
    return dag


def test_finished_runs_are_deleted_through_services(staff: Callable[..., Client]) -> None:
    _finished("old-1")
    _gate(_dag("live-1").dag_id)
    client = staff("view_dag", "delete_dag")
    delete_url = reverse("admin:dagstream_app_dag_delete", args=["old-1"])
    page = client.get(delete_url)
    assert page.status_code == 200 and "Are you sure" in page.content.decode()
    assert client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not Dag.objects.filter(pk="old-1").exists()
    assert not Event.objects.filter(dag_id="old-1").exists()
    # A run that has not finished cannot be deleted, one by one or in bulk.
    assert client.get(reverse("admin:dagstream_app_dag_delete", args=["live-1"])).status_code == 403
    bulk = client.post(reverse(DAGS), {"action": "delete_selected", "_selected_action": ["live-1"]})
    assert "live-1 (running: cancel it first)" in bulk.content.decode()
    assert 'name="post" value="yes"' not in bulk.content.decode()  # no confirm button
    client.post(
        reverse(DAGS), {"action": "delete_selected", "_selected_action": ["live-1"], "post": "yes"}
    )
    assert Dag.objects.filter(pk="live-1").exists()


def test_deleting_needs_delete_dag_and_the_hook(staff: Callable[..., Client]) -> None:
    _finished("old-1")
    prod = _finished("prod-1")
    Dag.objects.filter(pk=prod.pk).update(name="prod")
    viewer = staff("view_dag")
    assert viewer.get(reverse("admin:dagstream_app_dag_delete", args=["old-1"])).status_code == 403
    assert "delete_selected" not in viewer.get(reverse(DAGS)).content.decode()
    with override_settings(DAGSTREAM=HOOK):
        client = staff("view_dag", "delete_dag")
        url = reverse("admin:dagstream_app_dag_delete", args=["prod-1"])
        assert client.get(url).status_code == 403
        client.post(
            reverse(DAGS),
            {"action": "delete_selected", "_selected_action": ["old-1", "prod-1"], "post": "yes"},
        )
    assert list(Dag.objects.values_list("pk", flat=True)) == ["prod-1"]


def test_a_search_with_a_nul_character_is_no_error(staff: Callable[..., Client]) -> None:
    _dag()
    client = staff("view_dag")
    for listing in (DAGS, GATES):
        assert client.get(reverse(listing), {"q": "etl\x00"}).status_code == 200


def test_gate_page_records_a_vote_on_a_quorum_gate_and_lists_the_votes(
    staff: Callable[..., Client],
) -> None:
    dag_id = _dag().dag_id
    gate = services.open_gate(dag_id, "review", {"title": "Two say yes"}, quorum=2)
    first, second = staff("view_dag", "decide_gate"), staff("view_dag", "decide_gate")
    url = _change_url("gate", gate.pk)
    html = first.post(url, {"_decision": "approve", "feedback": "fine"}, follow=True)
    gate.refresh_from_db()
    assert (gate.status, [v["voter"] for v in gate.votes]) == (
        "pending",
        [first.user.username],  # type: ignore[attr-defined]
    )
    page = html.content.decode()
    assert "quorum" in page.lower() and "&quot;feedback&quot;: &quot;fine&quot;" in page
    again = first.post(url, {"_decision": "approve"}, follow=True)
    assert "You already voted on this gate: approve." in " ".join(_messages(again))
    second.post(url, {"_decision": "approve"}, follow=True)
    gate.refresh_from_db()
    assert gate.status == "approved"
    assert _gate_events(dag_id) == 1
