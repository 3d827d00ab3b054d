"""Management commands: dagstream_token and dagstream_schema."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from dagstream_app import protocol, tokens
from dagstream_app.models import ApiToken

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
