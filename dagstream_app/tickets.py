"""WebSocket tickets: single-use, DAG-scoped, short-lived, stored as a SHA-256 only.

Browsers cannot set ``Authorization`` on a WebSocket, and a session cookie counts
only on the server's own origins. An app on another origin (or its backend) asks
``POST /dags/<dag_id>/ticket/`` for a ticket and connects with ``?ticket=<key>``;
the handshake consumes it (see :mod:`dagstream_app.auth`).

A ticket remembers what it was asked with (its :data:`Issuer`): the socket it
opens is re-checked against that bearer token or session, and closes when it is
revoked or ends, as the issuer's own sockets do.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Literal

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone

from dagstream_app.conf import config
from dagstream_app.models import ApiToken, Dag, Ticket
from dagstream_app.tokens import bearer_key, hash_token

__all__ = [
    "NO_ISSUER",
    "TICKET_PREFIX",
    "Issuer",
    "TicketRefused",
    "issue_ticket",
    "issuer_of",
    "redeem_ticket",
]

TICKET_PREFIX = "dgt_"

# What asked for a ticket, as a socket's credential (see auth.CREDENTIAL):
# ("token", the token's SHA-256), ("session", the session key), or ("user", "")
# when the host's own code issued it for a user, with no credential to follow.
Issuer = tuple[Literal["token", "session", "user"], str]
NO_ISSUER: Issuer = ("user", "")

Refusal = Literal["unknown", "expired", "wrong_dag", "inactive"]


class TicketRefused(Exception):
    """A ticket that lets no one in; ``reason`` says why (never the key)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(f"WebSocket ticket refused: {reason}.")
        self.reason: Refusal = reason


def issuer_of(request: HttpRequest) -> Issuer:
    """What an authenticated request for a ticket came with: its bearer token, or its session."""
    key = bearer_key(request.headers.get("Authorization", ""))
    if key is not None:
        return ("token", hash_token(key))
    session_key = request.session.session_key
    return ("session", session_key) if session_key else NO_ISSUER


def issue_ticket(user: AbstractBaseUser, dag: Dag, issuer: Issuer = NO_ISSUER) -> tuple[str, int]:
    """A new ticket for ``user`` onto ``dag``: the key (shown once) and its lifetime in s.

    The caller has checked that ``user`` may view ``dag``; the consumer checks
    again when the ticket is used. ``issuer`` (see :func:`issuer_of`) is what the
    ticket's socket lasts no longer than. Expired tickets are deleted on the way.
    """
    lifetime = int(config().ticket_seconds)
    now = timezone.now()
    Ticket.objects.filter(expires_at__lte=now).delete()
    kind, credential = issuer
    key = TICKET_PREFIX + secrets.token_urlsafe(32)
    Ticket.objects.create(
        key_hash=hash_token(key),
        user_id=user.pk,
        dag=dag,
        expires_at=now + timedelta(seconds=lifetime),
        issuer_token=(
            ApiToken.objects.filter(key_hash=credential).first() if kind == "token" else None
        ),
        issuer_session=credential if kind == "session" else "",
    )
    return key, lifetime


def redeem_ticket(key: str, dag_id: str) -> tuple[AbstractBaseUser, Issuer]:
    """The user a ticket lets onto ``dag_id``, and its issuer; else :class:`TicketRefused`.

    Every presentation consumes the ticket, the refused ones included: a key
    tried on the wrong DAG is gone too. Consumption is one ``DELETE``, so of two
    handshakes racing with one key, exactly one gets it.
    """
    found = (
        Ticket.objects.select_related("user", "issuer_token")
        .filter(key_hash=hash_token(key))
        .first()
        if key.startswith(TICKET_PREFIX)
        else None
    )
    if found is None:
        raise TicketRefused("unknown")
    deleted, _ = Ticket.objects.filter(pk=found.pk).delete()
    if not deleted:  # another handshake consumed it first
        raise TicketRefused("unknown")
    if found.expires_at <= timezone.now():
        raise TicketRefused("expired")
    if found.dag_id != dag_id:
        raise TicketRefused("wrong_dag")
    if not found.user.is_active:
        raise TicketRefused("inactive")
    return found.user, _issuer(found)


def _issuer(ticket: Ticket) -> Issuer:
    if ticket.issuer_token is not None:
        return ("token", ticket.issuer_token.key_hash)
    if ticket.issuer_session:
        return ("session", ticket.issuer_session)
    return NO_ISSUER
