"""The gate inbox: every gate waiting for the signed-in person, across runs, oldest first.

``/dags/gates/`` shows it (decidable in place, live over ``/ws/gates/``),
``/api/gates/`` lists it as JSON, and the navigation counts it. What is listed
is what :func:`dagstream_app.permissions.decidable` lets the person decide.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from dagstream_app import render
from dagstream_app.conf import config
from dagstream_app.permissions import Actor, allowed, decidable, voter_of
from dagstream_app.protocol import format_ts
from dagstream_app.render.inbox import (
    inbox_count_html,
    inbox_entry_html,
    inbox_gone_html,
    inbox_list_html,
    inbox_votes_html,
)
from dagstream_app.state.inbox import InboxGate, inbox_gates, pending_gates

__all__ = ["Shown", "gate_inbox", "inbox_update", "run_filter", "waiting_count", "waiting_for"]

# What a live inbox shows: per listed gate (run, node), its votes so far; and the count.
Shown = tuple[dict[tuple[str, str], int], int]


def run_filter(raw: str) -> str:
    """The inbox's run-name filter as given (``?run=``): no NUL, trimmed, bounded."""
    return raw.replace("\x00", "").strip()[:200]


def waiting_for(user: Actor, run: str = "") -> list[InboxGate]:
    """The gates ``user`` may decide now, oldest first; ``run`` narrows by run name or id."""
    return inbox_gates(decidable(user, pending_gates(run)))


def waiting_count(user: Actor) -> int:
    """How many gates wait for ``user`` (the navigation's count)."""
    return len(decidable(user, pending_gates()))


def inbox_update(user: Actor, run: str, shown: Shown | None, language: str) -> tuple[str, Shown]:
    """What a live inbox that shows ``shown`` (None: nothing yet) must be sent to show the
    gates waiting now, and what it then shows.

    The first message is the whole list; later ones swap out of band only what
    changed: entries that came or went, the votes line of a gate voted on, the
    count. So a feedback draft being written in a card stays as it is.
    """
    with translation.override(language):
        items = waiting_for(user, run)
        count = waiting_count(user) if run else len(items)
        now = {item.key: len(item.gate.votes) for item in items}
        voter = voter_of(user)
        if shown is None:
            html = inbox_list_html(items, voter, oob=True) + inbox_count_html(count, oob=True)
            return html, (now, count)
        before, shown_count = shown
        parts = [inbox_gone_html(*key) for key in before if key not in now]
        for item in items:
            if item.key not in before:
                parts.append(inbox_entry_html(item, voter, oob=True))
            elif before[item.key] != now[item.key]:
                parts.append(inbox_votes_html(item))
        if count != shown_count:
            parts.append(inbox_count_html(count, oob=True))
        return "".join(parts), (now, count)


@require_GET
@login_required
def gate_inbox(request: HttpRequest) -> HttpResponse:
    """``/dags/gates/``: the inbox page."""
    run = run_filter(request.GET.get("run", ""))
    context: dict[str, Any] = {
        "dagstream_base_template": config().base_template,
        "dagstream_config": render.page_config(),
        "server_now": format_ts(timezone.now()),
    }
    if not allowed(request.user, "decide"):
        context |= {"heading": _("No access"), "message": _("You may not decide gates.")}
        return TemplateResponse(request, "dagstream_app/forbidden.html", context, status=403)
    items = waiting_for(request.user, run)
    query = {"run": run} if run else {}
    context |= {
        "run": run,
        "entries": inbox_list_html(items, voter_of(request.user)),
        "count": len(items),
        "total": inbox_count_html(waiting_count(request.user) if run else len(items)),
        # WebSocket routes live at the root (the host's asgi.py), as the run list's.
        "ws_url": "/ws/gates/?" + urlencode({**query, **render.stream_language()}),
    }
    return TemplateResponse(request, "dagstream_app/gate_inbox.html", context)
