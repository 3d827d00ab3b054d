"""What a gate's notification says: its title, its body, its run and its link."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from dagstream_app.links import gate_page_url, link_url
from dagstream_app.models import Notification

__all__ = ["message_context", "summary"]


def message_context(row: Notification) -> dict[str, Any]:
    """The template context of ``row``'s message (mail and webhook alike)."""
    gate = row.gate
    presentation = gate.presentation if isinstance(gate.presentation, dict) else {}
    title = presentation.get("title")
    body = presentation.get("body")
    return {
        "title": title
        if isinstance(title, str) and title
        else _("Decision needed at %(node)s") % {"node": gate.node_id},
        "body": body if isinstance(body, str) else "",
        "run": gate.dag.name or gate.dag_id,
        "dag_id": gate.dag_id,
        "node_id": gate.node_id,
        "url": link_url(row.link) if row.link is not None else gate_page_url(gate),
        "escalated": row.stage == Notification.Stage.ESCALATED,
        "person": row.user.get_username() if row.user is not None else "",
    }


def summary(context: dict[str, Any]) -> str:
    """One line that says it all: the subject of a mail, the text of a webhook."""
    if context["escalated"]:
        return _("Still waiting: %(title)s (run %(run)s)") % context
    return _("Decision needed: %(title)s (run %(run)s)") % context
