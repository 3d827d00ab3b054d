"""``manage.py dagstream_grant``: the README's one step from a fresh project to a person
who may watch, decide and control runs (a user or a group, made on request)."""

from __future__ import annotations

import io
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

ALL = {"dagstream_app.view_dag", "dagstream_app.decide_gate", "dagstream_app.control_dag"}


def grant(*args: str) -> str:
    out = StringIO()
    call_command("dagstream_grant", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def typed_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # The command reads a password from standard input when it is no terminal.
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-42\n"))


def _perms(username: str) -> set[str]:
    return User.objects.get(username=username).get_all_permissions()


def test_a_user_gets_all_three_permissions_and_stays_non_staff(make_user: Any) -> None:
    make_user(username="grace")
    out = grant("grace")
    assert _perms("grace") == ALL
    user = User.objects.get(username="grace")
    assert not user.is_staff and not user.is_superuser
    assert "dagstream_app.decide_gate (decide)" in out


def test_flags_name_some_permissions(make_user: Any) -> None:
    make_user(username="ada")
    grant("ada", "--watch")
    assert _perms("ada") == {"dagstream_app.view_dag"}
    grant("ada", "--decide")  # adds, takes nothing away
    assert _perms("ada") == {"dagstream_app.view_dag", "dagstream_app.decide_gate"}


def test_create_makes_the_user_with_the_password_given() -> None:
    out = grant("grace", "--create")
    assert "Created user 'grace'" in out
    assert authenticate(username="grace", password="a-long-password-42") is not None
    assert _perms("grace") == ALL
    again = grant("grace", "--create")  # the README's step, run twice
    assert "Created" not in again and _perms("grace") == ALL
    assert User.objects.count() == 1


def test_a_group_and_its_members(make_user: Any) -> None:
    make_user(username="lin")
    assert "Created group 'operators'" in grant("operators", "--group", "--create", "--watch")
    User.objects.get(username="lin").groups.add(Group.objects.get(name="operators"))
    assert _perms("lin") == {"dagstream_app.view_dag"}


def test_an_unknown_user_or_group_is_a_clear_error_and_nothing_is_made() -> None:
    with pytest.raises(CommandError, match="No user named 'ghost' \\(--create makes one\\)"):
        grant("ghost")
    with pytest.raises(CommandError, match="No group named 'ops' \\(--create makes it\\)"):
        grant("ops", "--group")
    assert not User.objects.exists() and not Group.objects.exists()


def test_an_inactive_user_is_refused(make_user: Any) -> None:
    user = make_user(username="gone")
    User.objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(CommandError, match="'gone' is inactive"):
        grant("gone")
    assert _perms("gone") == set()


@pytest.mark.parametrize(
    ("typed", "message"),
    [("\n", "An empty password"), ("1234\n", "too short")],
)
def test_a_bad_password_makes_no_user(
    monkeypatch: pytest.MonkeyPatch, typed: str, message: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    with pytest.raises(CommandError, match=message):
        grant("grace", "--create")
    assert not User.objects.exists()
