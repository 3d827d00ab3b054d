"""The demo's command-line options, shared by both demo commands."""

from __future__ import annotations

import random
from argparse import ArgumentTypeError
from typing import Any

from django.core.management.base import CommandParser, OutputWrapper

from project.demo.pipeline import DemoSettings


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
    """Add the options of a demo run (pace, seed, review timeout, budget) to ``parser``."""
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
