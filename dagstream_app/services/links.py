"""Deciding a gate through its signed link (``models.GateLink``), which uses it up.

Tokens are made and read by :mod:`dagstream_app.links`; the outbox writes the links
(:func:`.outbox.create_link`).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dagstream_app.errors import Conflict
from dagstream_app.models import Gate, GateLink
from dagstream_app.services.decisions import decide_gate

__all__ = ["decide_by_link"]


def decide_by_link(link: GateLink, decision: str, feedback: str = "") -> Gate:
    """Decide ``link``'s gate as its person, and use the link up, in one transaction.

    The caller has checked the link (:func:`dagstream_app.links.check_link`); here the
    link is taken only if still unused and unexpired (a :class:`Conflict` otherwise,
    so two clicks at once decide once), and :func:`decide_gate` applies every rule of
    a decision (the person's permission, first wins). A refused decision leaves the
    link unused.
    """
    now = timezone.now()
    with transaction.atomic():
        taken = GateLink.objects.filter(pk=link.pk, used_at__isnull=True, expires_at__gt=now)
        if not taken.update(used_at=now):
            raise Conflict(_("This link was already used, or has expired."))
        gate = link.gate
        return decide_gate(gate.dag_id, gate.node_id, decision, feedback=feedback, actor=link.user)
