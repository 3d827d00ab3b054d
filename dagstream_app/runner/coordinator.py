"""One run's coordinator: the loop that alone writes to the stream, and what it reacts to.

Node tasks, the command reader and nodes growing the DAG post messages to one
queue; the coordinator handles them between node boundaries, so the event log's
order is its order. At each boundary it applies people's commands, skips dead
ends, checks the budget and starts what is ready (:class:`Schedule`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal, TypeVar

from dagstream_app import services
from dagstream_app.engine import BufferFull, Command, DagStream, deltas
from dagstream_app.runner.budget import BudgetPolicy
from dagstream_app.runner.budget_gates import BudgetGates
from dagstream_app.runner.context import Context
from dagstream_app.runner.definitions import DefinitionError, Step, Task, node_spec
from dagstream_app.runner.messages import Change, Commanded, Cost, Decided, Done, Message
from dagstream_app.runner.nodes import NodeWork, describe
from dagstream_app.runner.schedule import OPEN, Schedule
from dagstream_app.services import Delta

__all__ = ["Coordinator", "RunStatus"]

log = logging.getLogger(__name__)

T = TypeVar("T")
RunStatus = Literal["completed", "failed", "cancelled"]


async def _relay_commands(listener: DagStream, post: Callable[[Message], None]) -> None:
    """Post people's commands as they come, to wake the coordinator early."""
    while True:
        try:
            async for command in listener.commands():
                post(Commanded(command))
            return  # the run is over
        except Exception:  # node boundaries still read commands
            log.warning("dagstream runner: reading commands failed", exc_info=True)
            await asyncio.sleep(1)


def _failure_message(failures: Sequence[tuple[str, str]]) -> str:
    """Why the run failed: the first node's failure (and how many failed)."""
    node_id, reason = failures[0]
    first = f"node {node_id!r} {reason}"
    if len(failures) > 1:
        first = f"{len(failures)} nodes failed, first {first}"
    return f"The run failed: {first}" + ("" if first.endswith((".", "!", "?")) else ".")


class Coordinator:
    """One execution: the coordinator loop and the state it alone changes."""

    def __init__(
        self,
        stream: DagStream,
        steps: Sequence[Step],
        *,
        concurrency: int,
        budget: BudgetPolicy,
        clock: Callable[[], float],
    ) -> None:
        self.stream = stream
        self.dag_id = stream.dag_id
        self.concurrency = concurrency
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.schedule = Schedule(steps)
        self.nodes = NodeWork(stream, clock, self.post)
        self.outputs: dict[str, Any] = {}
        self.feedback: dict[str, str] = {}
        self.failures: list[tuple[str, str]] = []
        self.budget = budget
        self.budget_gates = BudgetGates(self, budget)
        self.paused = False  # a person paused it
        self.cancelled = False
        self.command_seq = 0
        self.results: dict[str, Any] = {}

    # ------------------------------------------------ called by node tasks

    def post(self, message: Message) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self.inbox.put_nowait(message)
        else:
            self.loop.call_soon_threadsafe(self.inbox.put_nowait, message)

    async def request(self, step: Step | None, edges: list[tuple[str, str]]) -> None:
        reply: asyncio.Future[None] = self.loop.create_future()
        self.post(Change(step, tuple(edges), reply))
        await reply

    def call_from_thread(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()
        coro.close()
        raise RuntimeError("The *_sync methods are for sync nodes; async nodes await add_node.")

    # ---------------------------------------------------------- the loop

    async def execute(self) -> RunStatus:
        """Run to the end; how it ended. Closes the stream, even when it raises."""
        # The reader has its own stream (and cursor): it only wakes the loop early.
        # Each boundary reads commands through the main stream, so a command made
        # before a node finished is always seen before the next node starts.
        listener: DagStream | None = None
        reader: asyncio.Task[None] | None = None
        try:
            listener = await DagStream.open(self.dag_id)
            reader = asyncio.create_task(_relay_commands(listener, self.post))
            return await self._coordinate()
        except (Exception, asyncio.CancelledError) as exc:
            await self._abandon(exc)
            raise
        finally:
            await self.nodes.stop_all()
            if reader is not None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            if listener is not None:
                await listener.close()
            await self.stream.close()

    async def _coordinate(self) -> RunStatus:
        while True:
            if not self.cancelled:
                await self._advance()
            if self.cancelled:
                return "cancelled"
            if not self._open():
                return await self._finish()
            # Everything that arrived meanwhile is handled before the next
            # boundary: finished nodes free their slots together.
            await self._handle(await self.inbox.get())
            while not self.inbox.empty() and not self.cancelled:
                await self._handle(self.inbox.get_nowait())

    async def _abandon(self, exc: BaseException) -> None:
        """Best effort: end the DAG as failed when the runner itself stops or crashes."""
        await self.nodes.stop_all()
        if isinstance(exc, asyncio.CancelledError):
            message = "The runner stopped before the run finished."
        else:
            message = f"The runner crashed: {describe(exc)}"
        try:
            await asyncio.wait_for(self.stream.fail(message), 10)
        except services.Conflict:
            pass  # already over
        except Exception:  # the original error matters more
            log.warning("dagstream runner: could not fail %s", self.dag_id, exc_info=True)

    def _open(self) -> bool:
        return self.budget.open_gate is not None or self.schedule.is_open()

    async def _set(
        self,
        node_id: str,
        status: str,
        *,
        output: Any = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        self.schedule.set(node_id, status)
        await self._report(deltas.node_state(node_id, status, output=output, metrics=metrics))

    async def _report(self, delta: Delta) -> None:
        """Report without waiting for the database (the stream keeps the order)."""
        try:
            self.stream.nowait.submit(delta)
        except BufferFull:  # the database is behind: let it catch up, then go on
            await self.stream.flush()
            self.stream.nowait.submit(delta)

    # ------------------------------------------------- node boundaries

    async def _advance(self) -> None:
        """Apply new commands, skip dead ends, handle the budget, start what is ready."""
        for command in await self.stream.pending_commands():
            await self._command(command)
            if self.cancelled:
                return
        while (skipped := self.schedule.next_to_skip()) is not None:
            await self._set(skipped, "skipped")
        await self.budget_gates.check()
        if self.paused or self.budget.open_gate is not None:
            return
        while (gate := self.schedule.next_gate()) is not None:
            await self._start(gate)
        while (task := self.schedule.next_task(self.concurrency)) is not None:
            await self._start(task)

    async def _start(self, step: Step) -> None:
        deps = self.schedule.deps[step.id]
        ctx = Context(
            self,
            step.id,
            {dep: self.outputs.get(dep) for dep in deps},
            {dep: self.feedback[dep] for dep in deps if dep in self.feedback},
        )
        await self._set(step.id, "running" if isinstance(step, Task) else "waiting")
        self.nodes.start(step, ctx)

    # ---------------------------------------------------------- messages

    async def _handle(self, message: Message) -> None:
        match message:
            case Done(error=None):
                await self._completed(message.node_id, message.output, message.duration)
            case Done(error=Exception() as error):
                await self._failed(message.node_id, error, message.duration)
            case Decided():
                await self._decided(message)
            case Cost():
                await self._cost(message)
            case Commanded():
                await self._command(message.command)
            case Change():
                await self._change(message)

    async def _completed(self, node_id: str, output: Any, duration: float) -> None:
        ctx = self.nodes.finished(node_id)
        self.outputs[node_id] = output
        metrics = {**ctx.metrics, "duration_s": round(duration, 3)}
        await self._set(node_id, "completed", output=output, metrics=metrics)
        await self._flow(node_id)

    async def _flow(self, node_id: str) -> None:
        for child in self.schedule.children[node_id]:
            if self.schedule.status[child] == "pending":
                await self._report(deltas.edge_active(node_id, child))

    async def _failed(self, node_id: str, error: Exception, duration: float) -> None:
        self.nodes.forget(node_id)
        if node_id == self.budget.open_gate:
            raise error  # the budget gate itself broke: the run cannot go on safely
        reason = f"raised {describe(error)}"
        self.failures.append((node_id, reason))
        await self._set(
            node_id,
            "failed",
            output={"error": describe(error)},
            metrics={"duration_s": round(duration, 3)},
        )
        await self._report(deltas.error(f"Node {node_id!r} {reason}", node_id=node_id))

    async def _decided(self, message: Decided) -> None:
        node_id, decision = message.node_id, message.decision
        self.nodes.forget(node_id)
        output = decision.as_output()
        metrics = {"duration_s": round(message.duration, 3)}
        if node_id == self.budget.open_gate:
            await self.budget_gates.decided(decision, output, metrics)
            return
        if decision.decision == "reject":
            self.failures.append((node_id, f"was {decision.rejection()}"))
            await self._set(node_id, "failed", output=output, metrics=metrics)
            return
        if decision.decision == "modify":
            self.feedback[node_id] = decision.feedback
        self.outputs[node_id] = output
        await self._set(node_id, "completed", output=output, metrics=metrics)
        await self._flow(node_id)

    async def _cost(self, message: Cost) -> None:
        ctx = self.nodes.contexts.get(message.node_id)
        if ctx is not None:
            ctx.metrics["cost"] = round(ctx.metrics.get("cost", 0.0) + message.amount, 6)
        await self._report(deltas.cost(spent=self.budget.add(message.amount)))

    async def _command(self, command: Command) -> None:
        # Commands come both from the reader and from each boundary's look: apply once.
        if command.seq <= self.command_seq:
            return
        self.command_seq = command.seq
        match command.type:
            case "pause":
                self.paused, self.budget_gates.engine_paused = True, False
            case "resume":
                self.paused, self.budget_gates.engine_paused = False, False
            case "cancel":
                await self.cancel()

    async def cancel(self) -> None:
        """Cancel running nodes, mark everything unfinished cancelled, confirm the cancel."""
        self.cancelled = True
        await self.nodes.stop_all()
        for node_id, status in list(self.schedule.status.items()):
            if status in OPEN:
                await self._set(node_id, "cancelled")
        if self.budget.open_gate is not None:
            await self.stream.node_state(self.budget.open_gate, "cancelled")
            self.budget.open_gate = None
        await self.stream.set_state("cancelled")

    # ------------------------------------------------------------ changes

    async def _change(self, message: Change) -> None:
        step, edges = message.step, message.edges
        try:
            self.schedule.check_change(step, edges, self.budget.gate_ids)
        except DefinitionError as exc:
            if not message.reply.done():
                message.reply.set_exception(exc)
            return
        # Change the schedule first (nothing awaits in between), then tell the stream.
        self.schedule.change(step, edges)
        if step is not None:
            await self.stream.mutate({"op": "add_node", "node": node_spec(step)})
        status = self.schedule.status
        for src, dst in edges:
            await self.stream.mutate({"op": "add_edge", "from": src, "to": dst})
            if status[src] == "completed" and status[dst] == "pending":
                await self.stream.edge_active(src, dst)
        if not message.reply.done():
            message.reply.set_result(None)

    # ------------------------------------------------------------------ end

    async def _finish(self) -> RunStatus:
        if self.failures:
            await self.stream.fail(_failure_message(self.failures), node_id=self.failures[0][0])
            return "failed"
        self.results = self.schedule.results(self.outputs)
        await self.stream.complete(self.results)
        return "completed"
