"""The LangGraph demo (``make demo-langgraph``): the dashboard and a research agent graph.

As ``make demo``, daphne serves the example project with the engine inside: here a
LangGraph agent (plan -> parallel research via ``Send`` -> draft -> review
``interrupt`` -> publish) on fake chat models, a run every 30 s. No keys, no network.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from django.core.management.base import CommandParser

from project.demo.management.commands import dagstream_demo_server
from project.demo.pipeline import DemoSettings
from project.demo.research_agent import DEMO_NAME, run_langgraph_demo


class Command(dagstream_demo_server.Command):
    help = (
        "Serve the example project with daphne on 127.0.0.1 and run a LangGraph research "
        "agent on fake chat models in the same process (local use only)."
    )
    demo_name = DEMO_NAME
    what = "LangGraph research-agent run"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(loop=30.0)

    def engine(
        self, settings: DemoSettings, every: float | None, report: Any
    ) -> Coroutine[Any, Any, None]:
        """The research agent, a run every ``every`` seconds."""
        return run_langgraph_demo(settings, every=every, report=report)
