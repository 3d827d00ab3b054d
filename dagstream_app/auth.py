"""Who is on a WebSocket: bearer tokens for clients without a session, and re-checks.

A socket's credential is read at the handshake, but a token can be revoked, a user
deactivated and a session ended while the socket stays open. :func:`current_user`
reads the credential again, so consumers can authorize each command against the
user as they are now and close the sockets whose credential has gone.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare

from dagstream_app import tokens

__all__ = ["CREDENTIAL", "TokenAuthMiddleware", "current_user"]

# The scope key naming what authenticated the socket: ("token", key) or ("session", key).
CREDENTIAL = "dagstream.credential"


class TokenAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from ``Authorization: Bearer <key>`` when that header is sent.

    A bad or revoked key makes the user anonymous (the consumer then closes with
    4001); without the header the session user from ``AuthMiddlewareStack`` stays.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        header = dict(scope.get("headers", ())).get(b"authorization")
        if header is not None:
            scheme, _, key = header.decode("latin-1").partition(" ")
            user = None
            if scheme.lower() == "bearer" and key.strip():
                user = await database_sync_to_async(tokens.user_for_token)(key.strip())
            scope = dict(scope, user=user or AnonymousUser())
            scope[CREDENTIAL] = ("token", key.strip())
        elif scope.get("session") is not None and scope["session"].session_key:
            scope = dict(scope, **{CREDENTIAL: ("session", scope["session"].session_key)})
        return await super().__call__(scope, receive, send)


def current_user(scope: Any) -> Any:
    """The socket's user as of now, or None if their credential no longer holds.

    A token must still exist and belong to an active user; a session must still
    exist, name the same user and carry their current password hash.
    """
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    kind, key = scope.get(CREDENTIAL, ("user", ""))
    if kind == "token":
        fresh = tokens.user_for_token(key)
        return fresh if fresh is not None and fresh.pk == user.pk else None
    fresh = get_user_model()._default_manager.filter(pk=user.pk, is_active=True).first()
    if fresh is None or kind != "session":
        return fresh
    session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    if not session.exists(key) or str(session.get(SESSION_KEY)) != str(fresh.pk):
        return None  # signed out, or the session was ended
    if not session.get(BACKEND_SESSION_KEY):
        return None
    expected = getattr(fresh, "get_session_auth_hash", None)
    if expected is not None and not constant_time_compare(
        session.get(HASH_SESSION_KEY) or "", expected()
    ):
        return None  # the password changed since: Django ends such sessions
    return fresh
