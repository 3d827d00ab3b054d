"""A gate's webhook: a JSON POST with a Slack-compatible ``text``, signed with HMAC.

The ``X-Dagstream-Signature`` header is ``sha256=`` and the hex HMAC-SHA256 of the
body's bytes under ``NOTIFY_WEBHOOK_SECRET``; ``X-Dagstream-Delivery`` names the
message, the same on every attempt, so a receiver can drop a repeat (delivery is at
least once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.request

from dagstream_app.conf import config
from dagstream_app.models import Notification
from dagstream_app.notify.content import message_context, summary

__all__ = ["TIMEOUT_SECONDS", "send_webhook", "signature"]

TIMEOUT_SECONDS = 10.0


def signature(body: bytes, secret: str) -> str:
    """The ``X-Dagstream-Signature`` of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(row: Notification) -> None:
    """POST ``row``'s message to its URL; raises unless the answer is a 2xx."""
    context = message_context(row)
    text = f"{summary(context)}: {context['url']}"
    payload = {
        "text": text,
        "event": "gate_escalated" if context["escalated"] else "gate_opened",
        **{key: context[key] for key in ("title", "run", "dag_id", "node_id", "url")},
    }
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        row.target,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "dagstream",
            "X-Dagstream-Signature": signature(body, config().notify_webhook_secret),
            "X-Dagstream-Delivery": str(row.pk),
        },
    )
    # urlopen raises HTTPError for 4xx and 5xx; a 3xx it cannot follow is refused too.
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
        if not 200 <= answer.status < 300:
            raise OSError(f"{row.target} answered {answer.status}")
