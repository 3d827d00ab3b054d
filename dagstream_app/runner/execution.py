"""Running a pipeline: the coordinator loop, its scheduling state, and the runner's front door.

One coordinator does every write to the stream, so the event log's order is its
order. Scheduling is incremental — each node knows how many dependencies it
still waits for, ready nodes sit in heaps by definition order, a node's end
touches only its children — so a 5,000-node run costs no more per step than a
five-node one.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import msgspec

from dagstream_app import graph, services
from dagstream_app.engine import BufferFull, Command, DagStream, GateDecision
from dagstream_app.runner.budget import BudgetPolicy
from dagstream_app.runner.context import Context
from dagstream_app.runner.definitions import (
    DefinitionError,
    HumanGate,
    Pipeline,
    Step,
    Task,
    check_step,
    default_dag_id,
    is_positive,
)
from dagstream_app.runner.messages import Change, Commanded, Cost, Decided, Done, Message

log = logging.getLogger(__name__)

T = TypeVar("T")
RunStatus = Literal["completed", "failed", "cancelled"]

_OPEN = ("pending", "running", "waiting")
_DEAD_END = frozenset({"failed", "skipped", "cancelled"})


@dataclass(frozen=True)
class RunResult:
    """How a run ended. ``results`` is what ``execution_complete`` carried."""

    dag_id: str
    status: RunStatus
    results: dict[str, Any]
    outputs: dict[str, Any]
    spent: float
    failed: tuple[str, ...]


@dataclass(frozen=True)
class Runner:
    """Runs a :class:`Pipeline`, as many times as asked.

    ``budget``: when the reported cost reaches it, the run pauses and opens a
    gate "Budget reached: continue?"; approving raises the budget by
    ``budget_step`` (default: the initial budget), rejecting cancels the run.
    ``clock`` measures node durations (injectable for tests).
    """

    pipeline: Pipeline
    concurrency: int = 4
    budget: float | None = None
    budget_step: float | None = None
    clock: Callable[[], float] = time.perf_counter

    def __post_init__(self) -> None:
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int):
            raise DefinitionError(f"concurrency must be an integer, not {self.concurrency!r}.")
        if self.concurrency < 1:
            raise DefinitionError(f"concurrency must be at least 1, not {self.concurrency}.")
        for name in ("budget", "budget_step"):
            value = getattr(self, name)
            if value is not None and not is_positive(value):
                raise DefinitionError(f"{name} must be a positive number, not {value!r}.")

    async def run(self, dag_id: str | None = None) -> RunResult:
        """Create the DAG ``dag_id`` (default: the pipeline's name, a random suffix); run it."""
        steps = self.pipeline.steps
        creating = asyncio.ensure_future(
            DagStream.create(
                dag_id or default_dag_id(self.pipeline.name),
                name=self.pipeline.name,
                nodes=[{"id": s.id, "label": s.label} for s in steps],
                edges=[(dep, s.id) for s in steps for dep in s.after],
                budget=self.budget,
            )
        )
        try:
            stream = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # Stopped while creating: let the DAG be created, then end it, rather
            # than leave it "running" (or a write in flight at shutdown).
            with suppress(Exception):
                stream = await creating
                await stream.fail("The runner stopped before the run started.")
            raise
        return await _Run(self, stream).execute()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class _Run:
    """One execution: the coordinator loop and the state it alone changes."""

    def __init__(self, runner: Runner, stream: DagStream) -> None:
        self.runner = runner
        self.stream = stream
        self.dag_id = stream.dag_id
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.steps: dict[str, Step] = {}
        self.order: dict[str, int] = {}
        self.deps: dict[str, list[str]] = {}
        self.children: dict[str, list[str]] = {}
        self.status: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        self.unmet: dict[str, int] = {}  # dependencies not completed yet
        self.ready_tasks: list[tuple[int, str]] = []  # heaps by definition order
        self.ready_gates: list[tuple[int, str]] = []
        self.to_skip: deque[str] = deque()  # pending nodes below a dead end
        self.running_tasks = 0
        self.last_completed: str | None = None  # a budget gate is drawn after it
        for step in runner.pipeline.steps:
            self._register(step)
        for step in runner.pipeline.steps:
            for dep in step.after:
                self._link(dep, step.id)
        for step in runner.pipeline.steps:
            self._mark_if_ready(step.id)
        self.outputs: dict[str, Any] = {}
        self.feedback: dict[str, str] = {}
        self.contexts: dict[str, Context] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.failures: list[tuple[str, str]] = []
        self.budget = BudgetPolicy(runner.budget, runner.budget_step or runner.budget or 0.0)
        self.engine_paused = False  # the runner paused the DAG (budget)
        self.paused = False  # a person paused it
        self.cancelled = False
        self.command_seq = 0
        self.results: dict[str, Any] = {}

    # ---------------------------------------------------------- structure

    def _register(self, step: Step) -> None:
        self.steps[step.id] = step
        self.order[step.id] = len(self.order)
        self.deps[step.id] = []
        self.children[step.id] = []
        self.status[step.id] = "pending"
        self.counts["pending"] += 1
        self.unmet[step.id] = 0

    def _link(self, src: str, dst: str) -> None:
        self.deps[dst].append(src)
        self.children[src].append(dst)
        if self.status[src] != "completed":
            self.unmet[dst] += 1
        if self.status[src] in _DEAD_END:
            self.to_skip.append(dst)

    def _mark_if_ready(self, node_id: str) -> None:
        if self.status[node_id] == "pending" and not self.unmet[node_id]:
            heap = self.ready_tasks if isinstance(self.steps[node_id], Task) else self.ready_gates
            heapq.heappush(heap, (self.order[node_id], node_id))

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

    async def execute(self) -> RunResult:
        # The reader has its own stream (and cursor): it only wakes the loop early.
        # Each boundary reads commands through the main stream, so a command made
        # before a node finished is always seen before the next node starts.
        listener: DagStream | None = None
        reader: asyncio.Task[None] | None = None
        try:
            listener = await DagStream.open(self.dag_id)
            reader = asyncio.create_task(self._read_commands(listener))
            status = await self._coordinate()
        except (Exception, asyncio.CancelledError) as exc:
            await self._abandon(exc)
            raise
        finally:
            await self._stop_tasks()
            if reader is not None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            if listener is not None:
                await listener.close()
            await self.stream.close()
        return RunResult(
            dag_id=self.dag_id,
            status=status,
            results=self.results,
            outputs=dict(self.outputs),
            spent=self.budget.spent,
            failed=tuple(node_id for node_id, _ in self.failures),
        )

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

    async def _read_commands(self, listener: DagStream) -> None:
        while True:
            try:
                async for command in listener.commands():
                    self.post(Commanded(command))
                return  # the run is over
            except Exception:  # node boundaries still read commands
                log.warning("dagstream runner: reading commands failed", exc_info=True)
                await asyncio.sleep(1)

    async def _abandon(self, exc: BaseException) -> None:
        """Best effort: end the DAG as failed when the runner itself stops or crashes."""
        await self._stop_tasks()
        if isinstance(exc, asyncio.CancelledError):
            message = "The runner stopped before the run finished."
        else:
            message = f"The runner crashed: {_describe(exc)}"
        try:
            await asyncio.wait_for(self.stream.fail(message), 10)
        except services.Conflict:
            pass  # already over
        except Exception:  # the original error matters more
            log.warning("dagstream runner: could not fail %s", self.dag_id, exc_info=True)

    async def _stop_tasks(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _open(self) -> bool:
        return self.budget.open_gate is not None or any(self.counts[s] for s in _OPEN)

    async def _set(self, node_id: str, status: str, **details: Any) -> None:
        before = self.status[node_id]
        self.status[node_id] = status
        self.counts[before] -= 1
        self.counts[status] += 1
        if isinstance(self.steps[node_id], Task):
            self.running_tasks += (status == "running") - (before == "running")
        if status == "completed":
            self.last_completed = node_id
            for child in self.children[node_id]:
                self.unmet[child] -= 1
                self._mark_if_ready(child)
        elif status in _DEAD_END:
            self.to_skip.extend(self.children[node_id])
        await self._report("node_state", node_id, status, **details)

    async def _report(self, kind: str, *args: Any, **kwargs: Any) -> None:
        """Report without waiting for the database (the stream keeps the order)."""
        report = getattr(self.stream.nowait, kind)
        try:
            report(*args, **kwargs)
        except BufferFull:  # the database is behind: let it catch up, then go on
            await self.stream.flush()
            report(*args, **kwargs)

    # ------------------------------------------------- node boundaries

    async def _advance(self) -> None:
        """Apply new commands, skip dead ends, handle the budget, start what is ready."""
        for command in await self.stream.pending_commands():
            await self._command(command)
            if self.cancelled:
                return
        await self._skip_dead_ends()
        pending = self.counts["pending"] > 0
        if self.budget.open_gate is None and self.budget.exhausted() and pending:
            await self._open_budget_gate()
        elif self.budget.open_gate is not None and not pending:
            await self._close_budget_gate()
        if self.paused or self.budget.open_gate is not None:
            return
        while self.ready_gates:
            _, node_id = heapq.heappop(self.ready_gates)
            if self.status[node_id] == "pending" and not self.unmet[node_id]:
                await self._start(self.steps[node_id])
        while self.ready_tasks and self.running_tasks < self.runner.concurrency:
            _, node_id = heapq.heappop(self.ready_tasks)
            if self.status[node_id] == "pending" and not self.unmet[node_id]:
                await self._start(self.steps[node_id])

    async def _skip_dead_ends(self) -> None:
        while self.to_skip:
            node_id = self.to_skip.popleft()
            if self.status[node_id] == "pending":
                await self._set(node_id, "skipped")

    async def _start(self, step: Step) -> None:
        deps = self.deps[step.id]
        ctx = Context(
            self,
            step.id,
            {dep: self.outputs.get(dep) for dep in deps},
            {dep: self.feedback[dep] for dep in deps if dep in self.feedback},
        )
        self.contexts[step.id] = ctx
        if isinstance(step, Task):
            await self._set(step.id, "running")
            work = self._work(step, ctx)
        else:
            await self._set(step.id, "waiting")
            work = self._wait_gate(step, ctx)
        self.tasks[step.id] = asyncio.create_task(work, name=f"dagstream node {step.id}")

    async def _work(self, task: Task, ctx: Context) -> None:
        began = self.runner.clock()
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
            self.post(Done(task.id, None, exc, self.runner.clock() - began))
        else:
            self.post(Done(task.id, output, None, self.runner.clock() - began))

    async def _wait_gate(self, gate: HumanGate, ctx: Context) -> None:
        began = self.runner.clock()
        try:
            shown = gate.presentation(ctx) if callable(gate.presentation) else gate.presentation
            if inspect.isawaitable(shown):
                shown = await shown
            decision = await self.stream.gate(
                gate.id, dict(shown), timeout=gate.timeout, default=gate.default
            )
        except Exception as exc:  # noqa: BLE001 - reported as the gate's failure
            self.post(Done(gate.id, None, exc, self.runner.clock() - began))
        else:
            self.post(Decided(gate.id, decision, self.runner.clock() - began))

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
        self.tasks.pop(node_id, None)
        ctx = self.contexts.pop(node_id)
        self.outputs[node_id] = output
        metrics = {**ctx.metrics, "duration_s": round(duration, 3)}
        await self._set(node_id, "completed", output=output, metrics=metrics)
        await self._flow(node_id)

    async def _flow(self, node_id: str) -> None:
        for child in self.children[node_id]:
            if self.status[child] == "pending":
                await self._report("edge_active", node_id, child)

    async def _failed(self, node_id: str, error: Exception, duration: float) -> None:
        self.tasks.pop(node_id, None)
        self.contexts.pop(node_id, None)
        if node_id == self.budget.open_gate:
            raise error  # the budget gate itself broke: the run cannot go on safely
        reason = f"raised {_describe(error)}"
        self.failures.append((node_id, reason))
        await self._set(
            node_id,
            "failed",
            output={"error": _describe(error)},
            metrics={"duration_s": round(duration, 3)},
        )
        await self._report("error", f"Node {node_id!r} {reason}", node_id=node_id)

    async def _decided(self, message: Decided) -> None:
        node_id, decision = message.node_id, message.decision
        self.tasks.pop(node_id, None)
        self.contexts.pop(node_id, None)
        output = {
            "decision": decision.decision,
            "feedback": decision.feedback,
            "decided_by": decision.decided_by,
        }
        metrics = {"duration_s": round(message.duration, 3)}
        if node_id == self.budget.open_gate:
            await self._budget_decided(decision, output, metrics)
            return
        if decision.decision == "reject":
            who = decision.decided_by or "the timeout default"
            reason = f"was rejected by {who}" + (
                f": {decision.feedback}" if decision.feedback else ""
            )
            self.failures.append((node_id, reason))
            await self._set(node_id, "failed", output=output, metrics=metrics)
            return
        if decision.decision == "modify":
            self.feedback[node_id] = decision.feedback
        self.outputs[node_id] = output
        await self._set(node_id, "completed", output=output, metrics=metrics)
        await self._flow(node_id)

    async def _cost(self, message: Cost) -> None:
        ctx = self.contexts.get(message.node_id)
        if ctx is not None:
            ctx.metrics["cost"] = round(ctx.metrics.get("cost", 0.0) + message.amount, 6)
        await self._report("cost", spent=self.budget.add(message.amount))

    async def _command(self, command: Command) -> None:
        # Commands come both from the reader and from each boundary's look: apply once.
        if command.seq <= self.command_seq:
            return
        self.command_seq = command.seq
        match command.type:
            case "pause":
                self.paused, self.engine_paused = True, False
            case "resume":
                self.paused, self.engine_paused = False, False
            case "cancel":
                await self._cancel()

    async def _cancel(self) -> None:
        """Cancel running nodes, mark everything unfinished cancelled, confirm the cancel."""
        self.cancelled = True
        await self._stop_tasks()
        for node_id, status in list(self.status.items()):
            if status in _OPEN:
                await self._set(node_id, "cancelled")
        if self.budget.open_gate is not None:
            await self.stream.node_state(self.budget.open_gate, "cancelled")
            self.budget.open_gate = None
        await self.stream.set_state("cancelled")

    # ------------------------------------------------------------- budget

    async def _open_budget_gate(self) -> None:
        gate = self.budget.next_gate(self.steps)
        if not self.paused:
            try:
                await self.stream.set_state("paused")
                self.engine_paused = True
            except services.Conflict:
                pass  # a person paused or cancelled first; their command follows
        await self.stream.mutate({"op": "add_node", "node": {"id": gate.id, "label": gate.label}})
        if self.last_completed is not None:
            # The gate follows the node whose cost reached the budget: an edge places
            # it there in the graph (without one it would be drawn as a start node).
            edge = {"op": "add_edge", "from": self.last_completed, "to": gate.id}
            await self.stream.mutate(edge)
        await self.stream.node_state(gate.id, "waiting")
        ctx = Context(self, gate.id, {}, {})
        self.tasks[gate.id] = asyncio.create_task(self._wait_gate(gate, ctx))

    async def _budget_decided(
        self, decision: GateDecision, output: dict[str, Any], metrics: dict[str, Any]
    ) -> None:
        gate_id = self.budget.open_gate
        assert gate_id is not None
        if decision.decision == "reject":
            self.budget.open_gate = None
            await self.stream.node_state(gate_id, "failed", output=output, metrics=metrics)
            await self._cancel()
            return
        budget = self.budget.raise_for(decision)
        await self.stream.node_state(
            gate_id, "completed", output={**output, "budget": budget}, metrics=metrics
        )
        await self.stream.cost(budget=budget)
        await self._resume_after_budget()

    async def _close_budget_gate(self) -> None:
        """Nothing is left to spend on: the question is moot."""
        gate_id = self.budget.open_gate
        assert gate_id is not None
        self.budget.open_gate = None
        task = self.tasks.pop(gate_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.contexts.pop(gate_id, None)
        await self.stream.node_state(gate_id, "skipped")
        await self._resume_after_budget()

    async def _resume_after_budget(self) -> None:
        if not self.engine_paused:
            return
        self.engine_paused = False
        with suppress(services.Conflict):  # a person changed the state; their command follows
            await self.stream.set_state("running")

    # ------------------------------------------------------------ changes

    async def _change(self, message: Change) -> None:
        step, edges = message.step, message.edges
        try:
            self._check_change(step, edges)
        except DefinitionError as exc:
            if not message.reply.done():
                message.reply.set_exception(exc)
            return
        # Register first (nothing awaits in between), then tell the stream.
        if step is not None:
            self._register(step)
        for src, dst in edges:
            self._link(src, dst)
        if step is not None:
            self._mark_if_ready(step.id)
            await self.stream.mutate(
                {"op": "add_node", "node": {"id": step.id, "label": step.label}}
            )
        for src, dst in edges:
            await self.stream.mutate({"op": "add_edge", "from": src, "to": dst})
            if self.status[src] == "completed" and self.status[dst] == "pending":
                await self.stream.edge_active(src, dst)
        if not message.reply.done():
            message.reply.set_result(None)

    def _check_change(self, step: Step | None, edges: tuple[tuple[str, str], ...]) -> None:
        known = set(self.steps)
        if step is not None:
            check_step(step)
            if step.id in known or step.id in self.budget.gate_ids:
                raise DefinitionError(f"Duplicate node id {step.id!r}.")
            known.add(step.id)
        for src, dst in edges:
            for end in (src, dst):
                if end not in known:
                    raise DefinitionError(f"Edge {src!r} -> {dst!r} names unknown node {end!r}.")
            if src in self.deps.get(dst, ()) or edges.count((src, dst)) > 1:
                raise DefinitionError(f"Edge {src!r} -> {dst!r} already exists.")
            if dst in self.status and self.status[dst] != "pending":
                raise DefinitionError(
                    f"Node {dst!r} is {self.status[dst]}; it can no longer wait for {src!r}."
                )
        current = [(dep, node) for node, deps in self.deps.items() for dep in deps]
        cycle = graph.find_cycle([*current, *edges])
        if cycle:
            raise DefinitionError(f"That change would make a cycle: {' -> '.join(cycle)}.")

    # ------------------------------------------------------------------ end

    async def _finish(self) -> RunStatus:
        if self.failures:
            node_id, reason = self.failures[0]
            first = f"node {node_id!r} {reason}"
            if len(self.failures) > 1:
                first = f"{len(self.failures)} nodes failed, first {first}"
            message = f"The run failed: {first}" + ("" if first.endswith((".", "!", "?")) else ".")
            await self.stream.fail(message, node_id=node_id)
            return "failed"
        self.results = {
            node_id: self.outputs[node_id]
            for node_id, status in self.status.items()
            if status == "completed" and not self.children[node_id]
        }
        await self.stream.complete(self.results)
        return "completed"
