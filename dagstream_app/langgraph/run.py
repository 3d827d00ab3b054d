"""One LangGraph run as a dagstream DAG: its task stream mapped onto nodes and edges.

The run reads ``astream(..., stream_mode=["tasks", "values"], subgraphs=True)``:
a task's start is its node ``running`` (and the edges that led to it), its result
``completed`` with a preview of its update, ``failed`` with its error, or
``waiting`` at its interrupts. Tasks started by a ``Send`` are nodes added at run
time (:meth:`GraphRun.fan_out`). Between the top-level supersteps the run is
steered (:mod:`.steering`); when a segment of the run ends at interrupts, their
gates are asked and the graph resumed with the decisions (:mod:`.interrupts`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import msgspec
from langgraph.types import Command

from dagstream_app.bounds import bounded_json
from dagstream_app.engine import DagStream
from dagstream_app.langgraph.interrupts import Interrupts
from dagstream_app.langgraph.shape import PUSH, Shape, node_prefix
from dagstream_app.langgraph.steering import Steering
from dagstream_app.langgraph.usage import Usage
from dagstream_app.protocol import json_problem
from dagstream_app.runner.nodes import describe

__all__ = ["GraphCancelled", "GraphRun", "preview"]

OUTPUT_LIMIT = 4096  # bytes of JSON a node's output preview may take


class GraphCancelled(Exception):
    """The run was cancelled (from the dashboard, or a rejected budget gate).

    ``output`` is the graph's state when it stopped.
    """

    def __init__(self, dag_id: str, output: Any) -> None:
        super().__init__(f"Run {dag_id!r} was cancelled.")
        self.dag_id = dag_id
        self.output = output


def _plain(value: Any) -> Any:
    """What msgspec cannot encode by itself: messages as type and content, models dumped."""
    if hasattr(value, "content") and hasattr(value, "type"):
        return {"type": value.type, "content": value.content}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return repr(value)


def preview(value: Any) -> Any:
    """``value`` as a node shows it: JSON, at most ``OUTPUT_LIMIT`` bytes of it."""
    try:
        data = msgspec.to_builtins(value, enc_hook=_plain, str_keys=True)
    except (TypeError, ValueError, OverflowError, RecursionError):
        data = None
    if data is None or json_problem(data) is not None:
        return {"repr": repr(value)[:OUTPUT_LIMIT]}
    return bounded_json(data, OUTPUT_LIMIT)


class GraphRun:
    """Reports one run of a compiled graph on its :class:`DagStream`."""

    def __init__(
        self,
        graph: Any,
        stream: DagStream,
        shape: Shape,
        *,
        config: dict[str, Any],
        usage: Usage,
        steering: Steering,
        interrupts: Interrupts,
    ) -> None:
        self.graph, self.stream, self.shape, self.config = graph, stream, shape, config
        self.usage, self.steering, self.interrupts = usage, steering, interrupts
        self.output: Any = None
        self.task_node: dict[str, str | None] = {}  # task id -> node (None: a subgraph)
        self.started_at: dict[str, float] = {}
        self.running: dict[str, set[str]] = {}  # (sub)graph prefix -> its running task ids
        self.finished: dict[str, list[str]] = {}  # prefix -> nodes finished this superstep
        self.previous: dict[str, list[str]] = {}  # prefix -> nodes of the superstep before
        self.instances: dict[str, int] = {}  # Send target -> instances so far
        self.ran: set[str] = set()
        self.done_tasks: set[str] = set()  # tasks that ended, not in an interrupt
        self.last_done: str | None = None
        self.failed_node: str | None = None

    # ------------------------------------------------------------ the run

    async def run(self, first: Any, *, asking: bool = False) -> Any:
        """Run from ``first`` (the input, ``None`` to go on from the checkpoint) to the
        end; ``asking``: start by asking the interrupts already known. The final state."""
        work = asyncio.ensure_future(self._drive(first, asking))
        watcher = asyncio.ensure_future(self.steering.obey(work, self._running_nodes))
        try:
            output = await work
        except asyncio.CancelledError:
            if not self.steering.cancelling:
                raise
            await self._cancelled()
            raise GraphCancelled(self.stream.dag_id, self.output) from None
        except Exception as exc:
            node = self.failed_node
            reason = f"Node {node!r} raised {describe(exc)}" if node else describe(exc)
            await self.stream.fail(reason, node_id=node)
            raise
        finally:
            watcher.cancel()
            self.interrupts.cancel()
        await self.stream.complete(preview(output))
        return output

    async def _drive(self, command: Any, asking: bool) -> Any:
        while True:
            if not asking:
                await self._segment(command)
            asking = False
            if not self.interrupts.asked:
                return self.output
            command = Command(resume=await self.interrupts.decisions())

    async def _segment(self, command: Any) -> None:
        """Stream the graph until it ends or stops at interrupts."""
        self.running.clear()
        # Streaming subgraphs' tasks costs LangGraph time on every task: only when
        # the graph has subgraph nodes (a graph called inside a node's function is
        # part of that node).
        subgraphs = self.shape.has_subgraphs
        async for item in self.graph.astream(
            command, self.config, stream_mode=["tasks", "values"], subgraphs=subgraphs
        ):
            namespace, mode, chunk = item if subgraphs else ((), *item)
            if mode == "values":
                if not namespace and isinstance(chunk, Mapping) and "__interrupt__" not in chunk:
                    self.output = chunk
            elif "triggers" in chunk:
                await self._started(namespace, chunk)
            else:
                self._finished(namespace, chunk)

    async def _cancelled(self) -> None:
        for node_id in self._running_nodes():
            self.stream.nowait.node_state(node_id, "cancelled")
        await self.stream.set_state("cancelled")

    def _running_nodes(self) -> list[str]:
        return [
            node
            for tasks in self.running.values()
            for task_id in tasks
            if (node := self.task_node.get(task_id)) is not None
        ]

    # --------------------------------------------------- tasks to nodes

    async def _started(self, namespace: tuple[str, ...], task: Mapping[str, Any]) -> None:
        if task["id"] in self.done_tasks:
            return  # resumed after interrupts: it ended before them, LangGraph reuses its writes
        prefix = node_prefix(namespace)
        running = self.running.setdefault(prefix, set())
        if not running:  # a new superstep of this (sub)graph
            self.previous[prefix] = self.finished.pop(prefix, [])
            if not prefix:
                await self.steering.boundary(self.last_done, self.shape.known.nodes)
        running.add(task["id"])
        name = prefix + task["name"]
        if self.shape.is_subgraph(name):
            self.task_node[task["id"]] = None  # its own nodes report
            return
        sources = self.previous.get(prefix) or self.previous.get(node_prefix(namespace[:-1]), [])
        sources = list(dict.fromkeys(sources))
        node = self.fan_out(name, sources) if PUSH in task["triggers"] else self._plain(name)
        self.task_node[task["id"]] = node
        self.started_at[task["id"]] = asyncio.get_running_loop().time()
        for src in sources:
            if (src, node) in self.shape.known.edges:
                self.stream.nowait.edge_active(src, node)
        self.stream.nowait.node_state(node, "running")

    def _plain(self, name: str) -> str:
        """A task of the graph's node ``name``: that node (added if the drawing lacked it)."""
        if name not in self.shape.known.nodes:
            self._add_node(name)
        self.ran.add(name)
        return name

    def fan_out(self, target: str, sources: list[str]) -> str:
        """A task a ``Send`` started: a node of its own, ``<target>#N``, added now.

        It follows the senders (the last superstep's nodes with an edge to
        ``target``) and precedes ``target``'s successors, so a fan-out's instances
        are siblings sharing their parents and children. The graph's own
        ``target`` node, if it never ran itself, gives way to them. This is the one
        place a fan-out's nodes are made: each declares ``target`` as its group, so
        that the dashboard draws a big fan-out as one group node.
        """
        number = self.instances[target] = self.instances.get(target, 0) + 1
        node = f"{target}#{number}"
        self._add_node(node, group=target)
        if target in self.shape.known.nodes and target not in self.ran:
            self.shape.known.remove_node(target)
            self.stream.nowait.mutate({"op": "remove_node", "node_id": target})
        senders = [s for s in sources if target in self.shape.successors.get(s, ())]
        for src in senders or sources:
            self._add_edge(src, node)
        for successor in self.shape.successors.get(target, ()):
            self._add_edge(node, successor)
        return node

    def _add_node(self, node_id: str, group: str | None = None) -> None:
        self.shape.known.add_node(node_id)
        spec = {"id": node_id} if group is None else {"id": node_id, "group": group}
        self.stream.nowait.mutate({"op": "add_node", "node": spec})

    def _add_edge(self, src: str, dst: str) -> None:
        if self.shape.link(src, dst):  # refused for an unknown end, a duplicate, a cycle
            self.stream.nowait.mutate({"op": "add_edge", "from": src, "to": dst})

    def _finished(self, namespace: tuple[str, ...], result: Mapping[str, Any]) -> None:
        task_id, prefix = result["id"], node_prefix(namespace)
        self.running.get(prefix, set()).discard(task_id)
        node = self.task_node.pop(task_id, None)
        if not result.get("interrupts"):
            self.done_tasks.add(task_id)
        usage = self.usage.take(task_id)
        if usage is not None and usage.cost:
            self.steering.budget.add(usage.cost)
            self.stream.nowait.cost(add=usage.cost)
        if node is None:
            return
        metrics: dict[str, Any] = usage.metrics() if usage is not None else {}
        started = self.started_at.pop(task_id, None)
        if started is not None:
            metrics["duration_s"] = round(asyncio.get_running_loop().time() - started, 3)
        error = result.get("error")
        if error is not None:
            self.failed_node = node
            output = {"error": describe(error) if isinstance(error, BaseException) else str(error)}
            self.stream.nowait.node_state(node, "failed", output=output, metrics=metrics)
        elif result.get("interrupts"):
            self.interrupts.saw(node, result["interrupts"])
            self.stream.nowait.node_state(node, "waiting", metrics=metrics)
        else:
            output = preview(result.get("result"))
            self.stream.nowait.node_state(node, "completed", output=output, metrics=metrics)
        self.finished.setdefault(prefix, []).append(node)
        self.last_done = node
