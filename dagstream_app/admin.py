"""Django admin for dagstream: review gates, control executions, read the event log.

Nothing here writes models: decisions go through :func:`services.decide_gate`,
pause / resume / cancel through :func:`services.control`, deleting a finished
run through :func:`services.delete_dag`, token revocation through
:func:`tokens.revoke_api_token`. So an admin action is checked, recorded,
broadcast and delivered to the engine exactly like the same command from a
WebSocket, and needs the same permissions: ``view_dag`` to see, ``decide_gate``
to decide, ``control_dag`` to pause / resume / cancel, ``delete_dag`` to delete
a finished run (then the ``PERMISSION_HOOK`` per DAG). Every other edit is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.validators import MaxLengthValidator
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from dagstream_app import protocol, render, services, state, tokens
from dagstream_app.conf import config
from dagstream_app.models import ApiToken, Dag, Edge, Event, Gate, Node
from dagstream_app.money import format_money
from dagstream_app.permissions import Action, allowed, visible

# Nodes that count as done in the DAG list's progress column.
DONE_NODE_STATUSES = (Node.Status.COMPLETED, Node.Status.SKIPPED)
EVENTS_PER_PAGE = 50


def _visible(request: HttpRequest, queryset: QuerySet[Any], dag_field: str) -> QuerySet[Any]:
    """Narrow ``queryset`` to the DAGs the permission hook lets the user view."""
    cached: list[str] | None = getattr(request, "_dagstream_visible", None)
    if cached is None:
        cached = [d.pk for d in visible(request.user, Dag.objects.all())]
        request._dagstream_visible = cached  # type: ignore[attr-defined]
    return queryset.filter(**{f"{dag_field}__in": cached})


def _refuse(exc: services.DagstreamError) -> PermissionDenied:
    return PermissionDenied(exc.message)


class _ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return allowed(request.user, "view", obj if isinstance(obj, Dag) else None)


class NodeInline(_ReadOnlyInline):
    model = Node
    fields = ("node_id", "label", "status", "started_at", "finished_at")
    readonly_fields = fields


class EdgeInline(_ReadOnlyInline):
    model = Edge
    fields = ("src", "dst")
    readonly_fields = fields


class GateInline(_ReadOnlyInline):
    model = Gate
    fields = ("node_id", "status", "decided_by", "decided_at")
    readonly_fields = fields
    show_change_link = True


class _NulSafeSearch(admin.ModelAdmin):  # type: ignore[type-arg]
    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # PostgreSQL refuses a NUL in a query: a search never passes one on.
        return super().get_search_results(request, queryset, search_term.replace("\x00", ""))


class _DagstreamAdmin(_NulSafeSearch):
    """Read-only by default; seeing needs ``view_dag``; every write goes through services."""

    class Media:
        css = {"all": ["dagstream_app/admin.css"]}  # JSON that wraps, readable titles

    def has_module_permission(self, request: HttpRequest) -> bool:
        return allowed(request.user, "view")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return allowed(request.user, "view", self._dag_of(obj))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Offering an action needs Django's permission; the hook then rules per DAG
    # when the action runs (services refuse, and each refusal is reported).
    def has_decide_permission(self, request: HttpRequest) -> bool:
        return allowed(request.user, "decide")

    def has_control_permission(self, request: HttpRequest) -> bool:
        return allowed(request.user, "control")

    def _dag_of(self, obj: Any) -> Dag | None:
        return None

    def _may(self, request: HttpRequest, action: Action, obj: Any) -> bool:
        return allowed(request.user, action, self._dag_of(obj))


# ------------------------------------------------------------------- DAGs


@admin.register(Dag)
class DagAdmin(_DagstreamAdmin):
    list_display = ("dag_id", "name", "status", "engine", "progress", "spend", "created_at")
    list_filter = ("status", "name", "created_at")
    search_fields = ("dag_id", "name")
    date_hierarchy = "created_at"
    fields = (
        "dag_id",
        "name",
        "status",
        "progress",
        "spend",
        "results_pretty",
        "engine",
        "last_seq",
        "created_at",
        "updated_at",
        "finished_at",
    )
    readonly_fields = fields
    inlines = (NodeInline, EdgeInline, GateInline)
    actions = ("pause_selected", "resume_selected", "cancel_selected", "force_cancel_selected")

    def _dag_of(self, obj: Any) -> Dag | None:
        return obj if isinstance(obj, Dag) else None

    # Deleting: finished runs only, through services (which tells live viewers).

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        dag = self._dag_of(obj)
        return allowed(request.user, "delete", dag) and (dag is None or dag.is_terminal)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        # A run's nodes, edges, gates and events go with it: only the run's own
        # permission counts. Runs that have not finished are listed as blocking.
        dags = list(objs)
        unfinished = [f"{d} ({d.status}: cancel it first)" for d in dags if not d.is_terminal]
        finished = [str(dag) for dag in dags if dag.is_terminal]
        return finished, {str(Dag._meta.verbose_name_plural): len(finished)}, set(), unfinished

    def delete_model(self, request: HttpRequest, obj: Dag) -> None:
        try:
            services.delete_dag(obj.dag_id, actor=request.user)
        except services.DagstreamError as exc:
            raise _refuse(exc) from None

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        outcomes = _Outcomes()
        for dag in queryset:
            try:
                services.delete_dag(dag.dag_id, actor=request.user)
            except services.DagstreamError as exc:
                outcomes.refused(dag.dag_id, exc)
        outcomes.report_failures(self, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dag]:
        queryset = (
            super()
            .get_queryset(request)
            .annotate(
                total_nodes=Count("nodes"),
                done_nodes=Count("nodes", filter=Q(nodes__status__in=DONE_NODE_STATUSES)),
            )
        )
        return _visible(request, queryset, "pk")

    @admin.display(description="progress")
    def progress(self, dag: Dag) -> str:
        done = getattr(dag, "done_nodes", None)
        total = getattr(dag, "total_nodes", None)
        if done is None or total is None:
            total = dag.nodes.count()
            done = dag.nodes.filter(status__in=DONE_NODE_STATUSES).count()
        return f"{done} / {total}"

    @admin.display(description="spent / budget")
    def spend(self, dag: Dag) -> str:
        return f"{format_money(dag.spent)} / {format_money(dag.budget)}"

    @admin.display(description="results")
    def results_pretty(self, dag: Dag) -> str:
        return _pretty_json(dag.results)

    # Pause / resume / cancel: list actions and buttons on the DAG's page.

    @admin.action(description="Pause selected DAGs", permissions=["control"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        self._control_selected(request, queryset, "pause")

    @admin.action(description="Resume selected DAGs", permissions=["control"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        self._control_selected(request, queryset, "resume")

    @admin.action(description="Cancel selected DAGs", permissions=["control"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        self._control_selected(request, queryset, "cancel")

    @admin.action(
        description="End selected runs whose engine is not responding", permissions=["control"]
    )
    def force_cancel_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        self._control_selected(request, queryset, "force_cancel")

    @admin.display(description="engine")
    def engine(self, dag: Dag) -> str:
        if state.engine_stale(dag.status, dag.engine_seen_at):
            return "not responding"
        return "" if dag.is_terminal else "reporting"

    def _control_selected(self, request: HttpRequest, queryset: QuerySet[Dag], action: str) -> None:
        outcomes = _Outcomes()
        for dag in queryset:
            try:
                _control(dag.dag_id, action, request.user)
            except services.DagstreamError as exc:
                outcomes.refused(dag.dag_id, exc)
            else:
                outcomes.done(dag.dag_id)
                self.log_change(request, dag, f"{action.capitalize()} requested.")
        outcomes.report(self, request, f"{_PAST[action]}")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST" and "_control" in request.POST:
            return self._control_from_page(request, object_id, request.POST["_control"])
        dag = self.get_object(request, unquote(object_id))
        context: dict[str, Any] = dict(extra_context or {})
        if dag is not None and self.has_view_permission(request, dag):
            actions = [
                (action, action.capitalize())
                for action, (sources, _) in services.CONTROL_TRANSITIONS.items()
                if dag.status in sources
            ]
            if state.engine_stale(dag.status, dag.engine_seen_at):
                actions.append(("force_cancel", "End run (engine not responding)"))
            context["control_actions"] = actions if self._may(request, "control", dag) else []
            events = Event.objects.filter(dag=dag).order_by("-seq")
            page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("events_page"))
            context["events_page"] = page
            context["events"] = [(e, _pretty_json(e.payload)) for e in page.object_list]
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _control_from_page(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        dag = self.get_object(request, unquote(object_id))
        if dag is None:
            raise Http404("No such DAG.")
        if not self.has_view_permission(request, dag):
            raise PermissionDenied
        try:
            _control(dag.dag_id, action, request.user)
        except services.Forbidden as exc:
            raise _refuse(exc) from None
        except services.DagstreamError as exc:
            self.message_user(request, exc.message, messages.WARNING)
        else:
            self.log_change(request, dag, f"{action.capitalize()} requested.")
            self.message_user(request, f"{_PAST.get(action, action)} {dag.dag_id}.")
        return HttpResponseRedirect(request.get_full_path())


_PAST = {
    "pause": "Paused",
    "resume": "Resumed",
    "cancel": "Cancel requested for",
    "force_cancel": "Ended",
}


def _control(dag_id: str, action: str, actor: Any) -> None:
    """Pause / resume / cancel, or force-end a run whose engine is not responding."""
    if action == "force_cancel":
        services.force_cancel(dag_id, actor=actor)
    else:
        services.control(dag_id, action, actor=actor)


# ------------------------------------------------------------------ gates


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
class GateAdmin(_DagstreamAdmin):
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
        return _visible(request, super().get_queryset(request).select_related("dag"), "dag")

    def get_ordering(self, request: HttpRequest) -> Any:
        # Pending first, newest first within each group.
        pending_first = Case(
            When(status=Gate.Status.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return (pending_first.asc(), "-created_at")

    @admin.display(description="DAG", ordering="dag__dag_id")
    def dag_link(self, gate: Gate) -> str:
        url = reverse("admin:dagstream_app_dag_change", args=[quote(gate.dag_id)])
        return format_html('<a href="{}">{}</a>', url, gate.dag_id)

    @admin.display(description="title")
    def title(self, gate: Gate) -> str:
        value = gate.presentation.get("title") if isinstance(gate.presentation, dict) else None
        return str(value)[:80] if value is not None else ""

    @admin.display(description="presentation")
    def presentation_pretty(self, gate: Gate) -> str:
        return _pretty_json(gate.presentation)

    # Decisions: list actions (with a feedback page) and buttons on the gate's page.

    @admin.action(description="Approve selected gates", permissions=["decide"])
    def approve_selected(
        self, request: HttpRequest, queryset: QuerySet[Gate]
    ) -> HttpResponse | None:
        return self._decide_selected(request, queryset, "approve")

    @admin.action(description="Reject selected gates", permissions=["decide"])
    def reject_selected(
        self, request: HttpRequest, queryset: QuerySet[Gate]
    ) -> HttpResponse | None:
        return self._decide_selected(request, queryset, "reject")

    def _decide_selected(
        self, request: HttpRequest, queryset: QuerySet[Gate], decision: str
    ) -> HttpResponse | None:
        form = FeedbackForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            outcomes = _Outcomes()
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
                except services.DagstreamError as exc:
                    outcomes.refused(label, exc)
                else:
                    outcomes.done(label)
                    self.log_change(
                        request, gate, _log_message(decision, form.cleaned_data["feedback"])
                    )
            outcomes.report(self, request, "Approved" if decision == "approve" else "Rejected")
            return None
        gates = list(queryset)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{decision.capitalize()} gates",
            "opts": self.model._meta,
            "decision": decision,
            "action_name": f"{decision}_selected",
            "form": form,
            "pending": [g for g in gates if g.status == Gate.Status.PENDING],
            "decided": [g for g in gates if g.status != Gate.Status.PENDING],
            "queryset": gates,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.decide_template, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        gate = self.get_object(request, unquote(object_id))
        if request.method == "POST" and "_decision" in request.POST:
            return self._decide_from_page(request, gate, request.POST["_decision"])
        context: dict[str, Any] = dict(extra_context or {})
        if gate is not None and self.has_view_permission(request, gate):
            context["can_decide"] = gate.status == Gate.Status.PENDING and self._may(
                request, "decide", gate
            )
            context["decision_form"] = FeedbackForm()
            context["feedback_max_length"] = config().feedback_max_length
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _decide_from_page(
        self, request: HttpRequest, gate: Gate | None, decision: str
    ) -> HttpResponse:
        if gate is None:
            raise Http404("No such gate.")
        if not self.has_view_permission(request, gate):
            raise PermissionDenied
        feedback = request.POST.get("feedback", "")
        try:
            services.decide_gate(
                gate.dag_id, gate.node_id, decision, feedback=feedback, actor=request.user
            )
        except services.Forbidden as exc:
            raise _refuse(exc) from None
        except services.Conflict as exc:
            self.message_user(request, exc.message, messages.WARNING)
        except services.DagstreamError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.log_change(request, gate, _log_message(decision, feedback))
            self.message_user(
                request,
                f"{_decided(decision)} gate {gate.node_id} of {gate.dag_id}.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(request.get_full_path())


def _decided(decision: str) -> str:
    """ "Approved", "Rejected" or "Modified"."""
    return protocol.DECISION_TO_GATE_STATUS.get(decision, decision).capitalize()


def _log_message(decision: str, feedback: str) -> str:
    text = f"{_decided(decision)} the gate."
    return f"{text} Feedback: {feedback[:200]}" if feedback else text


# ----------------------------------------------------------------- tokens


@admin.register(ApiToken)
class ApiTokenAdmin(_NulSafeSearch):
    """Tokens are listed and revoked here; they are created with ``manage.py dagstream_token``.

    Only a prefix is stored beside the hash, so no key can be shown.
    """

    list_display = ("prefix_display", "name", "user", "created_at", "last_used_at")
    list_filter = ("created_at", "last_used_at")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    fields = ("prefix_display", "name", "user", "created_at", "last_used_at")
    readonly_fields = fields

    @admin.display(description="key", ordering="prefix")
    def prefix_display(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        tokens.revoke_api_token(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            tokens.revoke_api_token(token)


# ---------------------------------------------------------------- helpers


def _pretty_json(value: Any) -> str:
    """Indented JSON in a ``<pre>``, escaped."""
    return format_html('<pre class="dagstream-json">{}</pre>', render.pretty_json(value))


class _Outcomes:
    """Collects per-object results of a bulk action and reports them as messages."""

    def __init__(self) -> None:
        self.ok: list[str] = []
        self.failures: list[tuple[str, services.DagstreamError]] = []

    def done(self, label: str) -> None:
        self.ok.append(label)

    def refused(self, label: str, exc: services.DagstreamError) -> None:
        self.failures.append((label, exc))

    def report(self, model_admin: admin.ModelAdmin[Any], request: HttpRequest, verb: str) -> None:
        if self.ok:
            model_admin.message_user(request, f"{verb}: {', '.join(self.ok)}.", messages.SUCCESS)
        self.report_failures(model_admin, request)

    def report_failures(self, model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> None:
        send: Callable[..., None] = model_admin.message_user
        for label, exc in self.failures:
            level = messages.WARNING if exc.code == "conflict" else messages.ERROR
            send(request, f"{label}: {exc.message}", level)
