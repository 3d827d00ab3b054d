"""Serve the project with daphne and run the demo engine inside it (``make demo``).

daphne has no ASGI lifespan, so this starts daphne's ``Server`` itself and
schedules the demo on daphne's own event loop, where the in-memory channel
layer's queues live. Local use only: it (re)creates a ``demo`` user with a
random password and every dagstream permission, and a ``reviewer`` (not staff) who may
view runs and decide gates: about half the review gates wait for both of them.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

from channels.db import database_sync_to_async
from channels.routing import get_default_application
from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server  # installs Twisted's asyncio reactor: import it first
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser
from twisted.internet import defer
from twisted.internet import reactor as twisted_reactor

from dagstream_app import services
from dagstream_app.models import Dag
from dagstream_app.protocol import TERMINAL_STATUSES
from project.demo.options import add_demo_arguments, demo_settings, reporter
from project.demo.pipeline import DEMO_NAME, DEMO_PEOPLE, DemoSettings, run_demo

DEMO_USER, REVIEWER = DEMO_PEOPLE
DEMO_PERMISSIONS = ("view_dag", "decide_gate", "control_dag")
REVIEWER_PERMISSIONS = ("view_dag", "decide_gate")
STOP_TIMEOUT = 10.0
# Twisted's zope interfaces do not type-check as methods (no mypy-zope here).
reactor: Any = twisted_reactor


def fail_stale_runs(name: str = DEMO_NAME) -> list[str]:
    """Fail the runs named ``name`` a killed demo left unfinished; their ids."""
    stale = list(
        Dag.objects.filter(name=name)
        .exclude(status__in=TERMINAL_STATUSES)
        .values_list("dag_id", flat=True)
    )
    failed = []
    for dag_id in stale:
        try:
            services.reports(dag_id).fail("The demo engine stopped before this run finished.")
        except services.Conflict:
            continue  # it finished meanwhile
        failed.append(dag_id)
    return failed


def ensure_demo_user(username: str, codenames: tuple[str, ...], *, staff: bool) -> str:
    """Create or update a local demo person with ``codenames``, staff (Django admin) or
    not; return their new random password."""
    perms = list(
        Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=codenames)
    )
    if len(perms) != len(codenames):
        raise CommandError("dagstream's permissions are missing: run `manage.py migrate` first.")
    user_model = get_user_model()
    lookup: dict[str, Any] = {user_model.USERNAME_FIELD: username}
    user, _ = user_model.objects.get_or_create(defaults=None, **lookup)
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.is_staff = staff
    user.is_active = True
    user.save()
    user.user_permissions.add(*perms)
    return password


def _nothing() -> None:
    return None


class _Engine:
    """The demo's task on daphne's loop: started once serving, stopped before shutdown."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.run = run
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = self.loop.create_task(self.run())

    def settle(self) -> None:
        """After the reactor stopped: end the tasks left on daphne's loop.

        Coroutines still suspended at exit are finalised by the garbage collector
        during interpreter shutdown, which can crash CPython (seen with 3.11).
        """
        loop = self.loop
        if loop is None:
            return
        left = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=STOP_TIMEOUT))
        loop.run_until_complete(loop.shutdown_asyncgens())

    def stop(self) -> defer.Deferred[None] | None:
        if self.task is None or self.task.done():
            return None
        self.task.cancel()
        # Twisted waits for this before it shuts down: runs in flight end as failed.
        return defer.Deferred.fromFuture(asyncio.ensure_future(self._stopped()))

    async def _stopped(self) -> None:
        assert self.task is not None
        await asyncio.wait([self.task], timeout=STOP_TIMEOUT)
        # A write still in its database thread publishes through this loop when it
        # commits: let it finish while the loop runs, or exit would wait for it forever.
        # Engine calls share one thread, so a no-op queued behind them drains them.
        with suppress(TimeoutError):
            await asyncio.wait_for(database_sync_to_async(_nothing)(), STOP_TIMEOUT)


class Command(BaseCommand):
    help = (
        "Serve the example project with daphne on 127.0.0.1, the demo engine running in "
        "the same process (local use only; prints the dashboard URL and a login)."
    )
    demo_name = DEMO_NAME  # the runs this demo makes (stale ones are failed at start)
    what = "research-report run"

    def engine(
        self, settings: DemoSettings, every: float | None, report: Any
    ) -> Coroutine[Any, Any, None]:
        """The demo engine, run on daphne's loop once serving."""
        return run_demo(settings, every=every, report=report)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Default: 127.0.0.1.")
        parser.add_argument(
            "--port", type=int, default=8000, help="Default: 8000; 0 picks a free port."
        )
        parser.add_argument(
            "--no-engine",
            action="store_true",
            help="Serve only; run the engine elsewhere (manage.py dagstream_demo, REDIS_URL).",
        )
        parser.add_argument(
            "--engine-line",
            default="",
            help="With --no-engine: where the engine runs, for the banner's Engine line.",
        )
        add_demo_arguments(parser, every=60.0)

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        no_engine: bool,
        engine_line: str,
        **options: Any,
    ) -> None:
        # Started from a shell without job control, SIGINT is ignored, and Twisted
        # only installs its handler over the default one: Ctrl-C must stop us.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        report = reporter(self.stdout)
        settings = demo_settings(options)
        # With --no-engine, demo runs belong to an engine elsewhere: leave them be.
        stale = [] if no_engine else fail_stale_runs(self.demo_name)
        password = ensure_demo_user(DEMO_USER, DEMO_PERMISSIONS, staff=True)
        second = ensure_demo_user(REVIEWER, REVIEWER_PERMISSIONS, staff=False)
        every = options["loop"] or None
        engine = _Engine(lambda: self.engine(settings, every, report))
        server = Server(
            application=get_default_application(),
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
        )

        def serving() -> None:
            if not server.listening_addresses:
                return  # daphne logged why and is stopping
            bound_port = server.listening_addresses[0][1]
            shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            base = f"http://{shown}:{bound_port}"
            pace = f"every {every:g} s" if every else "once"
            where = (
                engine_line or "none in this process (run manage.py dagstream_demo with REDIS_URL)"
                if no_engine
                else f"a {self.what} {pace} (seed {settings.seed}, "
                f"speed {settings.speed:g}), inside this process"
            )
            lines = [
                "dagstream demo (local use only)",
                f"  Dashboard: {base}/dags/",
                f"  Log in as: {DEMO_USER} / {password}",
                f"  Reviewer:  {REVIEWER} / {second} (some review gates need you both)",
                f"  Inbox:     {base}/dags/gates/",
                f"  Admin:     {base}/admin/",
                f"  Engine:    {where}",
                "  Ctrl-C stops.",
            ]
            if stale:
                lines.append(
                    f"Marked {len(stale)} run(s) left unfinished by an earlier demo failed."
                )
            report("\n".join(lines))
            if not no_engine:
                engine.start()

        reactor.callLater(0, serving)
        reactor.addSystemEventTrigger("before", "shutdown", engine.stop)
        with suppress(KeyboardInterrupt):  # Ctrl-C before Twisted took over the signal
            server.run()
        engine.settle()
        if not server.listening_addresses:
            raise CommandError(f"Could not listen on {host}:{port} (see the log above).")
        report("Stopped.")
