"""Debian's Chromium, as every browser test launches it (Playwright downloads no browser)."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")


def chromium_options() -> dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch`` (the sync and the async API)."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS)}
