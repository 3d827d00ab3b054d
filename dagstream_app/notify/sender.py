"""Sending the outbox: one round (:func:`send_due`), and the loops that run rounds.

Inside a server process (``NOTIFY_EMBEDDED``, the default) a daemon thread runs the
loop: :func:`start_embedded` starts it once per process (the ASGI routes call it as the
server starts). ``manage.py dagstream_notify`` runs the same loop in a process of its
own, as many as wanted. The outbox's leases make each message go out from one sender
at a time, whichever and however many run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections, connections

from dagstream_app.conf import config
from dagstream_app.models import Gate, Notification
from dagstream_app.notify.mail import send_email
from dagstream_app.notify.wakeup import nudged
from dagstream_app.notify.webhooks import send_webhook
from dagstream_app.services import outbox

__all__ = ["run", "send_due", "start_embedded"]

log = logging.getLogger(__name__)

SENDERS: dict[str, Callable[[Notification], None]] = {
    Notification.Channel.EMAIL: send_email,
    Notification.Channel.WEBHOOK: send_webhook,
}


def _send(row: Notification, lease: str) -> None:
    if row.channel == Notification.Channel.GATE:
        outbox.expand(row, lease)
    elif not Gate.objects.filter(pk=row.gate_id, status=Gate.Status.PENDING).exists():
        outbox.done(row, lease, Notification.Status.SKIPPED)  # decided meanwhile: old news
    else:
        SENDERS[row.channel](row)
        outbox.done(row, lease)


def send_due(limit: int = 50) -> int:
    """One round: write the escalations due, then send what is due; how many rows were
    handled (a gate's row counts, and makes its messages due at once)."""
    outbox.escalate_due()
    lease, rows = outbox.claim(limit)
    for row in rows:
        try:
            _send(row, lease)
        except Exception as exc:  # noqa: BLE001 - any failure is tried again later
            log.warning("dagstream: cannot send notification %s: %s", row.pk, exc)
            outbox.failed(row, lease, f"{type(exc).__name__}: {exc}")
    return len(rows)


def run(stop: threading.Event) -> None:
    """Send rounds until ``stop`` is set: straight on while there is work, else after
    ``NOTIFY_POLL_SECONDS`` or a nudge from a commit in this process."""
    while not stop.is_set():
        handled = 0
        close_old_connections()
        try:
            handled = send_due()
        except Exception:  # a database that does not answer: the next round tries again
            log.warning("dagstream: cannot send notifications", exc_info=True)
        finally:
            connections.close_all()  # this thread's: a pool gets them back between rounds
        if not handled:
            nudged.wait(config().notify_poll_seconds)
            nudged.clear()


_embedded_lock = threading.Lock()
_embedded: threading.Thread | None = None


def start_embedded() -> bool:
    """Start this process's sender thread if the settings ask for one and none runs;
    True if it runs."""
    global _embedded
    settings = config()
    if not (settings.notify_gates and settings.notify_embedded):
        return False
    with _embedded_lock:
        if _embedded is None or not _embedded.is_alive():
            _embedded = threading.Thread(
                target=run, args=(threading.Event(),), name="dagstream-notify", daemon=True
            )
            _embedded.start()
    return True
