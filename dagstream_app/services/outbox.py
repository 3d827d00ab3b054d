"""The notification outbox (``models.Notification``): written with the gate, sent later.

:func:`enqueue_opened` runs inside the transaction that opens gates: one small row per
gate, nothing else, so an engine never waits for a mail server. A sender
(:mod:`dagstream_app.notify.sender`) then, off the write path:

- :func:`claim`\\ s due rows under a lease: the UPDATE that takes them re-checks that
  nobody holds them (with ``SKIP LOCKED`` on PostgreSQL, so senders pass each other),
  so each row is sent by one sender at a time across processes; a sender that dies
  holding one leaves it to be taken again when the lease ends (at least once);
- :func:`expand`\\ s a gate's row into one ``email`` row per person (with a signed
  link each) and one ``webhook`` row per URL;
- marks each row :func:`done` (sent, or skipped when the gate no longer waits) or
  :func:`failed` (tried again later, twice as late each time, until
  ``NOTIFY_MAX_ATTEMPTS``);
- :func:`escalate_due` writes the escalation row of gates waiting past
  ``ESCALATE_AFTER_SECONDS``.

Each row has a unique ``key``, so a message is written once however often it is asked
for, and a row marked sent is never taken again.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from dagstream_app.conf import config
from dagstream_app.models import Gate, GateLink, Notification
from dagstream_app.permissions import allowed, escalation_recipients, gate_recipients

__all__ = [
    "LEASE_SECONDS",
    "claim",
    "create_link",
    "done",
    "enqueue_opened",
    "escalate_due",
    "expand",
    "failed",
]

# How long a claimed row is a sender's own: far longer than one message takes
# (webhooks time out after 10 s); past it a sender that died is assumed gone.
LEASE_SECONDS = 120.0
MAX_RETRY_SECONDS = 3600.0

Stage = Notification.Stage
Status = Notification.Status
Channel = Notification.Channel


def _key(gate: Gate, stage: str, *parts: str) -> str:
    """A message's unique key: its gate, its stage and what tells it from its siblings."""
    return ":".join((str(gate.pk), stage, *parts))


def _row(
    gate: Gate,
    stage: str,
    channel: str,
    key: str,
    now: datetime,
    *,
    user: Any = None,
    link: GateLink | None = None,
    target: str = "",
) -> Notification:
    """An outbox row of ``gate`` at ``stage``, due ``now``: every row is written so."""
    return Notification(
        gate=gate,
        key=key,
        stage=stage,
        channel=channel,
        user=user,
        link=link,
        target=target,
        next_attempt_at=now,
    )


def _gate_row(gate: Gate, stage: str, now: datetime) -> Notification:
    return _row(gate, stage, Channel.GATE, _key(gate, stage), now)


def enqueue_opened(gates: list[Gate]) -> bool:
    """Write the outbox row of each pending gate of ``gates`` (in the caller's
    transaction); True if any was written. Nothing when ``NOTIFY_GATES`` is off."""
    if not config().notify_gates:
        return False
    now = timezone.now()
    rows = [_gate_row(g, Stage.OPENED, now) for g in gates if g.status == Gate.Status.PENDING]
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return bool(rows)


def escalate_due() -> int:
    """Write the escalation row of each gate pending for ``ESCALATE_AFTER_SECONDS``; how
    many were written (each gate's once, whoever asks)."""
    settings = config()
    after = settings.escalate_after_seconds
    if not settings.notify_gates or after is None:
        return 0
    now = timezone.now()
    escalated = Notification.objects.filter(gate=OuterRef("pk"), stage=Stage.ESCALATED)
    due = Gate.objects.filter(
        ~Exists(escalated),
        status=Gate.Status.PENDING,
        created_at__lte=now - timedelta(seconds=after),
    )
    rows = [_gate_row(gate, Stage.ESCALATED, now) for gate in due[:100]]
    return len(Notification.objects.bulk_create(rows, ignore_conflicts=True))


def claim(limit: int = 50) -> tuple[str, list[Notification]]:
    """Take up to ``limit`` due rows for ``LEASE_SECONDS``; the lease and the rows.

    The UPDATE re-checks that each row is still due and free, so two senders never
    both take one (PostgreSQL re-reads a row another transaction changed; SQLite
    runs one writer at a time).
    """
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    due = Notification.objects.filter(free, status=Status.PENDING, next_attempt_at__lte=now)
    if not due.exists():  # the common case: one cheap query
        return "", []
    lease = secrets.token_hex(16)
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
        Notification.objects.filter(free, pk__in=ids, status=Status.PENDING).update(
            lease=lease, lease_until=now + timedelta(seconds=LEASE_SECONDS)
        )
    rows = Notification.objects.filter(lease=lease, status=Status.PENDING)
    return lease, list(rows.select_related("gate", "gate__dag", "user", "link").order_by("pk"))


def _mine(row: Notification, lease: str) -> Any:
    return Notification.objects.filter(pk=row.pk, lease=lease, status=Status.PENDING)


def done(row: Notification, lease: str, status: str = Status.SENT) -> bool:
    """Mark ``row`` sent (or ``skipped``); False if its lease was lost meanwhile."""
    now = timezone.now()
    return bool(
        _mine(row, lease).update(
            status=status,
            sent_at=now if status == Status.SENT else None,
            attempts=F("attempts") + 1,
            lease="",
            lease_until=None,
        )
    )


def failed(row: Notification, lease: str, error: str) -> bool:
    """Record a failed attempt at ``row``: tried again after a growing wait, or given
    up after ``NOTIFY_MAX_ATTEMPTS``. False if its lease was lost meanwhile."""
    settings = config()
    attempts = row.attempts + 1
    wait = min(settings.notify_retry_seconds * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    last = attempts >= settings.notify_max_attempts
    return bool(
        _mine(row, lease).update(
            status=Status.FAILED if last else Status.PENDING,
            attempts=attempts,
            next_attempt_at=timezone.now() + timedelta(seconds=wait),
            last_error=error[:2000],
            lease="",
            lease_until=None,
        )
    )


def create_link(gate: Gate, user: Any) -> GateLink:
    """A new link to ``gate`` for ``user``, valid for ``GATE_LINK_SECONDS``."""
    expires = timezone.now() + timedelta(seconds=config().gate_link_seconds)
    return GateLink.objects.create(gate=gate, user=user, expires_at=expires)


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


def expand(row: Notification, lease: str) -> int:
    """Turn a gate's row into its messages (an email per person, a POST per webhook);
    how many were written. A gate that no longer waits gets none (``skipped``)."""
    gate = row.gate
    with transaction.atomic():
        if Gate.objects.filter(pk=gate.pk, status=Gate.Status.PENDING).exists():
            written = _messages(row, gate)
            done(row, lease)
            return written
        done(row, lease, Status.SKIPPED)
        return 0


def _messages(row: Notification, gate: Gate) -> int:
    settings = config()
    now = timezone.now()
    messages: list[Notification] = []
    known = set(Notification.objects.filter(gate=gate).values_list("key", flat=True))
    if settings.notify_email:
        people = (
            escalation_recipients(gate) if row.stage == Stage.ESCALATED else gate_recipients(gate)
        )
        for person in people:
            key = _key(gate, row.stage, "email", str(person.pk))
            if key in known or not getattr(person, "email", ""):
                continue
            # A person who may only view (an escalation's) gets the run's page instead.
            link = create_link(gate, person) if allowed(person, "decide", gate.dag) else None
            messages.append(
                _row(
                    gate,
                    row.stage,
                    Channel.EMAIL,
                    key,
                    now,
                    user=person,
                    link=link,
                    target=person.email,
                )
            )
    for url in settings.notify_webhooks:
        key = _key(gate, row.stage, "webhook", _url_key(url))
        if key not in known:
            messages.append(_row(gate, row.stage, Channel.WEBHOOK, key, now, target=url))
    return len(Notification.objects.bulk_create(messages, ignore_conflicts=True))
