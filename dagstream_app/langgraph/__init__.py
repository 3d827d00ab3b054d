"""LangGraph graphs, live (the ``[langgraph]`` extra): watch and steer them from dagstream.

::

    from dagstream_app.langgraph import stream_graph

    dag_id, output = await stream_graph(graph, {"topic": "tides"}, name="research", budget=2.0)

The DAG is the graph's own (nodes, edges, subgraphs); tasks report as nodes,
``Send`` fan-outs as nodes added at run time, ``interrupt()`` opens a gate whose
decision resumes it, chat models' token usage becomes cost. See docs/langgraph.md.
Only this package imports LangGraph and LangChain.
"""

from __future__ import annotations

from dagstream_app.langgraph.launch import (
    Streamed,
    resume_graph,
    stream_graph,
    stream_graph_sync,
)
from dagstream_app.langgraph.run import GraphCancelled
from dagstream_app.langgraph.steering import PAUSE_NOTE
from dagstream_app.langgraph.usage import Prices

__all__ = [
    "PAUSE_NOTE",
    "GraphCancelled",
    "Prices",
    "Streamed",
    "resume_graph",
    "stream_graph",
    "stream_graph_sync",
]
