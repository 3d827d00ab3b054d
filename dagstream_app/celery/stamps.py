"""What a task message carries: the work embedded in it, and the stamps that tie it to its run.

Plain Celery: importing it needs no Django.
"""

from __future__ import annotations

from typing import Any

from celery.canvas import Signature, signature

from dagstream_app.celery.canvas import STEP_STAMP

__all__ = ["budget_step", "inherited_stamps", "message_tasks", "stamp_headers"]


def message_tasks(
    headers: dict[str, Any], body: Any
) -> tuple[Signature, list[tuple[str, Signature]]]:
    """The task a message carries, and what runs after it (as stamped-on-the-way signatures).

    The embedded signatures are put back into ``body`` as the objects returned,
    so stamping them stamps what is sent.
    """
    kwargs = body[1] if isinstance(body, (list, tuple)) and len(body) > 1 else {}
    root = Signature(headers.get("task"), kwargs=kwargs if isinstance(kwargs, dict) else {})
    root.options.update(task_id=headers.get("id"), **(headers.get("stamps") or {}))
    embed = body[2] if isinstance(body, (list, tuple)) and len(body) > 2 else None
    after: list[tuple[str, Signature]] = []
    if isinstance(embed, dict):
        chain = embed.get("chain")
        if chain:
            steps = [signature(s) for s in chain]
            embed["chain"] = steps
            after += [("chain", s) for s in reversed(steps)]  # Celery keeps it last-first
        if embed.get("chord"):
            embed["chord"] = signature(embed["chord"])
            after.append(("chord", embed["chord"]))
        if embed.get("callbacks"):
            embed["callbacks"] = [signature(s) for s in embed["callbacks"]]
            after += [("link", s) for s in embed["callbacks"]]
    return root, after


def stamp_headers(headers: dict[str, Any], root: Signature) -> None:
    """Copy the stamps ``root`` was given into the message headers."""
    stamps = {k: root.options[k] for k in root.options.get("stamped_headers", ())}
    headers["stamps"] = {**(headers.get("stamps") or {}), **stamps}
    headers["stamped_headers"] = sorted({*(headers.get("stamped_headers") or ()), *stamps})


def budget_step(request_stamps: dict[str, Any]) -> float | None:
    """The run's budget step, as its tasks' stamps carry it."""
    step = request_stamps.get(STEP_STAMP)
    if isinstance(step, (list, tuple)):
        step = step[0] if step else None
    return float(step) if isinstance(step, (int, float)) else None


def inherited_stamps(request_stamps: dict[str, Any]) -> dict[str, Any]:
    """The run-wide stamps (not the node) a task passes on to the work it adds."""
    step = budget_step(request_stamps)
    return {} if step is None else {STEP_STAMP: step}
