"""The runs in Django admin: list, progress, pause / resume / cancel, delete, event log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dagstream_app import services, state
from dagstream_app.admin.base import (
    DagstreamAdmin,
    Outcomes,
    ReadOnlyInline,
    pretty_json,
    refusal,
    viewable,
)
from dagstream_app.errors import DagstreamError, Forbidden
from dagstream_app.models import Dag, Edge, Event, Gate, Node
from dagstream_app.money import format_money
from dagstream_app.permissions import allowed
from dagstream_app.vocabulary import status_word

__all__ = ["DagAdmin"]

# Nodes that count as done in the DAG list's progress column.
DONE_NODE_STATUSES = (Node.Status.COMPLETED, Node.Status.SKIPPED)
EVENTS_PER_PAGE = 50


class NodeInline(ReadOnlyInline):
    model = Node
    fields = ("node_id", "label", "status", "started_at", "finished_at")
    readonly_fields = fields


class EdgeInline(ReadOnlyInline):
    model = Edge
    fields = ("src", "dst")
    readonly_fields = fields


class GateInline(ReadOnlyInline):
    model = Gate
    fields = ("node_id", "status", "decided_by", "decided_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(Dag)
class DagAdmin(DagstreamAdmin[Dag]):
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
        unfinished = [
            _("%(run)s (%(status)s: cancel it first)") % {"run": d, "status": status_word(d.status)}
            for d in dags
            if not d.is_terminal
        ]
        finished = [str(dag) for dag in dags if dag.is_terminal]
        return finished, {str(Dag._meta.verbose_name_plural): len(finished)}, set(), unfinished

    def delete_model(self, request: HttpRequest, obj: Dag) -> None:
        try:
            services.delete_dag(obj.dag_id, actor=request.user)
        except DagstreamError as exc:
            raise refusal(exc) from None

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        outcomes = Outcomes()
        for dag in queryset:
            try:
                services.delete_dag(dag.dag_id, actor=request.user)
            except DagstreamError as exc:
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
        return viewable(request, queryset, "pk")

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, dag: Dag) -> str:
        done = getattr(dag, "done_nodes", None)
        total = getattr(dag, "total_nodes", None)
        if done is None or total is None:
            total = dag.nodes.count()
            done = dag.nodes.filter(status__in=DONE_NODE_STATUSES).count()
        return f"{done} / {total}"

    @admin.display(description=gettext_lazy("spent / budget"))
    def spend(self, dag: Dag) -> str:
        return f"{format_money(dag.spent)} / {format_money(dag.budget)}"

    @admin.display(description=gettext_lazy("results"))
    def results_pretty(self, dag: Dag) -> str:
        return pretty_json(dag.results)

    # Pause / resume / cancel: list actions and buttons on the DAG's page.

    @admin.action(description=gettext_lazy("Pause selected DAGs"), permissions=["control"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        self._control_selected(request, queryset, "pause")

    @admin.action(description=gettext_lazy("Resume selected DAGs"), permissions=["control"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        self._control_selected(request, queryset, "resume")

    @admin.action(description=gettext_lazy("Cancel selected DAGs"), permissions=["control"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        self._control_selected(request, queryset, "cancel")

    @admin.action(
        description=gettext_lazy("End selected runs whose engine is not responding"),
        permissions=["control"],
    )
    def force_cancel_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        self._control_selected(request, queryset, "force_cancel")

    @admin.display(description=gettext_lazy("engine"))
    def engine(self, dag: Dag) -> str:
        if state.engine_stale(dag.status, dag.engine_seen_at):
            return _("not responding")
        return "" if dag.is_terminal else _("reporting")

    def _control_selected(self, request: HttpRequest, queryset: QuerySet[Dag], action: str) -> None:
        outcomes = Outcomes()
        for dag in queryset:
            try:
                services.control(dag.dag_id, action, actor=request.user)
            except DagstreamError as exc:
                outcomes.refused(dag.dag_id, exc)
            else:
                outcomes.done(dag.dag_id)
                self.log_change(request, dag, f"{action.capitalize()} requested.")
        outcomes.report(self, request, str(_PAST[action]))

    page_action = "_control"

    def page_context(self, request: HttpRequest, obj: Dag) -> dict[str, Any]:
        actions = [
            (action, str(_BUTTONS[action]))
            for action, (sources, _target) in services.CONTROL_TRANSITIONS.items()
            if obj.status in sources
        ]
        if state.engine_stale(obj.status, obj.engine_seen_at):
            actions.append(("force_cancel", str(_BUTTONS["force_cancel"])))
        events = Event.objects.filter(dag=obj).order_by("-seq")
        page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("events_page"))
        return {
            "control_actions": actions if self._may(request, "control", obj) else [],
            "events_page": page,
            "events": [(e, pretty_json(e.payload)) for e in page.object_list],
        }

    def act_from_page(self, request: HttpRequest, obj: Dag, action: str) -> None:
        try:
            services.control(obj.dag_id, action, actor=request.user)
        except Forbidden as exc:
            raise refusal(exc) from None
        except DagstreamError as exc:
            self.message_user(request, exc.message, messages.WARNING)
        else:
            self.log_change(request, obj, f"{action.capitalize()} requested.")
            self.message_user(request, _PAGE_DONE[action] % {"run": obj.dag_id})


_PAST = {
    "pause": gettext_lazy("Paused"),
    "resume": gettext_lazy("Resumed"),
    "cancel": gettext_lazy("Cancel requested for"),
    "force_cancel": gettext_lazy("Ended"),
}
_PAGE_DONE = {
    "pause": gettext_lazy("Paused %(run)s."),
    "resume": gettext_lazy("Resumed %(run)s."),
    "cancel": gettext_lazy("Cancel requested for %(run)s."),
    "force_cancel": gettext_lazy("Ended %(run)s."),
}
_BUTTONS = {
    "pause": gettext_lazy("Pause"),
    "resume": gettext_lazy("Resume"),
    "cancel": gettext_lazy("Cancel"),
    "force_cancel": gettext_lazy("End run (engine not responding)"),
}
