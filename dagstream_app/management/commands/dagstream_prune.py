"""Delete finished runs older than an age: ``manage.py dagstream_prune --older-than 30d``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dagstream_app import services, state
from dagstream_app.conf import config, retention_days_problem

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h`` or ``90m`` as a timedelta."""
    match = _AGE.match(text.strip())
    if match is None:
        raise CommandError(f"Bad age {text!r}: use a number and d, h or m, e.g. 30d, 12h, 90m.")
    try:
        return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    except OverflowError:
        raise CommandError(f"Bad age {text!r}: at most {timedelta.max.days} days.") from None


def cutoff(age: timedelta) -> datetime:
    """The moment ``age`` ago; an age reaching before year 1 is refused."""
    try:
        return timezone.now() - age
    except OverflowError:
        raise CommandError(f"Bad age {age.days}d: it reaches before the year 1.") from None


class Command(BaseCommand):
    help = (
        "Delete runs that finished before an age (default: DAGSTREAM['RETENTION_DAYS']), "
        "with their nodes, gates and events, in small batches; safe on a live database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", help="Age of the runs to delete: 30d, 12h, 90m (finished before)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only say how many runs would go."
        )
        parser.add_argument(
            "--batch-size", type=int, default=100, help="Runs looked up per batch (default 100)."
        )

    def handle(
        self, *args: Any, older_than: str | None, dry_run: bool, batch_size: int, **options: Any
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if older_than is not None:
            age = parse_age(older_than)
        elif (days := config().retention_days) is not None:
            problem = retention_days_problem(days)
            if problem is not None:
                raise CommandError(problem)
            age = timedelta(days=days)
        else:
            raise CommandError("Give --older-than (e.g. 30d) or set DAGSTREAM['RETENTION_DAYS'].")
        moment = cutoff(age)
        if dry_run:
            count = len(state.finished_before(moment))
            self.stdout.write(
                f"Would delete {count} run(s) finished before {moment:%Y-%m-%d %H:%M} UTC."
            )
            return
        deleted = 0
        while batch := state.finished_before(moment, batch_size):
            for dag_id in batch:
                try:
                    services.delete_dag(dag_id)
                except services.NotFound:
                    continue  # deleted meanwhile by someone else
                deleted += 1
            self.stdout.write(f"Deleted {deleted} run(s) so far…")
        self.stdout.write(f"Deleted {deleted} run(s) finished before {moment:%Y-%m-%d %H:%M} UTC.")
