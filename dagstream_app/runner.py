"""A reference DAG runner: run a pipeline defined in Python and stream it live.

A :class:`Pipeline` is a list of :class:`Node` (an async or sync callable; sync
ones run in a thread) and :class:`Gate` (a human decision) steps with their
dependencies. :meth:`Runner.run` creates the DAG through the engine API, starts
ready nodes up to a concurrency limit and reports every change. Pause, resume,
cancel, gate decisions and the budget are honoured at node boundaries. See
``docs/runner.md``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import msgspec

from dagstream_app import graph, services
from dagstream_app.engine import Command, DagStream, GateDecision

__all__ = ["Context", "DefinitionError", "Gate", "Node", "Pipeline", "RunResult", "Runner", "Step"]

log = logging.getLogger(__name__)

T = TypeVar("T")
NodeFn = Callable[["Context"], Any]
PresentationFn = Callable[["Context"], Any]
Decision = Literal["approve", "reject", "modify"]
RunStatus = Literal["completed", "failed", "cancelled"]

_OPEN = frozenset({"pending", "running", "waiting"})
_DEAD_END = frozenset({"failed", "skipped", "cancelled"})
_MAX_ID = 200


class DefinitionError(ValueError):
    """A pipeline, or a change to it at run time, that cannot run; the message names why."""


def _ids(value: Sequence[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Node:
    """A unit of work: ``fn(ctx)`` returns the node's (JSON-serialisable) output."""

    id: str
    fn: NodeFn
    after: Sequence[str] = ()
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "after", _ids(self.after))
        if not callable(self.fn):
            raise DefinitionError(f"Node {self.id!r}: fn must be callable, not {self.fn!r}.")


@dataclass(frozen=True)
class Gate:
    """A human gate: shows ``presentation`` (a dict, or ``fn(ctx)`` making one) and waits.

    Approve continues; modify continues and hands the feedback to the dependants
    (``ctx.feedback``); reject fails the gate and skips everything after it. With
    ``timeout`` seconds, ``default`` is decided if nobody decides in time.
    """

    id: str
    presentation: Mapping[str, Any] | PresentationFn
    after: Sequence[str] = ()
    label: str = ""
    timeout: float | None = None
    default: Decision | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "after", _ids(self.after))
        if (self.timeout is None) != (self.default is None):
            raise DefinitionError(f"Gate {self.id!r}: timeout and default go together.")


Step = Node | Gate


@dataclass(frozen=True)
class Pipeline:
    """A named DAG definition, checked when built: ids unique, dependencies known, no cycle."""

    name: str
    steps: Sequence[Step]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        _check_definition(self.steps)


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
            if value is not None and not _positive(value):
                raise DefinitionError(f"{name} must be a positive number, not {value!r}.")

    async def run(self, dag_id: str | None = None) -> RunResult:
        """Create the DAG ``dag_id`` (default: the pipeline's name, a random suffix); run it."""
        steps = self.pipeline.steps
        creating = asyncio.ensure_future(
            DagStream.create(
                dag_id or _default_dag_id(self.pipeline.name),
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


class Context:
    """What a node's callable gets: inputs, feedback, and ways to report cost and grow the DAG.

    ``inputs``: outputs of the node's dependencies; ``results``: outputs of every
    node completed so far; ``feedback``: the feedback of upstream gates decided
    "modify"; ``metrics``: a dict the node may fill (reported on completion).
    """

    def __init__(
        self, run: _Run, node_id: str, inputs: dict[str, Any], feedback: dict[str, str]
    ) -> None:
        self._run = run
        self.dag_id = run.stream.dag_id
        self.node_id = node_id
        self.inputs: Mapping[str, Any] = MappingProxyType(inputs)
        self.results: Mapping[str, Any] = MappingProxyType(run.outputs)
        self.feedback: Mapping[str, str] = MappingProxyType(feedback)
        self.metrics: dict[str, Any] = {}

    def add_cost(self, amount: float) -> None:
        """Report ``amount`` more spent (say, one LLM call's price). Safe from any thread."""
        if not _number(amount) or amount < 0:
            raise ValueError(f"A cost is a non-negative number, not {amount!r}.")
        self._run.post(_Cost(self.node_id, float(amount)))

    async def add_node(self, step: Step, *, before: Sequence[str] | str = ()) -> None:
        """Add ``step`` (after ``step.after``); each node in ``before`` will wait for it.

        Raises :class:`DefinitionError` if the change cannot run (unknown or
        duplicate id, a node that has already started, a cycle).
        """
        edges = [(dep, step.id) for dep in _ids(step.after)]
        edges += [(step.id, dst) for dst in _ids(before)]
        await self._run.request(step, edges)

    async def add_edge(self, src: str, dst: str) -> None:
        """Make ``dst`` (not started yet) wait for ``src``."""
        await self._run.request(None, [(src, dst)])

    def add_node_sync(self, step: Step, *, before: Sequence[str] | str = ()) -> None:
        """:meth:`add_node` for sync callables (which run in a thread)."""
        self._run.call_from_thread(self.add_node(step, before=before))

    def add_edge_sync(self, src: str, dst: str) -> None:
        """:meth:`add_edge` for sync callables (which run in a thread)."""
        self._run.call_from_thread(self.add_edge(src, dst))


# ------------------------------------------------------------ definitions


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: object) -> bool:
    return _number(value) and value > 0  # type: ignore[operator]


def _check_step(step: object) -> None:
    if not isinstance(step, (Node, Gate)):
        raise DefinitionError(f"{step!r} is not a Node or a Gate.")
    if not isinstance(step.id, str) or not 1 <= len(step.id) <= _MAX_ID:
        raise DefinitionError(f"Bad node id {step.id!r}: use 1-{_MAX_ID} characters.")
    if len(step.label) > _MAX_ID:
        raise DefinitionError(f"The label of {step.id!r} is over {_MAX_ID} characters.")
    if len(set(step.after)) != len(step.after):
        raise DefinitionError(f"Node {step.id!r} lists a dependency twice: {list(step.after)}.")


def _check_definition(steps: Sequence[Step]) -> None:
    known: set[str] = set()
    for step in steps:
        _check_step(step)
        if step.id in known:
            raise DefinitionError(f"Duplicate node id {step.id!r}.")
        known.add(step.id)
    for step in steps:
        for dep in step.after:
            if dep not in known:
                raise DefinitionError(f"Node {step.id!r} depends on unknown node {dep!r}.")
    cycle = graph.find_cycle((dep, s.id) for s in steps for dep in s.after)
    if cycle:
        raise DefinitionError(f"The dependencies form a cycle: {' -> '.join(cycle)}.")


def _default_dag_id(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:80] or "run"
    return f"{slug}-{uuid.uuid4().hex[:8]}"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


# --------------------------------------------------------------- messages
# Node tasks and the command reader talk to the coordinator through one queue;
# the coordinator alone writes to the stream, so the event order is its order.


@dataclass(frozen=True)
class _Done:
    node_id: str
    output: Any
    error: Exception | None
    duration: float


@dataclass(frozen=True)
class _Decided:
    node_id: str
    decision: GateDecision
    duration: float


@dataclass(frozen=True)
class _Cost:
    node_id: str
    amount: float


@dataclass(frozen=True)
class _Commanded:
    command: Command


@dataclass(frozen=True)
class _Change:
    step: Step | None
    edges: tuple[tuple[str, str], ...]
    reply: asyncio.Future[None] = field(compare=False)


_Message = _Done | _Decided | _Cost | _Commanded | _Change


# -------------------------------------------------------------------- run


class _Run:
    """One execution: the coordinator loop and the state it alone changes."""

    def __init__(self, runner: Runner, stream: DagStream) -> None:
        self.runner = runner
        self.stream = stream
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[_Message] = asyncio.Queue()
        self.steps: dict[str, Step] = {s.id: s for s in runner.pipeline.steps}
        self.deps: dict[str, list[str]] = {s.id: list(s.after) for s in runner.pipeline.steps}
        self.status: dict[str, str] = dict.fromkeys(self.steps, "pending")
        self.outputs: dict[str, Any] = {}
        self.feedback: dict[str, str] = {}
        self.contexts: dict[str, Context] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.failures: list[tuple[str, str]] = []
        self.spent = 0.0
        self.budget = runner.budget
        self.budget_gate: str | None = None
        self.budget_gates: set[str] = set()
        self.engine_paused = False  # the runner paused the DAG (budget)
        self.paused = False  # a person paused it
        self.cancelled = False
        self.command_seq = 0
        self.results: dict[str, Any] = {}

    # ------------------------------------------------ called by node tasks

    def post(self, message: _Message) -> None:
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
        self.post(_Change(step, tuple(edges), reply))
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
            listener = await DagStream.open(self.stream.dag_id)
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
            dag_id=self.stream.dag_id,
            status=status,
            results=self.results,
            outputs=dict(self.outputs),
            spent=self.spent,
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
            await self._handle(await self.inbox.get())

    async def _read_commands(self, listener: DagStream) -> None:
        while True:
            try:
                async for command in listener.commands():
                    self.post(_Commanded(command))
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
            log.warning("dagstream runner: could not fail %s", self.stream.dag_id, exc_info=True)

    async def _stop_tasks(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _open(self) -> bool:
        return self.budget_gate is not None or any(s in _OPEN for s in self.status.values())

    def _pending(self) -> bool:
        return any(s == "pending" for s in self.status.values())

    def _children(self, node_id: str) -> list[str]:
        return [child for child, deps in self.deps.items() if node_id in deps]

    async def _set(self, node_id: str, status: str, **details: Any) -> None:
        self.status[node_id] = status
        await self.stream.node_state(node_id, status, **details)

    # ------------------------------------------------- node boundaries

    async def _advance(self) -> None:
        """Apply new commands, skip dead ends, handle the budget, start what is ready."""
        for command in await self.stream.pending_commands():
            await self._command(command)
            if self.cancelled:
                return
        await self._skip_dead_ends()
        if self.budget_gate is None and self._exhausted() and self._pending():
            await self._open_budget_gate()
        elif self.budget_gate is not None and not self._pending():
            await self._close_budget_gate()
        if self.paused or self.budget_gate is not None:
            return
        running = sum(
            1 for n, s in self.status.items() if s == "running" and isinstance(self.steps[n], Node)
        )
        for node_id, step in self.steps.items():
            if self.status[node_id] != "pending":
                continue
            if any(self.status[dep] != "completed" for dep in self.deps[node_id]):
                continue
            if isinstance(step, Node):
                if running >= self.runner.concurrency:
                    continue
                running += 1
            await self._start(step)

    async def _skip_dead_ends(self) -> None:
        changed = True
        while changed:
            changed = False
            for node_id, deps in self.deps.items():
                if self.status[node_id] == "pending" and any(
                    self.status[dep] in _DEAD_END for dep in deps
                ):
                    await self._set(node_id, "skipped")
                    changed = True

    async def _start(self, step: Step) -> None:
        deps = self.deps[step.id]
        ctx = Context(
            self,
            step.id,
            {dep: self.outputs.get(dep) for dep in deps},
            {dep: self.feedback[dep] for dep in deps if dep in self.feedback},
        )
        self.contexts[step.id] = ctx
        if isinstance(step, Node):
            await self._set(step.id, "running")
            work = self._work(step, ctx)
        else:
            await self._set(step.id, "waiting")
            work = self._wait_gate(step, ctx)
        self.tasks[step.id] = asyncio.create_task(work, name=f"dagstream node {step.id}")

    async def _work(self, node: Node, ctx: Context) -> None:
        began = self.runner.clock()
        try:
            if _is_async(node.fn):
                output = await node.fn(ctx)
            else:
                output = await asyncio.to_thread(node.fn, ctx)
            if inspect.isawaitable(output):
                output = await output
            # Fail here, as this node, rather than in the stream.
            output = msgspec.to_builtins(output)
            msgspec.to_builtins(ctx.metrics)
        except Exception as exc:  # noqa: BLE001 - a node's failure is reported, not raised
            self.post(_Done(node.id, None, exc, self.runner.clock() - began))
        else:
            self.post(_Done(node.id, output, None, self.runner.clock() - began))

    async def _wait_gate(self, gate: Gate, ctx: Context) -> None:
        began = self.runner.clock()
        try:
            shown = gate.presentation(ctx) if callable(gate.presentation) else gate.presentation
            if inspect.isawaitable(shown):
                shown = await shown
            decision = await self.stream.gate(
                gate.id, dict(shown), timeout=gate.timeout, default=gate.default
            )
        except Exception as exc:  # noqa: BLE001 - reported as the gate's failure
            self.post(_Done(gate.id, None, exc, self.runner.clock() - began))
        else:
            self.post(_Decided(gate.id, decision, self.runner.clock() - began))

    # ---------------------------------------------------------- messages

    async def _handle(self, message: _Message) -> None:
        match message:
            case _Done(error=None):
                await self._completed(message.node_id, message.output, message.duration)
            case _Done(error=Exception() as error):
                await self._failed(message.node_id, error, message.duration)
            case _Decided():
                await self._decided(message)
            case _Cost():
                await self._cost(message)
            case _Commanded():
                await self._command(message.command)
            case _Change():
                await self._change(message)

    async def _completed(self, node_id: str, output: Any, duration: float) -> None:
        self.tasks.pop(node_id, None)
        ctx = self.contexts.pop(node_id)
        self.outputs[node_id] = output
        metrics = {**ctx.metrics, "duration_s": round(duration, 3)}
        await self._set(node_id, "completed", output=output, metrics=metrics)
        await self._flow(node_id)

    async def _flow(self, node_id: str) -> None:
        for child in self._children(node_id):
            if self.status[child] == "pending":
                await self.stream.edge_active(node_id, child)

    async def _failed(self, node_id: str, error: Exception, duration: float) -> None:
        self.tasks.pop(node_id, None)
        self.contexts.pop(node_id, None)
        if node_id == self.budget_gate:
            raise error  # the budget gate itself broke: the run cannot go on safely
        reason = f"raised {_describe(error)}"
        self.failures.append((node_id, reason))
        await self._set(
            node_id,
            "failed",
            output={"error": _describe(error)},
            metrics={"duration_s": round(duration, 3)},
        )
        await self.stream.error(f"Node {node_id!r} {reason}", node_id=node_id)

    async def _decided(self, message: _Decided) -> None:
        node_id, decision = message.node_id, message.decision
        self.tasks.pop(node_id, None)
        self.contexts.pop(node_id, None)
        output = {
            "decision": decision.decision,
            "feedback": decision.feedback,
            "decided_by": decision.decided_by,
        }
        metrics = {"duration_s": round(message.duration, 3)}
        if node_id == self.budget_gate:
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

    async def _cost(self, message: _Cost) -> None:
        ctx = self.contexts.get(message.node_id)
        if ctx is not None:
            ctx.metrics["cost"] = round(ctx.metrics.get("cost", 0.0) + message.amount, 6)
        self.spent = round(self.spent + message.amount, 6)
        await self.stream.cost(spent=self.spent)

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
        if self.budget_gate is not None:
            await self.stream.node_state(self.budget_gate, "cancelled")
            self.budget_gate = None
        await self.stream.set_state("cancelled")

    # ------------------------------------------------------------- budget

    def _exhausted(self) -> bool:
        return self.budget is not None and self.spent >= self.budget

    async def _open_budget_gate(self) -> None:
        number = len(self.budget_gates) + 1
        while f"budget-{number}" in self.steps or f"budget-{number}" in self.budget_gates:
            number += 1
        gate_id = f"budget-{number}"
        self.budget_gates.add(gate_id)
        self.budget_gate = gate_id
        if not self.paused:
            try:
                await self.stream.set_state("paused")
                self.engine_paused = True
            except services.Conflict:
                pass  # a person paused or cancelled first; their command follows
        step = self._budget_step()
        assert self.budget is not None
        gate = Gate(
            gate_id,
            {
                "title": "Budget reached: continue?",
                "body": (
                    f"Spent {self.spent:.2f} of a budget of {self.budget:.2f}. Approve to raise "
                    f"the budget by {step:.2f} and continue (modify with a number to raise it "
                    "by that instead); reject to cancel the run."
                ),
                # Rounded for people; the exact figures are in the cost events.
                "spent": round(self.spent, 4),
                "budget": round(self.budget, 4),
                "step": round(step, 4),
            },
            label="Budget reached",
        )
        await self.stream.mutate({"op": "add_node", "node": {"id": gate_id, "label": gate.label}})
        await self.stream.node_state(gate_id, "waiting")
        ctx = Context(self, gate_id, {}, {})
        self.tasks[gate_id] = asyncio.create_task(self._wait_gate(gate, ctx))

    def _budget_step(self, decision: GateDecision | None = None) -> float:
        if decision is not None and decision.decision == "modify":
            try:
                asked = float(decision.feedback.strip().lstrip("+"))
            except ValueError:
                asked = 0.0
            if _positive(asked):
                return asked
        return self.runner.budget_step or self.runner.budget or 0.0

    async def _budget_decided(
        self, decision: GateDecision, output: dict[str, Any], metrics: dict[str, Any]
    ) -> None:
        gate_id = self.budget_gate
        assert gate_id is not None and self.budget is not None
        self.budget_gate = None
        if decision.decision == "reject":
            await self.stream.node_state(gate_id, "failed", output=output, metrics=metrics)
            await self._cancel()
            return
        self.budget = round(self.budget + self._budget_step(decision), 6)
        await self.stream.node_state(
            gate_id, "completed", output={**output, "budget": self.budget}, metrics=metrics
        )
        await self.stream.cost(budget=self.budget)
        await self._resume_after_budget()

    async def _close_budget_gate(self) -> None:
        """Nothing is left to spend on: the question is moot."""
        gate_id = self.budget_gate
        assert gate_id is not None
        self.budget_gate = None
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

    async def _change(self, message: _Change) -> None:
        step, edges = message.step, message.edges
        try:
            self._check_change(step, edges)
        except DefinitionError as exc:
            if not message.reply.done():
                message.reply.set_exception(exc)
            return
        # Register first (nothing awaits in between), then tell the stream.
        if step is not None:
            self.steps[step.id] = step
            self.deps[step.id] = []
            self.status[step.id] = "pending"
        for src, dst in edges:
            self.deps[dst].append(src)
        if step is not None:
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
            _check_step(step)
            if step.id in known or step.id in self.budget_gates:
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
            if status == "completed" and not self._children(node_id)
        }
        await self.stream.complete(self.results)
        return "completed"
