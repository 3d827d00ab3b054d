"""Who a WebSocket handshake is: a bearer token, a ticket, or the session on our own origins.

- ``Authorization: Bearer <key>`` decides when sent (non-browser clients).
- Otherwise ``?ticket=<key>`` (browsers on other origins): consumed here, once,
  and removed from the scope's query string so nothing downstream sees it.
- Otherwise the session user from ``AuthMiddlewareStack``, but only when the
  handshake's Origin is one of ``ALLOWED_HOSTS``: a page on an origin allowed
  only for tickets cannot ride a user's cookie (cross-site WebSocket hijacking).

A refused ticket or token leaves the user anonymous; the consumer then closes 4001.

A socket's credential is read at the handshake, but a token can be revoked, a user
deactivated and a session ended while the socket stays open. :func:`current_user`
reads the credential again, so consumers authorize each command against the user as
they are now and close the sockets whose credential has gone. A ticket's socket
has the credential that asked for the ticket (:func:`tickets.issuer_of`): it ends
with that token or session.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any
from urllib.parse import ParseResult, parse_qsl, urlencode, urlparse

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_lazy as _

from dagstream_app import tickets, tokens
from dagstream_app.conf import config

__all__ = [
    "ANONYMOUS_BECAUSE",
    "CREDENTIAL",
    "NOT_SIGNED_IN",
    "SIGNED_OUT",
    "AllowedOriginsValidator",
    "TokenAuthMiddleware",
    "current_user",
    "own_origins",
    "ticket_origins",
]

# What authenticated a socket, for re-checks: ("token", the key's SHA-256),
# ("session", key), or for a ticket its issuer's (tickets.Issuer; ("user", "")
# when the host's code issued it: then the user alone).
CREDENTIAL = "dagstream.credential"

log = logging.getLogger(__name__)

# Why a handshake left its socket anonymous: the reason of its 4001 close, for the
# person reading the client's status (at most 123 bytes of UTF-8 reach them).
ANONYMOUS_BECAUSE = "dagstream.anonymous_because"
NOT_SIGNED_IN = _("Not signed in: sign in to this site first (see docs/client.md#authentication).")
NO_TICKET = _(
    "No ticket: a page on another origin needs one, sessions do not count "
    "(see docs/client.md#authentication)."
)
TICKET_REFUSED = _("Ticket refused: unknown, used, expired, or for another run.")
ORIGIN_NOT_ALLOWED = _(
    "Origin not allowed: add it to DAGSTREAM ALLOWED_ORIGINS (see docs/client.md#authentication)."
)
TOKEN_REFUSED = _("Bearer token refused: unknown or revoked.")
SIGNED_OUT = _("Signed out: the session, ticket or token no longer holds.")


def own_origins() -> list[str]:
    """The server's own origins: ``ALLOWED_HOSTS``, as Channels' ``AllowedHostsOriginValidator``."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts


def ticket_origins() -> list[str]:
    """Origins a ticket may be used from: our own and ``DAGSTREAM["ALLOWED_ORIGINS"]``."""
    return [*own_origins(), *config().allowed_origins]


class AllowedOriginsValidator(OriginValidator):
    """The handshake's Origin check for hosts with apps on other origins.

    Lets through ``ALLOWED_HOSTS`` (like ``AllowedHostsOriginValidator``) and
    ``DAGSTREAM["ALLOWED_ORIGINS"]``, read at each handshake; refuses the rest
    with HTTP 403. From those other origins only a ticket authenticates.
    """

    def __init__(self, application: Any) -> None:
        super().__init__(application, [])

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        return _matches(parsed_origin, ticket_origins())


def _origin(scope: Any) -> ParseResult | None:
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            text: str = value.decode("latin-1")
            return urlparse(text)
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _same_port(origin: ParseResult, scope: Any) -> bool:
    """The Origin names the port the handshake came to (ALLOWED_HOSTS compares no ports).

    Without a Host header there is nothing to compare, and the host check alone decides.
    """
    host = dict(scope.get("headers", ())).get(b"host")
    if host is None:
        return True
    _, _, port_text = host.decode("latin-1").rpartition(":")
    port = int(port_text) if port_text.isdigit() else None
    try:
        theirs = origin.port or _DEFAULT_PORTS.get(origin.scheme)
    except ValueError:  # a malformed port in the Origin
        return False
    ours = port or _DEFAULT_PORTS.get(origin.scheme)
    return theirs == ours


def _matches(origin: ParseResult | None, patterns: list[str]) -> bool:
    return bool(OriginValidator(None, patterns).valid_origin(origin))


class TokenAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from a bearer token or a ticket (see the module's docstring)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        header = dict(scope.get("headers", ())).get(b"authorization")
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        keys = [value for name, value in query if name == "ticket"]
        if keys:
            rest = urlencode([(name, value) for name, value in query if name != "ticket"])
            scope = dict(scope, query_string=rest.encode("latin-1"))
        if header is not None:
            text = header.decode("latin-1")
            user = await database_sync_to_async(tokens.user_for_authorization)(text)
            scope = dict(scope, user=user or AnonymousUser())
            if user is None:
                scope[ANONYMOUS_BECAUSE] = TOKEN_REFUSED
            key = tokens.bearer_key(text)
            scope[CREDENTIAL] = ("token", "" if key is None else tokens.hash_token(key))
        elif keys:
            scope = await database_sync_to_async(self._ticket_scope)(scope, keys)
        else:
            origin = _origin(scope)
            if origin is not None and not (
                _matches(origin, own_origins()) and _same_port(origin, scope)
            ):
                scope = dict(scope, user=AnonymousUser(), **{ANONYMOUS_BECAUSE: NO_TICKET})
            elif scope.get("session") is not None and scope["session"].session_key:
                scope = dict(scope, **{CREDENTIAL: ("session", scope["session"].session_key)})
        return await super().__call__(scope, receive, send)

    @staticmethod
    def _ticket_scope(scope: Any, keys: list[str]) -> Any:
        """``scope`` with the ticket's user and its issuer's credential (anonymous if refused)."""
        dag_id = scope.get("url_route", {}).get("kwargs", {}).get("dag_id", "")
        anonymous = dict(
            scope,
            user=AnonymousUser(),
            **{CREDENTIAL: tickets.NO_ISSUER, ANONYMOUS_BECAUSE: TICKET_REFUSED},
        )
        try:
            user, issuer = tickets.redeem_ticket(keys[0], dag_id)
        except tickets.TicketRefused as exc:
            log.info("dagstream: WebSocket ticket refused on %r: %s", dag_id, exc.reason)
            return anonymous
        # Checked after the ticket is consumed: one shown to a wrong origin is spent.
        if len(keys) > 1 or not _matches(_origin(scope), ticket_origins()):
            log.info("dagstream: WebSocket ticket refused on %r: origin", dag_id)
            return dict(anonymous, **{ANONYMOUS_BECAUSE: ORIGIN_NOT_ALLOWED})
        scope = dict(scope, user=user, **{CREDENTIAL: issuer})
        if current_user(scope) is None:  # its token was revoked, its session ended, since
            log.info("dagstream: WebSocket ticket refused on %r: issuer gone", dag_id)
            return anonymous
        return scope


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
        fresh = tokens.user_for_token_hash(key)
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
