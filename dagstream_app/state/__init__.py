"""Every read query: snapshots, event frames, history, and what the dashboard shows.

Nothing here writes (that is :mod:`dagstream_app.services`). A DAG's state
comes back as the :mod:`dagstream_app.dagviews` views; history and live
fragments fold events into it with :mod:`dagstream_app.replay`.

- :mod:`~dagstream_app.state.runs`: one DAG's row, the run list, what changed or finished
- :mod:`~dagstream_app.state.snapshots`: a DAG's current state, a node, a gate, node counts
- :mod:`~dagstream_app.state.groups`: a DAG's fan-outs grouped, and their counts
- :mod:`~dagstream_app.state.gantt`: where a run's time went
- :mod:`~dagstream_app.state.log`: the event log (frames, recent events, replay, commands)
- :mod:`~dagstream_app.state.folded`: what a live event shows, and history at a seq
- :mod:`~dagstream_app.state.earlier`: the history page at an earlier event (fan-outs bounded)
- :mod:`~dagstream_app.state.shared`: timestamps and the stale-engine rule
"""

from __future__ import annotations

from dagstream_app.state.earlier import Past, past
from dagstream_app.state.folded import history, live_state
from dagstream_app.state.gantt import GANTT_ROWS, gantt
from dagstream_app.state.groups import Found, find_nodes, group_views, grouping, regroup
from dagstream_app.state.log import (
    can_replay,
    commands_after,
    event_frames,
    group_events,
    latest_command_seq,
    recent_events,
)
from dagstream_app.state.runs import (
    RunRow,
    changed_since,
    dag,
    engine_health,
    finished_before,
    progress,
    progress_many,
    run_rows,
    runs,
)
from dagstream_app.state.shared import engine_stale
from dagstream_app.state.snapshots import (
    gate,
    gate_dict,
    gate_view,
    labels_of,
    node,
    node_counts,
    page_snapshot,
    snapshot,
    unfinished_count,
)

__all__ = [
    "GANTT_ROWS",
    "Found",
    "Past",
    "RunRow",
    "can_replay",
    "changed_since",
    "commands_after",
    "dag",
    "engine_health",
    "engine_stale",
    "event_frames",
    "find_nodes",
    "finished_before",
    "gantt",
    "gate",
    "gate_dict",
    "gate_view",
    "group_events",
    "group_views",
    "grouping",
    "history",
    "labels_of",
    "latest_command_seq",
    "live_state",
    "node",
    "node_counts",
    "page_snapshot",
    "past",
    "progress",
    "progress_many",
    "recent_events",
    "regroup",
    "run_rows",
    "runs",
    "snapshot",
    "unfinished_count",
]
