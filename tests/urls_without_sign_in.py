"""A host's urls.py with the dashboard but no sign-in page (check W003's case)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("dagstream_app.urls")),
]
