"""Running a run's nodes: each task or gate in an asyncio task that posts how it ended.

A node's task never writes to the stream: it posts a :class:`Done` or
:class:`Decided` to the coordinator, which reports it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import msgspec

from dagstream_app.engine import DagStream
from dagstream_app.runner.context import Context
from dagstream_app.runner.definitions import HumanGate, Step, Task
from dagstream_app.runner.messages import Decided, Done, Message

__all__ = ["NodeWork", "describe"]


def describe(exc: BaseException) -> str:
    """An exception as a person reads it: its type, and its message if it has one."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class NodeWork:
    """The nodes running now: their asyncio tasks and the contexts they were given."""

    def __init__(
        self, stream: DagStream, clock: Callable[[], float], post: Callable[[Message], None]
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.post = post
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.contexts: dict[str, Context] = {}

    def start(self, step: Step, ctx: Context) -> None:
        """Run ``step`` (a task, or a gate waiting for its decision) with ``ctx``."""
        self.contexts[step.id] = ctx
        work = self._work(step, ctx) if isinstance(step, Task) else self._wait_gate(step, ctx)
        self.tasks[step.id] = asyncio.create_task(work, name=f"dagstream node {step.id}")

    def finished(self, node_id: str) -> Context:
        """Forget the node that ended; the context it was given."""
        self.tasks.pop(node_id, None)
        return self.contexts.pop(node_id)

    def forget(self, node_id: str) -> None:
        """Forget the node, whether it was running or not."""
        self.tasks.pop(node_id, None)
        self.contexts.pop(node_id, None)

    async def cancel(self, node_id: str) -> None:
        """Cancel the node's task, if it runs, and forget it."""
        task = self.tasks.pop(node_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.contexts.pop(node_id, None)

    async def stop_all(self) -> None:
        """Cancel every node's task and wait until they have stopped."""
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, task: Task, ctx: Context) -> None:
        began = self.clock()
        try:
            if _is_async(task.fn):
                output = await task.fn(ctx)
            else:
                output = await asyncio.to_thread(task.fn, ctx)
            if inspect.isawaitable(output):
                output = await output
            # Fail here, as this node, rather than in the stream.
            output = msgspec.to_builtins(output)
            msgspec.to_builtins(ctx.metrics)
        except Exception as exc:  # noqa: BLE001 - a node's failure is reported, not raised
            self.post(Done(task.id, None, exc, self.clock() - began))
        else:
            self.post(Done(task.id, output, None, self.clock() - began))

    async def _wait_gate(self, gate: HumanGate, ctx: Context) -> None:
        began = self.clock()
        try:
            shown = gate.presentation(ctx) if callable(gate.presentation) else gate.presentation
            if inspect.isawaitable(shown):
                shown = await shown
            decision = await self.stream.gate(
                gate.id,
                dict(shown),
                timeout=gate.timeout,
                default=gate.default,
                assignees=gate.assignees,
                quorum=gate.quorum,
            )
        except Exception as exc:  # noqa: BLE001 - reported as the gate's failure
            self.post(Done(gate.id, None, exc, self.clock() - began))
        else:
            self.post(Decided(gate.id, decision, self.clock() - began))
