"""The Celery demo (``make demo-celery``): server, a worker, a canvas every few seconds.

Needs Redis (``REDIS_URL``): the channel layer between the server, the worker and
this process, and Celery's broker and results. Ctrl-C stops all three.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dagstream_app import services
from dagstream_app.models import Dag
from dagstream_app.protocol import TERMINAL_STATUSES


class Command(BaseCommand):
    help = (
        "Serve the dashboard, start a Celery worker (prefork, 2 processes) and launch the "
        "demo canvas every --loop seconds. Needs REDIS_URL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--loop", type=float, default=20.0, help="seconds between runs")

    def handle(self, *args: Any, **options: Any) -> None:
        from dagstream_app.celery import launch
        from project.demo.celery import BROKER, DEMO_NAME, report_canvas
        from project.demo.workers import worker_command

        if not settings.REDIS_URL:
            raise CommandError("The Celery demo needs REDIS_URL (e.g. redis://127.0.0.1:6379/0).")
        try:
            redis.Redis.from_url(BROKER, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            raise CommandError(f"Redis does not answer at {BROKER}: {exc}") from None
        for dag_id in Dag.objects.filter(name=DEMO_NAME).exclude(status__in=TERMINAL_STATUSES):
            with contextlib.suppress(services.Conflict):  # it finished meanwhile
                services.reports(dag_id.pk).fail(
                    "The Celery demo stopped before this run finished."
                )
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        where = (
            "a Celery worker (prefork, 2 processes) runs the tasks; "
            f"a canvas launched every {options['loop']:g} s"
        )
        children = [
            subprocess.Popen(
                [
                    *manage,
                    "dagstream_demo_server",
                    "--no-engine",
                    *("--engine-line", where),
                    *("--host", options["host"], "--port", str(options["port"])),
                ],
                start_new_session=True,
            ),
            subprocess.Popen(
                worker_command("project.demo.celery", f"dagstream-demo-{os.getpid()}"),
                cwd=settings.BASE_DIR,
                start_new_session=True,
            ),
        ]
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell without job control
        signal.signal(signal.SIGTERM, _interrupt)  # stop the children on a plain kill too
        try:
            for number in itertools.count():
                if not all(child.poll() is None for child in children):
                    break
                if number % 3 == 2:  # every third run needs nobody: no gate, no budget
                    run = launch(report_canvas(review=False), name=DEMO_NAME)
                    self.stdout.write(f"Launched {run.dag_id} (needs nobody)", ending="\n")
                else:  # about half of these reach their budget and ask whether to go on
                    budget = random.choice((0.15, 0.3))
                    run = launch(report_canvas(), name=DEMO_NAME, budget=budget)
                    self.stdout.write(f"Launched {run.dag_id}", ending="\n")
                self.stdout.flush()
                time.sleep(options["loop"])
            raise CommandError("The server or the worker stopped.")
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            for child in children:
                if child.poll() is None:
                    # The worker's main process alone: its warm shutdown lets running tasks
                    # finish and then ends its pool (a SIGTERM to the pool's processes would
                    # kill them mid-task, and the worker would log WorkerLostError).
                    os.kill(child.pid, signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
