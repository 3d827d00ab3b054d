"""A host project for the tests: the example project with a base template of its own."""

from __future__ import annotations

from typing import Any

from project.settings import *  # noqa: F403
from project.settings import BASE_DIR, DAGSTREAM, TEMPLATES

_engine: dict[str, Any] = TEMPLATES[0]
TEMPLATES = [{**_engine, "DIRS": [BASE_DIR / "tests" / "templates", *_engine["DIRS"]]}]
DAGSTREAM = {**DAGSTREAM, "BASE_TEMPLATE": "host_base.html"}
