"""``cost_update``: what the run has spent, of its budget."""

from __future__ import annotations

from django.utils.translation import gettext as _

from dagstream_app.dagviews import Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.money import format_money
from dagstream_app.render.format import Part, Perms
from dagstream_app.render.regions import cost_html
from dagstream_app.vocabulary import EventPayload, NonNegative


class CostUpdate(EventPayload, tag="cost_update"):
    spent: NonNegative
    budget: NonNegative | None
    remaining: float | None


def reduce(work: Working, event: EventData) -> None:
    work.spent = event["spent"]
    work.budget = event.get("budget")


def describe(event: EventData, name: Namer) -> Wording:
    budget = event.get("budget")
    text = format_money(event["spent"])
    if budget is not None:
        text = _("%(spent)s of %(budget)s") % {"spent": text, "budget": format_money(budget)}
    return Wording(icon="coin", tone="info", subject=_("Cost"), text=text)


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The cost card (latest wins)."""
    return [("cost", cost_html(work.spent, work.budget, oob=True))]


KIND = EventKind(CostUpdate, reduce, describe, fragments)
