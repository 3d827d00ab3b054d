"""Signed links to one gate for one person (``models.GateLink``): made and read here.

A link's token is the link row's id, its gate's and its person's, signed with the
site's ``SECRET_KEY`` (Django's signing, a salt of its own): a token changed by one
character, or put on another gate's address, is refused before anything is looked
up. The row says whether it was used and until when it is valid. Writing the row
and using it up is :mod:`dagstream_app.services.links`' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dagstream_app.conf import config
from dagstream_app.models import Dag, Gate, GateLink
from dagstream_app.permissions import allowed

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

__all__ = [
    "REFUSALS",
    "LinkCheck",
    "check_link",
    "gate_page_path",
    "gate_page_url",
    "link_token",
    "link_url",
]

SALT = "dagstream.gate-link"

Problem = Literal["", "invalid", "other_gate", "used", "expired", "forbidden", "decided"]

# Each refusal's heading and explanation, on the page the link opens.
REFUSALS: dict[str, tuple[_StrPromise, _StrPromise]] = {
    "invalid": (
        _("This link is not valid"),
        _("The link was changed or cut short. Open the one in your message again, in full."),
    ),
    "other_gate": (
        _("This link is for another gate"),
        _("The link does not belong to this gate: open the one in your message again."),
    ),
    "used": (
        _("This link was already used"),
        _("A link decides once. Open the run to see the decision."),
    ),
    "expired": (
        _("This link has expired"),
        _("Open the run and decide there, after signing in."),
    ),
    "forbidden": (
        _("You may no longer decide this gate"),
        _("Your permission to decide it was taken away since the link was sent."),
    ),
    "decided": (
        _("This gate no longer waits"),
        _("It was decided, or its run ended. Open the run to see how."),
    ),
}


@dataclass(frozen=True)
class LinkCheck:
    """What a token says on a gate's address: its link (None if refused before a
    lookup) and its problem ("" if it may decide)."""

    link: GateLink | None
    problem: Problem


def link_token(link: GateLink) -> str:
    """The signed token of ``link``, as its address carries it."""
    data = {"l": link.pk, "g": link.gate_id, "u": link.user_id}
    return signing.Signer(salt=SALT).sign_object(data, compress=False)


def link_url(link: GateLink) -> str:
    """The absolute address of ``link`` (``SITE_URL`` and the gate's link route)."""
    gate = link.gate
    path = reverse("dagstream:gate_link", args=[gate.dag_id, gate.node_id, link_token(link)])
    return config().site_url.rstrip("/") + path


def gate_page_path(dag_id: str, node_id: str) -> str:
    """The path of a gate's card on its run's page (the run's page, the card's anchor)."""
    from dagstream_app.render import dom_id

    return f"{reverse('dagstream:detail', args=[dag_id])}#{dom_id('gate', node_id)}"


def gate_page_url(gate: Gate) -> str:
    """The absolute address of ``gate``'s card on its run's page."""
    return config().site_url.rstrip("/") + gate_page_path(gate.dag_id, gate.node_id)


def check_link(token: str, dag_id: str, node_id: str) -> LinkCheck:
    """Whether ``token`` may decide the gate at ``node_id`` of ``dag_id`` now, and why not.

    In order: a token whose signature fails is ``invalid``; one for another gate is
    ``other_gate``; then ``used``, ``expired``, ``forbidden`` (its person may no
    longer decide), ``decided`` (the gate no longer waits).
    """
    try:
        data = signing.Signer(salt=SALT).unsign_object(token)
        link_id, gate_id, user_id = int(data["l"]), int(data["g"]), int(data["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return LinkCheck(None, "invalid")
    gate = Gate.objects.filter(dag_id=dag_id, node_id=node_id).first()
    if gate is None or gate.pk != gate_id:
        return LinkCheck(None, "other_gate")
    link = (
        GateLink.objects.select_related("user", "gate")
        .filter(pk=link_id, gate_id=gate_id, user_id=user_id)
        .first()
    )
    if link is None:
        return LinkCheck(None, "invalid")
    return LinkCheck(link, _problem(link))


def _problem(link: GateLink) -> Problem:
    if link.used_at is not None:
        return "used"
    if link.expires_at <= timezone.now():
        return "expired"
    dag = Dag.objects.filter(pk=link.gate.dag_id).first()
    if dag is None or not allowed(link.user, "decide", dag):
        return "forbidden"
    if link.gate.status != Gate.Status.PENDING:
        return "decided"
    return ""
