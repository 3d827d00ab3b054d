"""Debian's Chromium, as every browser test launches it (Playwright downloads no browser)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import connections
from playwright.sync_api import Browser, Page, sync_playwright

from dagstream_app import services

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")


def chromium_options() -> dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch`` (the sync and the async API)."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS)}


@contextmanager
def sync_chromium() -> Iterator[Browser]:
    """Chromium through Playwright's sync API, for one test module (module scope).

    Sync Playwright keeps an event loop running on this thread while it lives, which
    trips Django's async-safety check for the ORM calls the tests make in between (they
    are plain sync calls; Django's docs suggest this switch for such hosts). It would
    also break every async test after the module: keep its scope to one module.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(**chromium_options())
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class PageErrors(list[str]):
    """What pages report as wrong: their uncaught errors and their console's messages of
    the ``console`` types, but those ``allow`` matches (a test may set it as it goes, e.g.
    before it takes a server down on purpose)."""

    def __init__(
        self, console: Collection[str] = ("error", "warning"), allow: re.Pattern[str] | None = None
    ) -> None:
        super().__init__()
        self.console = frozenset(console)
        self.allow = allow

    def add(self, text: str) -> None:
        if self.allow is None or not self.allow.search(text):
            self.append(text)


def page_errors(page: Page, into: PageErrors | None = None) -> PageErrors:
    """What ``page`` reports from now on as wrong (a list that fills as the page runs):
    ``into``, with what it holds already (several pages' in one), else a new
    :class:`PageErrors` of its uncaught errors, its console's errors and warnings."""
    errors = PageErrors() if into is None else into
    page.on("pageerror", lambda exc: errors.add(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.add(f"console.{msg.type}: {msg.text}") if msg.type in errors.console else None
        ),
    )
    return errors


class ServicesThread:
    """``services`` called on one worker thread, as an engine process would: off the
    thread where sync Playwright runs its event loop (``services.x(...)`` becomes
    ``thread.x(...)``, waiting for the result)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="engine")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return self._on_thread(getattr(services, name))

    def reports(self, dag_id: str) -> Any:
        """``services.reports(dag_id)``, each report made on the thread."""
        thread = self

        class OnThread:
            def __getattr__(self, name: str) -> Callable[..., Any]:
                return thread._on_thread(getattr(services.reports(dag_id), name))

        return OnThread()

    def _on_thread(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self.pool.submit(function, *args, **kwargs).result(timeout=60)

        return call

    def close(self) -> None:
        self.pool.submit(connections.close_all).result(timeout=60)
        self.pool.shutdown()
