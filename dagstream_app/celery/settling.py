"""Ending a run: once every node has finished, complete it (or fail it, saying which node).

Django must be set up before this module is imported.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connections

from dagstream_app import state
from dagstream_app.celery.cancelling import cancel_run
from dagstream_app.celery.writing import RunWriter
from dagstream_app.conf import config
from dagstream_app.engine import deltas
from dagstream_app.protocol import TERMINAL_STATUSES

__all__ = ["Settler"]

log = logging.getLogger(__name__)


class Settler:
    """Ends one run once every node has finished, from a thread of its own."""

    def __init__(self, writer: RunWriter) -> None:
        self.dag_id = writer.dag_id
        self.writer = writer
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._recheck = False

    def settle(self) -> None:
        """After a sink finished or a task failed: end the run once every node has finished.

        Other processes' last reports may still be on their way, and other branches
        may still run: a thread of its own (no task waits for it) looks again every
        ``IDLE_CHECK_SECONDS`` until the run has ended.
        """
        with self._lock:
            self._recheck = True
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._settle_loop, name=f"dagstream-settle-{self.dag_id}", daemon=True
            )
            self._thread.start()

    def _settle_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    self._recheck = False
                self.writer.flush()
                try:
                    ended = self._end_if_done()
                except Exception:
                    log.warning("dagstream: cannot check run %s", self.dag_id, exc_info=True)
                    ended = False
                with self._lock:
                    if ended:
                        self._thread = None
                        return
                    recheck = self._recheck
                if not recheck:
                    time.sleep(config().idle_check_seconds)
        finally:
            connections.close_all()  # this thread's own connection

    def _end_if_done(self) -> bool:
        """End the run if every node has finished; True once the run has ended."""
        progress = state.progress(self.dag_id)
        if progress is None or progress[1] in TERMINAL_STATUSES:
            return True
        if progress[1] == "cancelling":
            # A person's cancel ends the run cancelled, never failed by the tasks
            # it terminated (whichever process reports them first).
            return cancel_run(self.dag_id) or self._ended()
        if state.unfinished_count(self.dag_id):
            return False
        snapshot = state.snapshot(self.dag_id)
        if snapshot is None:
            return True
        broken = [n for n in snapshot.nodes if n.status in ("failed", "cancelled")]
        if broken:
            first = min(broken, key=lambda n: n.finished_at or "")
            reason = (first.output or {}).get("error") if isinstance(first.output, dict) else None
            what = "was revoked" if first.status == "cancelled" else f"failed: {reason}"
            message = f"The run failed: {first.label!r} {what}"
            self.writer.end(deltas.fail(message, node_id=first.id))
            return True
        sinks = {e.src for e in snapshot.edges}
        results = {n.id: n.output for n in snapshot.nodes if n.id not in sinks}
        self.writer.end(deltas.complete(results))
        return True

    def _ended(self) -> bool:
        progress = state.progress(self.dag_id)
        return progress is None or progress[1] in TERMINAL_STATUSES
