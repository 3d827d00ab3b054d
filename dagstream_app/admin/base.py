"""What every dagstream ModelAdmin shares: read-only rows, the permission rule, the runs
a user may view, and the report of a bulk action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import format_html

from dagstream_app import render
from dagstream_app.errors import DagstreamError
from dagstream_app.models import Dag
from dagstream_app.permissions import Action, allowed, visible

__all__ = [
    "DagstreamAdmin",
    "NulSafeSearch",
    "Outcomes",
    "ReadOnlyInline",
    "pretty_json",
    "refusal",
    "viewable",
]

M = TypeVar("M", bound=Model)


def viewable(request: HttpRequest, queryset: QuerySet[M], dag_field: str) -> QuerySet[M]:
    """Narrow ``queryset`` to the runs ``request.user`` may view (``dag_field`` names its run).

    Without a permission hook that is a subquery; with one, the hook is asked about
    every run, once a request, and the runs are read without their results.
    """
    runs: QuerySet[Dag, Any] | list[str] | None = getattr(request, "_dagstream_visible", None)
    if runs is None:
        seen = visible(request.user, Dag.objects.defer("results"))
        runs = seen.values("pk") if isinstance(seen, QuerySet) else [dag.pk for dag in seen]
        request._dagstream_visible = runs  # type: ignore[attr-defined]
    return queryset.filter(**{f"{dag_field}__in": runs})


def refusal(exc: DagstreamError) -> PermissionDenied:
    """What a page answers a refused action with (Django's 403 page)."""
    return PermissionDenied(exc.message)


def pretty_json(value: Any) -> str:
    """Indented JSON in a ``<pre>``, escaped."""
    return format_html('<pre class="dagstream-json">{}</pre>', render.pretty_json(value))


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
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


class NulSafeSearch(admin.ModelAdmin):  # type: ignore[type-arg]
    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # PostgreSQL refuses a NUL in a query: a search never passes one on.
        return super().get_search_results(request, queryset, search_term.replace("\x00", ""))


class DagstreamAdmin(NulSafeSearch, Generic[M]):
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

    # An object's own page: buttons that POST ``page_action`` (see act_from_page),
    # and what the page shows beside the fields (see page_context).
    page_action = ""

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if request.method == "POST" and self.page_action and self.page_action in request.POST:
            if obj is None:
                raise Http404(f"No such {self.opts.verbose_name}.")
            if not self.has_view_permission(request, obj):
                raise PermissionDenied
            self.act_from_page(request, obj, request.POST[self.page_action])
            return HttpResponseRedirect(request.get_full_path())
        context = dict(extra_context or {})
        if obj is not None and self.has_view_permission(request, obj):
            context.update(self.page_context(request, obj))
        return super().change_view(request, object_id, form_url, extra_context=context)

    def page_context(self, request: HttpRequest, obj: M) -> dict[str, Any]:
        """Template context for ``obj``'s page, which ``request.user`` may view."""
        return {}

    def act_from_page(self, request: HttpRequest, obj: M, action: str) -> None:
        """Do ``action`` (a button on ``obj``'s page) and report it as a message."""
        raise NotImplementedError


class Outcomes:
    """Collects per-object results of a bulk action and reports them as messages."""

    def __init__(self) -> None:
        self.ok: list[str] = []
        self.failures: list[tuple[str, DagstreamError]] = []

    def done(self, label: str) -> None:
        self.ok.append(label)

    def refused(self, label: str, exc: DagstreamError) -> None:
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
