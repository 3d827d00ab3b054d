"""Dashboard views."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, JsonResponse

from dagstream_app.models import Dag


@login_required
@permission_required("dagstream_app.view_dag", raise_exception=True)
def dag_list(request: HttpRequest) -> JsonResponse:
    """Placeholder until the dashboard lands: the latest DAGs as JSON."""
    dags = Dag.objects.values("dag_id", "name", "status", "last_seq")[:100]
    return JsonResponse({"dags": list(dags)})
