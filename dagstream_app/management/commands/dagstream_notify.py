"""Send the gate notification outbox: ``manage.py dagstream_notify`` (until stopped).

For deployments that set ``DAGSTREAM["NOTIFY_EMBEDDED"] = False`` and send from
processes of their own; any number may run (each message goes out from one of them).
``--once`` sends what is due now and exits.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dagstream_app.conf import config
from dagstream_app.notify import sender


class Command(BaseCommand):
    help = "Send the notifications of gates (emails, webhooks) from the outbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Send what is due now, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not config().notify_gates:
            raise CommandError(
                "Notifications are off: set DAGSTREAM['NOTIFY_GATES'] = True (and SITE_URL)."
            )
        if options["once"]:
            handled = 0
            while count := sender.send_due():
                handled += count
            self.stdout.write(f"{handled} notification(s) handled.")
            return
        stop = threading.Event()
        try:
            sender.run(stop)
        except KeyboardInterrupt:
            stop.set()
