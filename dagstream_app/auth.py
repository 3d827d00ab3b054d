"""Bearer-token authentication for WebSocket clients that have no session."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from dagstream_app import tokens


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
        return await super().__call__(scope, receive, send)
