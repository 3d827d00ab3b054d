"""WebSocket tickets: single-use, DAG-scoped, short-lived, stored as a SHA-256 only.

Browsers cannot set ``Authorization`` on a WebSocket, and a session cookie counts
only on the server's own origins. An app on another origin (or its backend) asks
``POST /dags/<dag_id>/ticket/`` for a ticket and connects with ``?ticket=<key>``;
the handshake consumes it (see :mod:`dagstream_app.auth`).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Literal

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from dagstream_app.conf import config
from dagstream_app.models import Dag, Ticket
from dagstream_app.tokens import hash_token

__all__ = ["TICKET_PREFIX", "TicketRefused", "issue_ticket", "redeem_ticket"]

TICKET_PREFIX = "dgt_"

Refusal = Literal["unknown", "expired", "wrong_dag", "inactive"]


class TicketRefused(Exception):
    """A ticket that lets no one in; ``reason`` says why (never the key)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(f"WebSocket ticket refused: {reason}.")
        self.reason: Refusal = reason


def issue_ticket(user: AbstractBaseUser, dag: Dag) -> tuple[str, int]:
    """A new ticket for ``user`` onto ``dag``: the key (shown once) and its lifetime in s.

    The caller has checked that ``user`` may view ``dag``; the consumer checks
    again when the ticket is used. Expired tickets are deleted on the way.
    """
    lifetime = int(config().ticket_seconds)
    now = timezone.now()
    Ticket.objects.filter(expires_at__lte=now).delete()
    key = TICKET_PREFIX + secrets.token_urlsafe(32)
    Ticket.objects.create(
        key_hash=hash_token(key),
        user_id=user.pk,
        dag=dag,
        expires_at=now + timedelta(seconds=lifetime),
    )
    return key, lifetime


def redeem_ticket(key: str, dag_id: str) -> AbstractBaseUser:
    """The user a ticket lets onto ``dag_id``; raises :class:`TicketRefused` otherwise.

    Every presentation consumes the ticket, the refused ones included: a key
    tried on the wrong DAG is gone too. Consumption is one ``DELETE``, so of two
    handshakes racing with one key, exactly one gets it.
    """
    found = (
        Ticket.objects.select_related("user").filter(key_hash=hash_token(key)).first()
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
    return found.user
