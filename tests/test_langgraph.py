"""LangGraph runs streamed by dagstream_app.langgraph: the graph's structure, its tasks,
``Send`` fan-outs, subgraphs, token cost, failures, the sync call.

Real LangGraph and fake chat models (no network); a real WebSocket client on a real
daphne sees every event of each run once, in order.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from langgraph.checkpoint.base import BaseCheckpointSaver

from dagstream_app.langgraph import stream_graph, stream_graph_sync
from dagstream_app.models import Dag, Edge, Node
from tests.langgraph_graphs import PRICES, Research, chain, map_reduce
from tests.langgraph_support import Live, checkpointer, events, operator
from tests.servers import Server
from tests.test_runner import find, statuses

__all__ = ["checkpointer", "operator"]  # fixtures

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("release_engine_connections"),
]


def _structure(dag_id: str) -> tuple[list[str], list[tuple[str, str]]]:
    nodes = sorted(Node.objects.filter(dag_id=dag_id).values_list("node_id", flat=True))
    edges = sorted(Edge.objects.filter(dag_id=dag_id).values_list("src", "dst"))
    return nodes, edges


async def test_map_reduce_with_a_subgraph(
    server: Server, operator: tuple[Any, str], checkpointer: BaseCheckpointSaver[Any]
) -> None:
    graph = map_reduce(3).compile(checkpointer=checkpointer)
    live = await Live(server, operator[1], "lg-map").start(
        stream_graph(graph, {"topic": " tides "}, dag_id="lg-map", name="research", prices=PRICES)
    )
    dag_id, output = await live.result()
    assert dag_id == "lg-map"
    assert output["draft"] == "NOTE 0 / NOTE 1 / NOTE 2"
    logged = await live.seen()

    # Created from get_graph(): the subgraph's nodes prefixed, START/END left out.
    first = [e for e in logged if e["type"] == "dag_mutated"]
    assert first[0]["mutation"] == {
        "op": "add_node",
        "node": {"id": "research#1", "label": "", "group": "research"},
    }
    # The Send fan-out: three nodes added at run time between plan and the subgraph.
    nodes, edges = await database_sync_to_async(_structure)(dag_id)
    assert nodes == [
        "plan",
        "research#1",
        "research#2",
        "research#3",
        "write:outline",
        "write:polish",
    ]
    assert edges == sorted(
        [("plan", f"research#{i}") for i in (1, 2, 3)]
        + [(f"research#{i}", "write:outline") for i in (1, 2, 3)]
        + [("write:outline", "write:polish")]
    )
    for node_id in nodes:
        assert statuses(logged, node_id) == ["running", "completed"], node_id
    for i in (1, 2, 3):
        assert find(logged, "edge_active", **{"from": "plan", "to": f"research#{i}"})
        assert find(logged, "edge_active", **{"from": f"research#{i}", "to": "write:outline"})
    assert find(logged, "edge_active", **{"from": "write:outline", "to": "write:polish"})
    done = find(logged, "node_state", node_id="research#2", status="completed")
    assert done is not None and done["output"] == {"notes": ["note 1"]}
    # Token usage: each research call 100 in + 20 out at $2 / $10 per million.
    assert done["metrics"]["input_tokens"] == 100 and done["metrics"]["total_tokens"] == 120
    assert done["metrics"]["cost"] == pytest.approx(0.0004)
    assert done["metrics"]["models"] == ["fake-gpt"]
    costs = [e["spent"] for e in logged if e["type"] == "cost_update"]
    assert costs == pytest.approx([0.0004, 0.0008, 0.0012])
    assert logged[-2]["type"] == "execution_complete"
    assert logged[-2]["results"]["draft"] == "NOTE 0 / NOTE 1 / NOTE 2"
    assert logged[-1] == {"seq": logged[-1]["seq"], "type": "execution_state", "state": "completed"}
    dag = await database_sync_to_async(Dag.objects.get)(pk=dag_id)
    assert (dag.name, dag.status, dag.spent) == ("research", "completed", pytest.approx(0.0012))


async def test_a_failing_node_fails_the_run(server: Server, operator: tuple[Any, str]) -> None:
    def broken(state: Research) -> Research:
        raise RuntimeError("the source is down")

    graph = chain(
        ("fetch", lambda s: {"notes": ["x"]}), ("parse", broken), ("save", lambda s: {})
    ).compile()
    live = await Live(server, operator[1], "lg-fail").start(
        stream_graph(graph, {"topic": "t"}, dag_id="lg-fail")
    )
    with pytest.raises(RuntimeError, match="the source is down"):
        await live.result()
    logged = await live.seen()
    assert statuses(logged, "fetch") == ["running", "completed"]
    assert statuses(logged, "parse") == ["running", "failed"]
    assert statuses(logged, "save") == []
    failed = find(logged, "node_state", node_id="parse", status="failed")
    assert failed is not None and failed["output"] == {"error": "RuntimeError: the source is down"}
    assert logged[-2]["type"] == "error" and logged[-2]["node_id"] == "parse"
    assert logged[-2]["message"] == "Node 'parse' raised RuntimeError: the source is down"
    assert logged[-1]["state"] == "failed"


def test_stream_graph_sync_for_code_that_is_not_async(transactional_db: Any) -> None:
    graph = chain(("one", lambda s: {"notes": ["1"]}), ("two", lambda s: {"notes": ["2"]}))
    dag_id, output = stream_graph_sync(graph.compile(), {"topic": "t"}, name="plain")
    assert output["notes"] == ["1", "2"]
    logged = events(dag_id)
    assert [e["type"] for e in logged] == [
        "execution_state",
        "node_state",
        "node_state",
        "edge_active",
        "node_state",
        "node_state",
        "execution_complete",
        "execution_state",
    ]
    assert dag_id.startswith("plain-")
