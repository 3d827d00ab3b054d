from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo as an installed app, so that its management commands are found."""

    name = "project.demo"
    label = "dagstream_demo"
    verbose_name = "dagstream demo"
