"""The calls: ``stream_graph``, ``stream_graph_sync`` and ``resume_graph``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from channels.db import database_sync_to_async
from langchain_core.callbacks import BaseCallbackManager

from dagstream_app import state
from dagstream_app.conf import config as dagstream_config
from dagstream_app.engine import DagStream, Decision, LoopThread
from dagstream_app.errors import NotFound
from dagstream_app.langgraph.interrupts import Interrupts
from dagstream_app.langgraph.run import GraphRun
from dagstream_app.langgraph.shape import Shape, instance_base
from dagstream_app.langgraph.steering import Steering
from dagstream_app.langgraph.usage import Prices, Usage
from dagstream_app.runner.budget import BudgetPolicy
from dagstream_app.runner.definitions import default_dag_id

__all__ = ["FLUSH_WINDOW", "Streamed", "resume_graph", "stream_graph", "stream_graph_sync"]

# Seconds the run's reports gather before they are written together (DagStream's
# flush_window): a superstep of trivial nodes takes a millisecond or two, and a
# transaction per superstep would cost more than the graph. Gates, steering and
# the run's end are awaited: they write at once, after what came before them.
FLUSH_WINDOW = 0.05


class Streamed(NamedTuple):
    """What ``stream_graph`` returns: the DAG's id and the graph's final state."""

    dag_id: str
    output: Any


def _config(
    graph: Any, config: Mapping[str, Any] | None, dag_id: str, usage: Usage
) -> dict[str, Any]:
    """``config`` with the usage handler among its callbacks, and with a checkpointer, a
    ``thread_id`` (the DAG's id unless given)."""
    made: dict[str, Any] = dict(config or {})
    configurable = dict(made.get("configurable") or {})
    if graph.checkpointer not in (None, False):
        configurable.setdefault("thread_id", dag_id)
    made["configurable"] = configurable
    callbacks = made.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        callbacks = callbacks.copy()
        callbacks.add_handler(usage, inherit=True)
        made["callbacks"] = callbacks
    else:
        made["callbacks"] = [*(callbacks or []), usage]
    return made


def _prices(prices: Prices | None) -> dict[str, Mapping[str, float]]:
    """The setting's price table, with ``prices`` over it."""
    return {**(dagstream_config().model_prices or {}), **(prices or {})}


async def _run(
    graph: Any,
    stream: DagStream,
    shape: Shape,
    options: dict[str, Any],
    config: Mapping[str, Any] | None,
    budget: BudgetPolicy,
) -> GraphRun:
    usage = Usage(_prices(options["prices"]))
    interrupts = Interrupts(
        stream, shape, timeout=options["gate_timeout"], default=options["gate_default"]
    )
    return GraphRun(
        graph,
        stream,
        shape,
        config=_config(graph, config, stream.dag_id, usage),
        usage=usage,
        steering=Steering(stream, budget),
        interrupts=interrupts,
    )


async def stream_graph(
    graph: Any,
    input: Any,
    *,
    config: Mapping[str, Any] | None = None,
    name: str = "",
    dag_id: str | None = None,
    budget: float | None = None,
    budget_step: float | None = None,
    prices: Prices | None = None,
    gate_timeout: float | None = None,
    gate_default: Decision | None = None,
) -> Streamed:
    """Run the compiled graph ``graph`` on ``input`` to its end, live as a DAG.

    Returns ``(dag_id, output)``, the final state. Raises what the graph raised
    (the run is reported ``failed``), or :class:`GraphCancelled` when people
    cancelled it. See docs/langgraph.md.
    """
    shape = Shape.of(graph)
    name = name or str(getattr(graph, "name", "") or "langgraph")
    dag_id = dag_id or default_dag_id(name)
    stream = await DagStream.create(
        dag_id, name=name, nodes=shape.order, edges=shape.initial, budget=budget
    )
    stream.flush_window = FLUSH_WINDOW
    options = {"prices": prices, "gate_timeout": gate_timeout, "gate_default": gate_default}
    policy = BudgetPolicy(budget, budget_step or budget or 0.0)
    try:
        run = await _run(graph, stream, shape, options, config, policy)
        return Streamed(dag_id, await run.run(input))
    finally:
        await stream.close()


async def resume_graph(
    graph: Any,
    dag_id: str,
    *,
    config: Mapping[str, Any] | None = None,
    budget_step: float | None = None,
    prices: Prices | None = None,
    gate_timeout: float | None = None,
    gate_default: Decision | None = None,
) -> Streamed:
    """Pick up a run whose engine stopped (a restart), from the graph's checkpointer.

    Gates decided meanwhile resume their interrupts at once; a pause or cancel
    made meanwhile is obeyed first (as :meth:`DagStream.open` delivers it).
    """
    stream = await DagStream.open(dag_id)
    stream.flush_window = FLUSH_WINDOW
    seen = await database_sync_to_async(state.snapshot)(dag_id)
    if seen is None:
        raise NotFound(f"Unknown DAG {dag_id!r}.")
    shape = Shape([n.id for n in seen.nodes], [(e.src, e.dst) for e in seen.edges])
    options = {"prices": prices, "gate_timeout": gate_timeout, "gate_default": gate_default}
    policy = BudgetPolicy(seen.budget, budget_step or seen.budget or 0.0, spent=seen.spent)
    try:
        run = await _run(graph, stream, shape, options, config, policy)
        run.ran.update(n.id for n in seen.nodes if n.status != "pending")
        for node in seen.nodes:
            found = instance_base(node.id)
            if found is not None:
                run.instances[found[0]] = max(run.instances.get(found[0], 0), found[1])
        run.interrupts.restore(seen.gates)
        saved = await graph.aget_state(run.config)
        run.output = saved.values
        for task in saved.tasks:
            for asked in task.interrupts:
                node_id = run.interrupts.gate_of.get(asked.id, task.name)
                run.interrupts.asked.setdefault(asked.id, (node_id, asked.value))
        return Streamed(dag_id, await run.run(None, asking=bool(run.interrupts.asked)))
    finally:
        await stream.close()


def stream_graph_sync(graph: Any, input: Any, **options: Any) -> Streamed:
    """:func:`stream_graph` for code that is not async (on a loop thread of its own)."""
    loop = LoopThread()
    try:
        return loop.run(stream_graph(graph, input, **options))
    finally:
        loop.stop()
