"""What a task's callable gets: its inputs, feedback, and ways to report cost and grow the DAG."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from dagstream_app import protocol
from dagstream_app.runner.definitions import Step, as_ids
from dagstream_app.runner.messages import Cost, Message

T = TypeVar("T")


class _Run(Protocol):
    dag_id: str
    outputs: dict[str, Any]

    def post(self, message: Message) -> None: ...

    async def request(self, step: Step | None, edges: list[tuple[str, str]]) -> None: ...

    def call_from_thread(self, coro: Coroutine[Any, Any, T]) -> T: ...


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
        self.dag_id = run.dag_id
        self.node_id = node_id
        self.inputs: Mapping[str, Any] = MappingProxyType(inputs)
        self.results: Mapping[str, Any] = MappingProxyType(run.outputs)
        self.feedback: Mapping[str, str] = MappingProxyType(feedback)
        self.metrics: dict[str, Any] = {}

    def add_cost(self, amount: float) -> None:
        """Report ``amount`` more spent (say, one LLM call's price). Safe from any thread."""
        if not protocol.is_non_negative(amount):
            raise ValueError(f"A cost is a non-negative number, not {amount!r}.")
        self._run.post(Cost(self.node_id, float(amount)))

    async def add_node(self, step: Step, *, before: Sequence[str] | str = ()) -> None:
        """Add ``step`` (after ``step.after``); each node in ``before`` will wait for it.

        Raises :class:`DefinitionError` if the change cannot run (unknown or
        duplicate id, a node that has already started, a cycle).
        """
        edges = [(dep, step.id) for dep in as_ids(step.after)]
        edges += [(step.id, dst) for dst in as_ids(before)]
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
