"""tokens: bearer keys shown once, stored hashed, refused once revoked."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from dagstream_app import tokens
from dagstream_app.models import ApiToken

pytestmark = pytest.mark.django_db


def test_tokens_are_stored_hashed_only(make_user) -> None:
    user = make_user()
    token, key = tokens.create_api_token(user, "ci")
    assert key.startswith(tokens.TOKEN_PREFIX)
    assert len(key) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_hash == tokens.hash_token(key)
    assert stored.prefix == key[:10]
    assert key not in {str(v) for v in ApiToken.objects.values().get(pk=token.pk).values()}
    assert tokens.user_for_token(key) == user
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_user_for_token_refuses_bad_keys_and_inactive_users(make_user) -> None:
    user = make_user()
    _, key = tokens.create_api_token(user)
    assert tokens.user_for_token(key + "x") is None
    assert tokens.user_for_token(key[len(tokens.TOKEN_PREFIX) :]) is None
    assert tokens.user_for_token("") is None
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert tokens.user_for_token(key) is None
    ApiToken.objects.filter(user=user).delete()
    User.objects.filter(pk=user.pk).update(is_active=True)
    assert tokens.user_for_token(key) is None  # revoked


def test_hash_token_is_sha256_hex() -> None:
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert tokens.hash_token("abc") == digest


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer dgs_abc", "dgs_abc"),
        ("bearer  dgs_abc ", "dgs_abc"),
        ("Bearer ", None),
        ("Bearer", None),
        ("Basic dXNlcjpwdw==", None),
        ("", None),
    ],
)
def test_bearer_key_is_the_one_parse_of_the_authorization_header(
    header: str, key: str | None
) -> None:
    assert tokens.bearer_key(header) == key


def test_user_for_authorization_reads_a_bearer_header(make_user) -> None:
    user = make_user()
    _, key = tokens.create_api_token(user)
    assert tokens.user_for_authorization(f"Bearer {key}") == user
    assert tokens.user_for_authorization(f"Token {key}") is None
