"""The nudge that sends a new gate's notifications now instead of at the next poll.

A commit that writes outbox rows calls :func:`wake`; the sender running in this
process (if any) waits on :data:`nudged`. Senders elsewhere find the rows at their
next poll (``NOTIFY_POLL_SECONDS``). Imports nothing, so the write path can use it.
"""

from __future__ import annotations

import threading

__all__ = ["nudged", "wake"]

nudged = threading.Event()


def wake() -> None:
    """Tell this process's sender that rows were written."""
    nudged.set()
