"""Models: constraints, permissions, and the helpers the rest relies on."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from dagstream_app import services, tokens
from dagstream_app.models import ApiToken, Dag, Edge, Event, Gate, Node

pytestmark = pytest.mark.django_db


@pytest.fixture
def dag() -> Dag:
    return services.create_dag("m1", nodes=["a", "b"], edges=[("a", "b")], budget=3)


def test_custom_permissions_exist() -> None:
    codenames = set(
        Permission.objects.filter(content_type__app_label="dagstream_app").values_list(
            "codename", flat=True
        )
    )
    assert {"view_dag", "decide_gate", "control_dag"} <= codenames


def test_str_and_verbose_names(dag: Dag, make_user) -> None:
    assert str(dag) == "m1"
    assert str(Node.objects.get(dag=dag, node_id="a")) == "m1/a"
    assert str(Edge.objects.get(dag=dag)) == "m1: a -> b"
    assert str(Event.objects.get(dag=dag)) == "m1#1 execution_state"
    assert str(services.open_gate("m1", "b", {})) == "m1/b (pending)"
    token, key = tokens.create_api_token(make_user(username="u"))
    assert str(token) == f"{key[:10]}… (u)"
    assert key not in str(token)
    assert (Dag._meta.verbose_name, Dag._meta.verbose_name_plural) == ("DAG", "DAGs")
    assert ApiToken._meta.verbose_name == "API token"


def test_dag_properties(dag: Dag) -> None:
    assert dag.remaining == 3
    assert not dag.is_terminal
    for status in ("cancelled", "completed", "failed"):
        assert Dag(status=status).is_terminal
    for status in ("running", "paused", "cancelling"):
        assert not Dag(status=status).is_terminal
    assert Dag(budget=None, spent=2).remaining is None


def test_gate_decision_names() -> None:
    assert [Gate(status=s).decision for s in ("pending", "approved", "rejected", "modified")] == [
        None,
        "approve",
        "reject",
        "modify",
    ]


def test_status_choices_match_the_protocol() -> None:
    from dagstream_app import protocol

    assert tuple(Dag.Status.values) == protocol.EXECUTION_STATUSES
    assert tuple(Node.Status.values) == protocol.NODE_STATUSES


def test_dag_id_validator() -> None:
    Dag(dag_id="ok.id-1_2").full_clean()
    with pytest.raises(ValidationError):
        Dag(dag_id="not ok").full_clean()


def test_event_seq_is_unique_per_dag(dag: Dag) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(dag=dag, seq=1, type="error", payload={}, created_at=timezone.now())
    other = services.create_dag("m2")
    assert Event.objects.filter(seq=1).count() == 2  # same seq, other DAG
    assert other.last_seq == 1


def test_node_edge_gate_unique_per_dag(dag: Dag) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Node.objects.create(dag=dag, node_id="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Edge.objects.create(dag=dag, src="a", dst="b")
    services.open_gate("m1", "a", {})
    with pytest.raises(IntegrityError), transaction.atomic():
        Gate.objects.create(dag=dag, node_id="a")


def test_deleting_a_dag_deletes_its_rows(dag: Dag) -> None:
    services.open_gate("m1", "a", {})
    dag.delete()
    for model in (Node, Edge, Event, Gate):
        assert not model.objects.exists()


def test_events_order_by_seq(dag: Dag) -> None:
    services.reports("m1").node_state("a", "running")
    services.reports("m1").node_state("b", "running")
    assert list(Event.objects.filter(dag=dag).values_list("seq", flat=True)) == [1, 2, 3]
