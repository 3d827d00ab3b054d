"""Extreme engine values: each is refused with InvalidDelta naming it, or it renders.

A monitoring layer must not be broken by what the engine it watches reports: a
finite cost of 1e308 against a budget of 0.01 once made the run page, the run
list and live dashboards fail (OverflowError), and integers past 64 bits, lone
surrogates and 5,001-digit integers escaped as OverflowError, UnicodeEncodeError
and ValueError instead of the promised InvalidDelta.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from dagstream_app import live, services, state
from dagstream_app.models import Dag, Event, Node
from dagstream_app.render.regions import cost_html

pytestmark = pytest.mark.django_db

HUGE = 10**400
MANY_DIGITS = 10**5_000  # 5,001 digits: str() of it raises ValueError by default
SURROGATE = "bad \ud800 text"


@pytest.fixture
def viewer(make_user) -> Client:
    client = Client()
    client.force_login(make_user("view_dag"))
    return client


def _run(dag_id: str = "vals", budget: float | None = None) -> str:
    services.create_dag(dag_id, name="vals", nodes=["a"], budget=budget)
    return dag_id


def _events(dag_id: str) -> int:
    return Event.objects.filter(dag_id=dag_id).count()


def test_a_huge_finite_cost_renders_on_every_page_and_in_the_api(viewer: Client) -> None:
    dag_id = _run(budget=0.01)
    services.reports(dag_id).cost(spent=1e308)
    for url in (f"/dags/{dag_id}/", "/dags/", f"/dags/{dag_id}/history/?seq=2"):
        response = viewer.get(url)
        assert response.status_code == 200, url
    snapshot = json.loads(viewer.get(f"/api/dags/{dag_id}/").content)
    assert snapshot["spent"] == 1e308  # a number, not null
    # The live dashboard's fragments render too (they closed the socket with 1011).
    assert "over" in str(cost_html(1e308, 0.01))
    snap = state.snapshot(dag_id)
    assert snap is not None
    assert live.snapshot_message(snap, (True, True))


def test_a_running_cost_that_would_overflow_is_refused_and_changes_nothing() -> None:
    dag_id = _run(budget=1.0)
    services.reports(dag_id).cost(add=1e308)
    before = _events(dag_id)
    with pytest.raises(services.InvalidDelta, match="running cost"):
        services.reports(dag_id).cost(add=1e308)
    assert Dag.objects.get(pk=dag_id).spent == 1e308
    assert _events(dag_id) == before


@pytest.mark.parametrize("field", ["spent", "add", "budget"])
def test_a_cost_no_float_can_hold_is_refused_by_name(field: str) -> None:
    dag_id = _run()
    with pytest.raises(services.InvalidDelta, match=field):
        services.reports(dag_id).cost(**{field: HUGE})
    assert _events(dag_id) == 1  # only the creation's


@pytest.mark.parametrize(
    ("output", "named"),
    [
        ({"rows": HUGE}, "integer of 1329 bits"),
        ({"rows": MANY_DIGITS}, "integer of"),
        ([-(2**63) - 1], "integer of"),
        ({"note": SURROGATE}, "lone surrogate"),
        ({SURROGATE: 1}, "lone surrogate"),
        (SURROGATE, "lone surrogate"),
    ],
)
def test_outputs_json_cannot_carry_are_refused_by_name(output: Any, named: str) -> None:
    dag_id = _run()
    with pytest.raises(services.InvalidDelta, match=named) as refused:
        services.reports(dag_id).node_state("a", "completed", output=output)
    assert "output" in str(refused.value)
    assert Node.objects.get(dag_id=dag_id, node_id="a").status == "pending"


def test_metrics_and_presentations_are_checked_alike() -> None:
    dag_id = _run()
    with pytest.raises(services.InvalidDelta, match="integer of"):
        services.reports(dag_id).node_state("a", "running", metrics={"tokens": MANY_DIGITS})
    with pytest.raises(services.InvalidDelta, match="lone surrogate"):
        services.open_gate(dag_id, "a", {"title": SURROGATE})
    assert _events(dag_id) == 1


def test_the_largest_storable_values_are_kept_as_they_are() -> None:
    dag_id = _run()
    output = {"max": 2**64 - 1, "min": -(2**63), "text": "café ☕", "big": 1e308}
    services.reports(dag_id).node_state("a", "completed", output=output)
    stored = Node.objects.get(dag_id=dag_id, node_id="a").output
    # PostgreSQL's jsonb writes 1e308 out in digits, which reads back as an int.
    assert float(stored.pop("big")) == output.pop("big")
    assert stored == output


@pytest.mark.parametrize("name", [SURROGATE, "nul \x00"])
def test_names_and_labels_with_text_that_cannot_be_stored_are_refused(name: str) -> None:
    with pytest.raises(services.InvalidDelta, match="not stored"):
        services.create_dag("labels", name=name, nodes=["a"])
    with pytest.raises(services.InvalidDelta, match="not stored"):
        services.create_dag("labels", nodes=[{"id": "a", "label": name}])
    assert not Dag.objects.filter(pk="labels").exists()
