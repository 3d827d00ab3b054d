"""Management commands: dagstream_token, dagstream_schema and dagstream_prune."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from dagstream_app import protocol, services, tokens
from dagstream_app.models import ApiToken, Dag, Event

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_token_is_the_last_word_of_the_last_line(make_user) -> None:
    user = make_user(username="ci-bot")
    output = run("dagstream_token", "ci-bot")
    key = output.strip().splitlines()[-1].split()[-1]
    assert key.startswith(tokens.TOKEN_PREFIX)
    assert tokens.user_for_token(key) == user
    assert output.strip().splitlines()[-1] == f"Authorization: Bearer {key}"
    assert "shown only once" in output


def test_only_the_hash_is_stored(make_user) -> None:
    make_user(username="ci-bot")
    key = run("dagstream_token", "ci-bot", "--name", "nightly").split()[-1]
    token = ApiToken.objects.get()
    assert (token.key_hash, token.name, token.user.username) == (
        tokens.hash_token(key),
        "nightly",
        "ci-bot",
    )
    assert key not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert token.prefix == key[:10]


def test_each_run_makes_a_new_token(make_user) -> None:
    make_user(username="ci-bot")
    first = run("dagstream_token", "ci-bot").split()[-1]
    second = run("dagstream_token", "ci-bot").split()[-1]
    assert first != second
    assert ApiToken.objects.count() == 2


def test_unknown_user_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("dagstream_token", "ghost", stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_inactive_user_gets_no_token(make_user) -> None:
    user = make_user(username="gone")
    User.objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(CommandError, match="'gone' is inactive"):
        call_command("dagstream_token", "gone", stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_username_is_required() -> None:
    with pytest.raises(CommandError, match="username"):
        call_command("dagstream_token", stdout=StringIO())


def test_schema_prints_valid_json_with_every_event_type() -> None:
    schema = json.loads(run("dagstream_schema"))
    text = json.dumps(schema)
    for kind in (*protocol.EVENT_TYPES, *protocol.CLIENT_TYPES, "ack", "snapshot"):
        assert f'"enum": ["{kind}"]' in text, kind
    assert set(schema["properties"]) == {"server_event", "client_command", "server_reply"}
    assert len(schema["properties"]["server_event"]["oneOf"]) == len(protocol.EVENT_TYPES)


# ----------------------------------------------------------------- prune


def _finished_run(dag_id: str, days_ago: float) -> None:
    services.create_dag(dag_id, nodes=["n"])
    services.reports(dag_id).complete()
    Dag.objects.filter(pk=dag_id).update(finished_at=timezone.now() - timedelta(days=days_ago))


def test_prune_deletes_only_runs_finished_before_the_age() -> None:
    for i in range(5):
        _finished_run(f"old-{i}", days_ago=40 + i)
    _finished_run("recent", days_ago=2)
    services.create_dag("running", nodes=["n"])
    out = run("dagstream_prune", "--older-than", "30d", "--dry-run")
    assert "Would delete 5 run(s)" in out
    assert Dag.objects.count() == 7
    out = run("dagstream_prune", "--older-than", "30d", "--batch-size", "2")
    assert out.count("so far") == 3  # batches of 2, 2 and 1
    assert "Deleted 5 run(s)" in out.splitlines()[-1]
    assert sorted(Dag.objects.values_list("pk", flat=True)) == ["recent", "running"]
    assert not Event.objects.filter(dag__dag_id__startswith="old-").exists()
    assert "Deleted 1 run(s)" in run("dagstream_prune", "--older-than", "12h").splitlines()[-1]
    assert list(Dag.objects.values_list("pk", flat=True)) == ["running"]


def test_prune_uses_the_retention_setting(settings) -> None:
    _finished_run("old", days_ago=10)
    _finished_run("new", days_ago=1)
    with pytest.raises(CommandError, match="RETENTION_DAYS"):
        run("dagstream_prune")
    settings.DAGSTREAM = {"RETENTION_DAYS": 7}
    run("dagstream_prune")
    assert list(Dag.objects.values_list("pk", flat=True)) == ["new"]


@pytest.mark.parametrize("age", ["30", "d", "-1d", "3w", "", "999999999d", "1e400d", "800000d"])
def test_prune_refuses_a_bad_age(age: str) -> None:
    # Ages past timedelta's range, or reaching before the year 1, were OverflowErrors.
    with pytest.raises(CommandError, match="Bad age"):
        run("dagstream_prune", f"--older-than={age}")


@pytest.mark.parametrize("days", [0, -3, 0.0, float("inf"), "30"])
def test_prune_refuses_a_retention_that_is_not_a_positive_number(settings, days) -> None:
    # 0 or less would delete every finished run: refused, and nothing is deleted.
    _finished_run("old", days_ago=10)
    settings.DAGSTREAM = {"RETENTION_DAYS": days}
    with pytest.raises(CommandError, match="RETENTION_DAYS must be"):
        run("dagstream_prune")
    assert list(Dag.objects.values_list("pk", flat=True)) == ["old"]


def test_prune_refuses_a_bad_batch_size() -> None:
    with pytest.raises(CommandError, match="batch-size"):
        run("dagstream_prune", "--older-than", "1d", "--batch-size", "0")
