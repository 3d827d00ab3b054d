"""HTTP routes of the dagstream dashboard; include with ``path("", include("dagstream_app.urls"))``."""

from __future__ import annotations

from django.urls import path

from dagstream_app import views

app_name = "dagstream"

urlpatterns = [
    path("dags/", views.dag_list, name="dag_list"),
]
