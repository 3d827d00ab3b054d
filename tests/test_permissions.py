"""permissions: Django permissions first, then PERMISSION_HOOK narrows per DAG."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import override_settings

from dagstream_app import services
from dagstream_app.errors import DagstreamError
from dagstream_app.models import Dag
from dagstream_app.permissions import PERMISSIONS, Voter, allowed, authorize, get_hook, visible
from tests import hooks

pytestmark = pytest.mark.django_db

HOOK = "tests.hooks.public_only"


@pytest.fixture(autouse=True)
def _reset_calls():
    hooks.calls.clear()


@pytest.fixture
def dags() -> tuple[Dag, Dag]:
    return (
        services.create_dag("pub", name="public", nodes=["n"]),
        services.create_dag("priv", name="private", nodes=["n"]),
    )


def test_permission_names() -> None:
    assert PERMISSIONS == {
        "view": "dagstream_app.view_dag",
        "decide": "dagstream_app.decide_gate",
        "control": "dagstream_app.control_dag",
        "delete": "dagstream_app.delete_dag",
    }


def test_each_action_needs_its_django_permission(make_user, dags) -> None:
    pub, _ = dags
    viewer = make_user("view_dag")
    decider = make_user("decide_gate")
    controller = make_user("control_dag")
    deleter = make_user("delete_dag")
    pairs = (("view", viewer), ("decide", decider), ("control", controller), ("delete", deleter))
    for action, user in pairs:
        for other in ("view", "decide", "control", "delete"):
            assert allowed(user, other, pub) is (other == action)  # type: ignore[arg-type]
            assert allowed(user, other) is (other == action)  # type: ignore[arg-type]


def test_superuser_may_do_everything(dags) -> None:
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    assert all(allowed(root, a, dags[0]) for a in ("view", "decide", "control"))


def test_group_permissions_count(make_user, dags) -> None:
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="operators")
    group.permissions.set(Permission.objects.filter(codename="control_dag"))
    user = make_user()
    user.groups.add(group)
    user = User.objects.get(pk=user.pk)
    assert allowed(user, "control", dags[0])


def test_anonymous_none_and_inactive_are_refused(make_user, dags) -> None:
    pub, _ = dags
    assert not allowed(None, "view", pub)
    assert not allowed(AnonymousUser(), "view", pub)
    user = make_user("view_dag", "decide_gate", "control_dag")
    user.is_active = False
    user.save()
    assert not any(allowed(user, a, pub) for a in ("view", "decide", "control"))
    root = User.objects.create_superuser("root", "root@example.com", "pw", is_active=False)
    assert not allowed(root, "view", pub)


@override_settings(DAGSTREAM={"PERMISSION_HOOK": HOOK})
def test_hook_narrows_per_dag(make_user, dags) -> None:
    pub, priv = dags
    user = make_user("view_dag", "decide_gate", "control_dag")
    assert allowed(user, "view", pub)
    assert not allowed(user, "view", priv)
    assert not allowed(user, "control", priv)
    assert allowed(user, "decide")  # no DAG: Django's permission alone, the hook is not asked
    assert hooks.calls == [
        (user.username, "view", "pub"),
        (user.username, "view", "priv"),
        (user.username, "control", "priv"),
    ]


@override_settings(DAGSTREAM={"PERMISSION_HOOK": "tests.hooks.always"})
def test_hook_cannot_widen(make_user, dags) -> None:
    assert not allowed(make_user(), "view", dags[0])
    assert not allowed(AnonymousUser(), "view", dags[0])


def test_hook_may_be_a_callable(make_user, dags) -> None:
    user = make_user("view_dag")
    with override_settings(DAGSTREAM={"PERMISSION_HOOK": hooks.public_only}):
        assert not allowed(user, "view", dags[1])
        assert allowed(user, "view", dags[0])


def test_hook_cache_follows_the_setting(make_user, dags) -> None:
    user = make_user("view_dag")
    assert get_hook() is None
    with override_settings(DAGSTREAM={"PERMISSION_HOOK": HOOK}):
        assert get_hook() is hooks.public_only
        assert not allowed(user, "view", dags[1])
    assert get_hook() is None
    assert allowed(user, "view", dags[1])


def test_bad_hook_path_fails_loudly(make_user, dags) -> None:
    with (
        override_settings(DAGSTREAM={"PERMISSION_HOOK": "tests.hooks.nope"}),
        pytest.raises(ImportError),
    ):
        allowed(make_user("view_dag"), "view", dags[0])


@override_settings(DAGSTREAM={"PERMISSION_HOOK": HOOK})
def test_services_apply_the_hook(make_user, dags) -> None:
    user = make_user("view_dag", "decide_gate", "control_dag")
    services.open_gate("priv", "n", {})
    with pytest.raises(services.Forbidden):
        services.decide_gate("priv", "n", "approve", actor=user)
    with pytest.raises(services.Forbidden):
        services.control("priv", "pause", actor=user)
    assert Dag.objects.get(pk="priv").status == "running"
    services.control("pub", "pause", actor=user)
    assert Dag.objects.get(pk="pub").status == "paused"


@override_settings(DAGSTREAM={"PERMISSION_HOOK": HOOK})
def test_authorize_checks_in_order(make_user, dags) -> None:
    viewer = make_user("view_dag")
    assert authorize(viewer, "view", "pub").dag_id == "pub"
    cases = [
        (AnonymousUser(), "pub", "unauthenticated"),
        (make_user(), "pub", "forbidden"),
        (make_user(), "ghost", "forbidden"),  # no permission: an unknown id tells nothing
        (viewer, "ghost", "not_found"),
        (viewer, "priv", "forbidden"),  # the hook, about a real DAG
    ]
    for user, dag_id, reason in cases:
        with pytest.raises(DagstreamError) as refused:
            authorize(user, "view", dag_id)
        assert refused.value.code == reason
    assert all(dag_id != "ghost" for _, _, dag_id in hooks.calls)


@override_settings(DAGSTREAM={"PERMISSION_HOOK": HOOK})
def test_visible_filters_by_the_hook(make_user, dags) -> None:
    assert visible(make_user("view_dag"), Dag.objects.order_by("pk")) == [dags[0]]
    assert list(visible(make_user(), Dag.objects.all())) == []


def test_a_voter_is_named_by_their_names_alone() -> None:
    # What the run page hands its script (Voter.names) is the rule named_in applies.
    voter = Voter("bob", frozenset({"ops", "release managers"}))
    assert voter.names == {"bob", "group:ops", "group:release managers"}
    for assignees, named in (
        (["bob"], True),
        (["ann", "group:ops"], True),
        (["group:bob", "ops", "release managers"], False),  # a group bob, groups as names
        ([], True),  # no one named: anyone who may decide
    ):
        assert voter.named_in(assignees) is named, assignees
    # A name that reads as a group's names the group, even when it is someone's username.
    odd = Voter("group:ops", frozenset())
    assert odd.names == set() and not odd.named_in(["group:ops"])
