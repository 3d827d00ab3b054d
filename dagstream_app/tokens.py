"""API tokens for clients without a session: shown once, kept as a SHA-256, revoked by delete."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from dagstream_app.models import ApiToken

__all__ = [
    "TOKEN_PREFIX",
    "bearer_key",
    "create_api_token",
    "hash_token",
    "revoke_api_token",
    "user_for_authorization",
    "user_for_token",
    "user_for_token_hash",
]

TOKEN_PREFIX = "dgs_"


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_token(user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """Create a bearer token for ``user``; returns it with the key (shown once, never stored)."""
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user_id=user.pk, name=name, key_hash=hash_token(key), prefix=key[: len(TOKEN_PREFIX) + 6]
    )
    return token, key


def revoke_api_token(token: ApiToken) -> None:
    """Delete ``token``: its key is refused from the next handshake on."""
    ApiToken.objects.filter(pk=token.pk).delete()


def user_for_token(key: str) -> AbstractBaseUser | None:
    """The active user a bearer key belongs to, or None. Notes the token's last use."""
    return user_for_token_hash(hash_token(key)) if key.startswith(TOKEN_PREFIX) else None


def user_for_token_hash(key_hash: str) -> AbstractBaseUser | None:
    """The active user of the token stored as ``key_hash``, or None once it is revoked.

    How an open socket's token is read again: the socket keeps the hash, not the key.
    """
    token = ApiToken.objects.select_related("user").filter(key_hash=key_hash).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def bearer_key(header: str) -> str | None:
    """The key of an ``Authorization`` header value ``Bearer <key>``; None for any other.

    The one parse of the header, for HTTP requests and WebSocket handshakes alike.
    """
    scheme, _, key = header.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def user_for_authorization(header: str) -> AbstractBaseUser | None:
    """The user an ``Authorization`` header value (``Bearer <key>``) names, or None.

    Any other scheme, an empty key or a bad key is None: a request that sends
    the header is then anonymous, whatever cookie comes with it.
    """
    key = bearer_key(header)
    return None if key is None else user_for_token(key)
