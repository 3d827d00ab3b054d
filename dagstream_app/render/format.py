"""What every fragment shares: DOM ids, URLs, durations, JSON for people, icons.

Words and numbers follow the active language (``django.utils.translation``,
``django.utils.formats``); a live stream renders in the language of the page
that opened it (:func:`stream_query`).

Also the shapes the renderers take and give: :data:`Perms` (what the viewer may
do) and :data:`Part` (one fragment of a live message with the slot it replaces).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from dagstream_app.vocabulary import CLOSE_CODES, status_label

if TYPE_CHECKING:
    from dagstream_app.permissions import Voter

# How many events the timeline shows (the page trims to it as events arrive).
TIMELINE_LENGTH = 100
# How many of the latest events a page reads to fill the timeline's rows: a group's
# members' events share one row (render.timeline), so a fan-out's take few rows.
TIMELINE_SCAN = 1_000
STATUS_ICONS = {
    "pending": "pending",
    "running": "running",
    "waiting": "waiting",
    "completed": "completed",
    "failed": "failed",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "paused": "paused",
    "cancelling": "cancelled",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Perms = tuple[bool, bool]  # (may decide gates, may control the run)
# One fragment of a live message, with the slot it replaces: of several fragments
# for one slot in a message only the last is sent. None: never dropped.
Part = tuple[str | None, str]


def dom_id(prefix: str, raw: str) -> str:
    """A DOM id (and CSS selector) safe for any string, stable and unique per string."""
    digest = hashlib.blake2s(raw.encode(), digest_size=5).hexdigest()
    return f"{prefix}-{_UNSAFE.sub('', raw)[:32]}-{digest}"


def edge_dom_id(src: str, dst: str) -> str:
    return dom_id("e", f"{src}\x00{dst}")


def nodes_base(dag_id: str) -> str:
    return f"{reverse('dagstream:detail', args=[dag_id])}nodes/"


def node_url(dag_id: str, node_id: str, base: str | None = None) -> str:
    """The node panel's URL; node ids are arbitrary strings, so fully encoded."""
    return f"{base or nodes_base(dag_id)}{quote(node_id, safe='')}/"


def decide_url(dag_id: str, node_id: str) -> str:
    return f"{reverse('dagstream:detail', args=[dag_id])}gates/{quote(node_id, safe='')}/decide/"


def parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def format_duration(seconds: float | None) -> str:
    """``850 ms``, ``4.2 s``, ``3 m 05 s``, ``2 h 04 m``."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return _("%(ms)s ms") % {"ms": round(seconds * 1000)}
    if seconds < 60:
        return _("%(s)s s") % {"s": formats.number_format(round(seconds, 1), 1)}
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return _("%(m)s m %(s)s s") % {"m": minutes, "s": f"{secs:02d}"}
    hours, minutes = divmod(minutes, 60)
    return _("%(h)s h %(m)s m") % {"h": hours, "m": f"{minutes:02d}"}


def moment_html(ts: str) -> SafeString:
    """A moment as the history page names it: the date in the active locale, the time UTC."""
    moment = datetime.fromisoformat(ts)
    shown = f"{formats.date_format(moment, 'DATE_FORMAT')} {moment:%H:%M:%S} UTC"
    return format_html('<time datetime="{}">{}</time>', ts, shown)


def stream_language() -> dict[str, str]:
    """The query a page's live stream needs to render in the page's language
    (nothing when that is ``LANGUAGE_CODE``, which a stream renders in by default)."""
    language = translation.get_language()
    return {"lang": language} if language and language != _default_language() else {}


def stream_query() -> str:
    """:func:`stream_language` as a URL's query (``?lang=fr``), or empty."""
    found = stream_language()
    return f"?lang={quote(found['lang'])}" if found else ""


def language_of(scope: Mapping[str, Any]) -> str:
    """The language a stream renders in: the one its page asked for (``?lang=``, see
    :func:`stream_query`) if the site has it, else ``LANGUAGE_CODE``."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    requested = query.get("lang", [""])[0][:20]
    if requested:
        try:
            return translation.get_supported_language_variant(requested)
        except LookupError:
            pass
    return _default_language()


def _default_language() -> str:
    """``LANGUAGE_CODE`` as the site supports it (``en-us`` may be served as ``en``)."""
    try:
        return translation.get_supported_language_variant(settings.LANGUAGE_CODE)
    except LookupError:
        return str(settings.LANGUAGE_CODE)


def span_seconds(start: str | None, end: str | None, now: str | None = None) -> float | None:
    """Seconds from ``start`` to ``end`` (still going: to ``now``, default the present)."""
    begin = parse_ts(start)
    if begin is None:
        return None
    finish = parse_ts(end) or parse_ts(now) or timezone.now()
    return (finish - begin).total_seconds()


def pretty_json(value: Any) -> str:
    """JSON for people: indented, keys sorted; a string stays as it is."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def oob_attr(oob: bool) -> str:
    """The attribute that makes a region replace its copy on the page (``oob``)."""
    return ' hx-swap-oob="true"' if oob else ""


def fragment(template: str, context: dict[str, Any]) -> SafeString:
    """One of the overridable templates under ``dagstream_app/fragments/``."""
    return mark_safe(render_to_string(f"dagstream_app/fragments/{template}", context))


def page_config(voter: Voter | None = None) -> dict[str, Any]:
    """What the dashboard's scripts take from Python (the pages embed it with ``json_script``).

    ``voter``: the signed-in person, if they may decide gates: the scripts make a gate
    card that arrives live read-only when its assignees hold none of the names that name
    them (``viewerNames``, :attr:`dagstream_app.permissions.Voter.names`; the server
    refuses their vote either way, see :func:`dagstream_app.permissions.check_assigned`).
    """
    return {
        "closeCodes": CLOSE_CODES,
        "timelineLength": TIMELINE_LENGTH,
        "text": page_text(),
        "viewerNames": sorted(voter.names) if voter is not None else None,
    }


def page_text() -> dict[str, str]:
    """The words the dashboard's scripts show, in the page's language (``%(name)s``
    placeholders are filled in by the scripts)."""
    return {
        "connecting": _("Connecting…"),
        "reconnecting": _("Reconnecting…"),
        "live": _("Live"),
        "disconnected": _("Disconnected"),
        "lost": _("Connection lost. What you see may be out of date; reconnecting…"),
        "signedOut": _("Signed out. Sign in again to follow this run."),
        "forbidden": _("You no longer have access to this run."),
        "notFound": _("This run no longer exists."),
        "closed": _("Disconnected from the server."),
        "reload": _("%(why)s Reload the page to continue."),
        "running": status_label("running"),
        "ms": _("%(ms)s ms"),
        "s": _("%(s)s s"),
        "m": _("%(m)s m %(s)s s"),
        "h": _("%(h)s h %(m)s m"),
        "decimal": str(formats.get_format("DECIMAL_SEPARATOR")),
        "alsoHere": _("Also looking at this run: %(names)s"),
        "writing": _("%(names)s is writing…"),
        "writingMany": _("%(names)s are writing…"),
        "waitingDecision": _("Waiting for a decision."),
    }
