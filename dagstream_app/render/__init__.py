"""HTML for the dashboard, from typed views of a DAG's state (:mod:`dagstream_app.dagviews`).

Not pure in the strict sense, but close: it reads URLs (``reverse``), settings
(:func:`dagstream_app.conf.config`) and, where no ``now`` is given, the clock;
it never queries the database (callers read with :mod:`dagstream_app.state`
first). The same functions render a region into the page and into a live
message (``oob=True`` adds ``hx-swap-oob``), so the two never disagree.

- :mod:`~dagstream_app.render.format`: DOM ids, URLs, durations, icons, the shared shapes
- :mod:`~dagstream_app.render.graph`: the graph's SVG
- :mod:`~dagstream_app.render.gantt`: the Gantt view's SVG
- :mod:`~dagstream_app.render.regions`: status, progress, cost, controls, engine,
  gates, results, the node panel and the run list's rows (overridable templates)
- :mod:`~dagstream_app.render.timeline`: the timeline, in each event type's words
- :mod:`~dagstream_app.render.page`: every region of the detail page from one snapshot

The package exports the names used outside it. Live messages (which fragments
an event sends, conflated) are :mod:`dagstream_app.live`'s.
"""

from __future__ import annotations

from dagstream_app.render.format import (
    STATUS_ICONS,
    TIMELINE_LENGTH,
    TIMELINE_SCAN,
    Part,
    Perms,
    dom_id,
    edge_dom_id,
    language_of,
    moment_html,
    page_config,
    pretty_json,
    stream_language,
    stream_query,
)
from dagstream_app.render.gantt import GANTT_LABEL_W, GANTT_W, gantt_html
from dagstream_app.render.graph import graph_html
from dagstream_app.render.groups import node_list_html
from dagstream_app.render.page import regions
from dagstream_app.render.regions import (
    KEEPALIVE_HTML,
    controls_html,
    engine_html,
    gate_html,
    node_panel_html,
    progress_html,
    row_deleted_html,
    row_html,
    seq_marker,
)
from dagstream_app.render.timeline import group_events_html, group_events_url, timeline_names

__all__ = [
    "GANTT_LABEL_W",
    "GANTT_W",
    "KEEPALIVE_HTML",
    "STATUS_ICONS",
    "TIMELINE_LENGTH",
    "TIMELINE_SCAN",
    "Part",
    "Perms",
    "controls_html",
    "dom_id",
    "edge_dom_id",
    "engine_html",
    "gantt_html",
    "gate_html",
    "graph_html",
    "group_events_html",
    "group_events_url",
    "language_of",
    "moment_html",
    "node_list_html",
    "node_panel_html",
    "page_config",
    "pretty_json",
    "progress_html",
    "regions",
    "row_deleted_html",
    "row_html",
    "seq_marker",
    "stream_language",
    "stream_query",
    "timeline_names",
]
