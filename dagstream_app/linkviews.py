"""The page a notification's link opens: the gate after sign-in, or (with
``GATE_LINKS_DECIDE``) a confirmation whose POST decides the gate as the link's person.

A GET never decides: mail systems open links to scan them. Every refusal is a page
that says why (:data:`dagstream_app.links.REFUSALS`).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_http_methods

from dagstream_app import services
from dagstream_app.conf import config
from dagstream_app.errors import DagstreamError
from dagstream_app.links import REFUSALS, LinkCheck, check_link, gate_page_path
from dagstream_app.markup import markdown_html
from dagstream_app.models import GateLink, Notification
from dagstream_app.notify.content import message_context
from dagstream_app.views import refuse_page, render_page

# The HTTP status of each refusal.
STATUSES = {
    "invalid": 400,
    "other_gate": 400,
    "used": 410,
    "expired": 410,
    "forbidden": 403,
    "decided": 409,
}


@require_http_methods(["GET", "POST"])
def gate_link(request: HttpRequest, dag_id: str, node_id: str, token: str) -> HttpResponse:
    """Open (or, with ``GATE_LINKS_DECIDE``, decide) the gate the link names."""
    check = check_link(token, dag_id, node_id)
    if check.problem in ("invalid", "other_gate"):
        return _refused(request, check)
    if not config().gate_links_decide:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return HttpResponseRedirect(gate_page_path(dag_id, node_id))
    if check.problem or check.link is None:
        return _refused(request, check)
    if request.method == "GET":
        return _confirm(request, check.link)
    decision = request.POST.get("decision", "")
    feedback = request.POST.get("feedback", "")
    try:
        gate = services.decide_by_link(check.link, decision, feedback)
    except DagstreamError as exc:
        again = check_link(token, dag_id, node_id)  # used, expired, lost... since the GET
        if again.problem:
            return _refused(request, again)
        return _confirm(request, check.link, exc.message, feedback, exc.http_status)
    context = {"gate": gate, "run_path": gate_page_path(dag_id, node_id), **_about(check.link)}
    return render_page(request, "gate_link_done.html", context)


def _about(link: GateLink) -> dict[str, Any]:
    """What the link's gate asks, as its notification said it."""
    about = message_context(Notification(gate=link.gate, user=link.user, link=link))
    return {**about, "body_html": markdown_html(about["body"])}


def _confirm(
    request: HttpRequest, link: GateLink, error: str = "", draft: str = "", status: int = 200
) -> HttpResponse:
    limit = config().feedback_max_length
    context = {**_about(link), "error": error, "draft": draft, "max_length": limit}
    return render_page(request, "gate_link.html", context, status)


def _refused(request: HttpRequest, check: LinkCheck) -> HttpResponse:
    heading, message = REFUSALS[check.problem]
    return refuse_page(request, STATUSES[check.problem], str(heading), str(message))
