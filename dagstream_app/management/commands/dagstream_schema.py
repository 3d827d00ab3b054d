"""Print the JSON Schema of protocol v1 (``manage.py dagstream_schema``), or with
``--openapi`` the OpenAPI 3.1 description of the HTTP read API."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dagstream_app.openapi import openapi
from dagstream_app.protocol import json_schema


class Command(BaseCommand):
    help = (
        "Print the JSON Schema (2020-12) of every dagstream protocol message, or with "
        "--openapi the OpenAPI 3.1 description of the HTTP read API (docs/openapi.json)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--openapi", action="store_true", help="the HTTP read API's OpenAPI description"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        schema = openapi() if options["openapi"] else json_schema()
        self.stdout.write(json.dumps(schema, indent=2, sort_keys=True))
