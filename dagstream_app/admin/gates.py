"""Human gates in Django admin: the pending ones first, decided one by one or in bulk."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote
from django.core.validators import MaxLengthValidator
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dagstream_app import protocol, services
from dagstream_app.admin.base import DagstreamAdmin, Outcomes, pretty_json, refusal, viewable
from dagstream_app.conf import config
from dagstream_app.errors import Conflict, DagstreamError, Forbidden
from dagstream_app.models import Dag, Gate
from dagstream_app.vocabulary import status_label, verb

__all__ = ["FeedbackForm", "GateAdmin"]


class FeedbackForm(forms.Form):
    """Feedback for a decision: optional for approve / reject, required for modify."""

    feedback = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        strip=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = config().feedback_max_length
        field = self.fields["feedback"]
        field.validators.append(MaxLengthValidator(limit))
        field.widget.attrs["maxlength"] = str(limit)


@admin.register(Gate)
class GateAdmin(DagstreamAdmin[Gate]):
    list_display = (
        "node_id",
        "dag_link",
        "status",
        "title",
        "created_at",
        "decided_by",
        "decided_at",
    )
    list_display_links = ("node_id",)
    list_filter = ("status", ("dag", admin.RelatedOnlyFieldListFilter))
    search_fields = ("node_id", "dag__dag_id", "dag__name", "decided_by")
    list_select_related = ("dag",)
    fields = (
        "dag_link",
        "node_id",
        "status",
        "presentation_pretty",
        "created_at",
        "timeout_at",
        "default_decision",
        "assignees_list",
        "quorum",
        "votes_pretty",
        "feedback",
        "decided_by",
        "decided_at",
    )
    readonly_fields = fields
    actions = ("approve_selected", "reject_selected")
    decide_template = "admin/dagstream_app/gate/decide_selected.html"

    def _dag_of(self, obj: Any) -> Dag | None:
        return obj.dag if isinstance(obj, Gate) else None

    def get_queryset(self, request: HttpRequest) -> QuerySet[Gate]:
        return viewable(request, super().get_queryset(request).select_related("dag"), "dag")

    def get_ordering(self, request: HttpRequest) -> Any:
        # Pending first, newest first within each group.
        pending_first = Case(
            When(status=Gate.Status.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return (pending_first.asc(), "-created_at")

    @admin.display(description=gettext_lazy("DAG"), ordering="dag__dag_id")
    def dag_link(self, gate: Gate) -> str:
        url = reverse("admin:dagstream_app_dag_change", args=[quote(gate.dag_id)])
        return format_html('<a href="{}">{}</a>', url, gate.dag_id)

    @admin.display(description=gettext_lazy("title"))
    def title(self, gate: Gate) -> str:
        value = gate.presentation.get("title") if isinstance(gate.presentation, dict) else None
        return str(value)[:80] if value is not None else ""

    @admin.display(description=gettext_lazy("presentation"))
    def presentation_pretty(self, gate: Gate) -> str:
        return pretty_json(gate.presentation)

    @admin.display(description=gettext_lazy("assignees"))
    def assignees_list(self, gate: Gate) -> str:
        return ", ".join(gate.assignees)

    @admin.display(description=gettext_lazy("votes"))
    def votes_pretty(self, gate: Gate) -> str:
        return pretty_json(gate.votes) if gate.votes else ""

    # Decisions: list actions (with a feedback page) and buttons on the gate's page.

    @admin.action(description=gettext_lazy("Approve selected gates"), permissions=["decide"])
    def approve_selected(
        self, request: HttpRequest, queryset: QuerySet[Gate]
    ) -> HttpResponse | None:
        return self._decide_selected(request, queryset, "approve")

    @admin.action(description=gettext_lazy("Reject selected gates"), permissions=["decide"])
    def reject_selected(
        self, request: HttpRequest, queryset: QuerySet[Gate]
    ) -> HttpResponse | None:
        return self._decide_selected(request, queryset, "reject")

    def _decide_selected(
        self, request: HttpRequest, queryset: QuerySet[Gate], decision: str
    ) -> HttpResponse | None:
        form = FeedbackForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            outcomes = Outcomes()
            for gate in queryset:
                label = f"{gate.dag_id}/{gate.node_id}"
                try:
                    services.decide_gate(
                        gate.dag_id,
                        gate.node_id,
                        decision,
                        feedback=form.cleaned_data["feedback"],
                        actor=request.user,
                    )
                except DagstreamError as exc:
                    outcomes.refused(label, exc)
                else:
                    outcomes.done(label)
                    self.log_change(
                        request, gate, _log_message(decision, form.cleaned_data["feedback"])
                    )
            outcomes.report(
                self, request, _("Approved") if decision == "approve" else _("Rejected")
            )
            return None
        gates = list(queryset)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Approve gates") if decision == "approve" else _("Reject gates"),
            "opts": self.model._meta,
            "decision": verb(decision),
            "action_name": f"{decision}_selected",
            "form": form,
            "pending": [g for g in gates if g.status == Gate.Status.PENDING],
            "decided": [g for g in gates if g.status != Gate.Status.PENDING],
            "queryset": gates,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.decide_template, context)

    page_action = "_decision"

    def page_context(self, request: HttpRequest, obj: Gate) -> dict[str, Any]:
        return {
            "can_decide": obj.status == Gate.Status.PENDING and self._may(request, "decide", obj),
            "decision_form": FeedbackForm(),
            "feedback_max_length": config().feedback_max_length,
        }

    def act_from_page(self, request: HttpRequest, obj: Gate, action: str) -> None:
        feedback = request.POST.get("feedback", "")
        try:
            services.decide_gate(
                obj.dag_id, obj.node_id, action, feedback=feedback, actor=request.user
            )
        except Forbidden as exc:
            raise refusal(exc) from None
        except Conflict as exc:
            self.message_user(request, exc.message, messages.WARNING)
        except DagstreamError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.log_change(request, obj, _log_message(action, feedback))
            self.message_user(
                request,
                _("%(decided)s gate %(node)s of %(run)s.")
                % {
                    "decided": status_label(_status_of(action)),
                    "node": obj.node_id,
                    "run": obj.dag_id,
                },
                messages.SUCCESS,
            )


def _status_of(decision: str) -> str:
    return protocol.DECISION_TO_GATE_STATUS.get(decision, decision)


def _decided(decision: str) -> str:
    """ "Approved", "Rejected" or "Modified"."""
    return protocol.DECISION_TO_GATE_STATUS.get(decision, decision).capitalize()


def _log_message(decision: str, feedback: str) -> str:
    text = f"{_decided(decision)} the gate."
    return f"{text} Feedback: {feedback[:200]}" if feedback else text
