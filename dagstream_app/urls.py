"""Dashboard and JSON routes; include with ``path("", include("dagstream_app.urls"))``."""

from __future__ import annotations

from django.urls import path

from dagstream_app import api, inbox, linkviews, openapi, views

app_name = "dagstream"

urlpatterns = [
    path("dags/", views.dag_list, name="dag_list"),
    # Before the run pages: a run whose id is "gates" has no page of its own.
    path("dags/gates/", inbox.gate_inbox, name="gate_inbox"),
    path("dags/<str:dag_id>/", views.dag_detail, name="detail"),
    path("dags/<str:dag_id>/history/", views.dag_replay, name="replay"),
    path("dags/<str:dag_id>/control/", views.dag_control, name="control"),
    path("dags/<str:dag_id>/engine/", views.engine_status, name="engine"),
    path("dags/<str:dag_id>/ticket/", api.dag_ticket, name="ticket"),
    path("dags/<str:dag_id>/nodes/", views.node_search, name="nodes"),
    path("dags/<str:dag_id>/groups/<path:group_id>/", views.group_panel, name="group"),
    path("dags/<str:dag_id>/timeline/<path:group_id>/", views.group_events, name="group_events"),
    # Node ids are arbitrary strings: URL-encoded, and may contain "/".
    path("dags/<str:dag_id>/nodes/<path:node_id>/", views.node_panel, name="node"),
    path("dags/<str:dag_id>/gates/<path:node_id>/decide/", views.gate_decide, name="decide"),
    # A notification's signed link (docs/gates.md, "Notifications and links").
    path(
        "dags/<str:dag_id>/gates/<path:node_id>/link/<str:token>/",
        linkviews.gate_link,
        name="gate_link",
    ),
    # The JSON read API (docs/http-api.md).
    path("api/dags/", api.dag_list, name="api_list"),
    path("api/gates/", api.gate_list, name="api_gates"),
    path("api/dags/<str:dag_id>/", api.dag_snapshot, name="api_dag"),
    path("api/dags/<str:dag_id>/events/", api.dag_events, name="api_events"),
    path("api/openapi.json", openapi.openapi_view, name="api_openapi"),
]
