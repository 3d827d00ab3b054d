"""Print the JSON Schema of protocol v1: ``manage.py dagstream_schema``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from dagstream_app.protocol import json_schema


class Command(BaseCommand):
    help = "Print the JSON Schema (2020-12) of every dagstream protocol message."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True))
