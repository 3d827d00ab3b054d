"""The app's configuration: its name in admin, and the system checks it registers."""

from __future__ import annotations

from django.apps import AppConfig


class DagstreamConfig(AppConfig):
    name = "dagstream_app"
    verbose_name = "dagstream"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dagstream_app import checks  # noqa: F401 - registers the system checks
