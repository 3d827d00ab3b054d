"""Dashboard routes; include with ``path("", include("dagstream_app.urls"))``."""

from __future__ import annotations

from django.urls import path

from dagstream_app import views

app_name = "dagstream"

urlpatterns = [
    path("dags/", views.dag_list, name="dag_list"),
    path("dags/<str:dag_id>/", views.dag_detail, name="detail"),
    path("dags/<str:dag_id>/history/", views.dag_replay, name="replay"),
    path("dags/<str:dag_id>/control/", views.dag_control, name="control"),
    path("dags/<str:dag_id>/ticket/", views.dag_ticket, name="ticket"),
    # Node ids are arbitrary strings: URL-encoded, and may contain "/".
    path("dags/<str:dag_id>/nodes/<path:node_id>/", views.node_panel, name="node"),
    path("dags/<str:dag_id>/gates/<path:node_id>/decide/", views.gate_decide, name="decide"),
]
