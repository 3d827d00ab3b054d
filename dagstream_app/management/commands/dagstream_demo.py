"""Run the demo research-report engine in its own process: ``manage.py dagstream_demo``.

For the one-process shape (server and engine together) use
``manage.py dagstream_demo_server`` (what ``make demo`` runs).
"""

from __future__ import annotations

import asyncio
import random
from argparse import ArgumentTypeError
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.management.base import BaseCommand, CommandParser, OutputWrapper

from dagstream_app.demo import DemoSettings, run_demo

NO_SHARED_LAYER = (
    "Warning: no shared channel layer (REDIS_URL is not set), so this engine has an "
    "in-memory layer of its own. A server in another process sees these runs only by "
    "polling the database (about once a second), and decisions reach this engine the "
    "same way. Set REDIS_URL to the same Redis as the server's to stream live, or run "
    "`make demo` (manage.py dagstream_demo_server), which runs the engine inside the server."
)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ArgumentTypeError(f"must be positive, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ArgumentTypeError(f"must be zero or more, not {text}")
    return value


def add_demo_arguments(parser: CommandParser, *, every: float | None) -> None:
    """The demo's options, shared by both demo commands."""
    parser.add_argument(
        "--loop",
        type=_non_negative,
        default=every,
        metavar="N",
        help="Start a new run every N seconds (0: one run only). Default: %(default)s.",
    )
    parser.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="Divide every node's duration (0.3-3 s) by this. Default: 1.",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="Seed for repeatable runs. Default: random."
    )
    parser.add_argument(
        "--review-timeout",
        type=_non_negative,
        default=600.0,
        metavar="SECONDS",
        help="Approve the review gate after this long (0: wait for a person). Default: 600.",
    )
    parser.add_argument(
        "--budget",
        type=_non_negative,
        default=0.32,
        help="Budget per run in dollars (0: none); reaching it opens a budget gate. Default: 0.32.",
    )


def demo_settings(options: dict[str, Any]) -> DemoSettings:
    """DemoSettings from the options of :func:`add_demo_arguments`."""
    seed = options["seed"] if options["seed"] is not None else random.randrange(10_000)
    return DemoSettings(
        seed=seed,
        speed=options["speed"],
        review_timeout=options["review_timeout"] or None,
        budget=options["budget"] or None,
    )


def reporter(stdout: OutputWrapper) -> Any:
    """A line printer that flushes, so a pipe (or a test) sees each line at once."""

    def report(line: str) -> None:
        stdout.write(line)
        stdout.flush()

    return report


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
