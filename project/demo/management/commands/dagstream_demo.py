"""Run the demo research-report engine in its own process: ``manage.py dagstream_demo``.

For the one-process shape (server and engine together) use
``manage.py dagstream_demo_server`` (what ``make demo`` runs).
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.management.base import BaseCommand, CommandParser

from project.demo.options import add_demo_arguments, demo_settings, reporter
from project.demo.pipeline import run_demo

NO_SHARED_LAYER = (
    "Warning: no shared channel layer (REDIS_URL is not set), so this engine has an "
    "in-memory layer of its own. A server in another process sees these runs only by "
    "polling the database (about once a second), and decisions reach this engine the "
    "same way. Set REDIS_URL to the same Redis as the server's to stream live, or run "
    "`make demo` (manage.py dagstream_demo_server), which runs the engine inside the server."
)


class Command(BaseCommand):
    help = (
        "Run the demo research-report pipeline as an engine in its own process. "
        "Needs REDIS_URL (the same as the server's) to stream live to a separate server."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_demo_arguments(parser, every=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if isinstance(get_channel_layer(), InMemoryChannelLayer):
            self.stderr.write(NO_SHARED_LAYER)
        settings = demo_settings(options)
        report = reporter(self.stdout)
        report(f"Demo engine: seed {settings.seed}, speed {settings.speed:g}. Ctrl-C stops.")
        try:
            asyncio.run(run_demo(settings, every=options["loop"] or None, report=report))
        except KeyboardInterrupt:
            report("Stopped; unfinished runs were marked failed.")
