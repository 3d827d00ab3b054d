"""WebSocket routes; include ``websocket_urlpatterns`` in the host's ``asgi.py``."""

from __future__ import annotations

from django.urls import re_path

from dagstream_app import protocol
from dagstream_app.auth import TokenAuthMiddleware
from dagstream_app.consumers import (
    DagHtmlConsumer,
    DagIndexConsumer,
    DagJsonConsumer,
    GateInboxConsumer,
)
from dagstream_app.consumers.presence import PresenceConsumer
from dagstream_app.notify.sender import start_embedded

DAG_ID = rf"(?P<dag_id>{protocol.DAG_ID_CHARS})"

websocket_urlpatterns = [
    re_path(rf"^ws/dags/{DAG_ID}/$", TokenAuthMiddleware(DagJsonConsumer.as_asgi())),
    re_path(rf"^ws/dags/{DAG_ID}/html/$", TokenAuthMiddleware(DagHtmlConsumer.as_asgi())),
    re_path(rf"^ws/dags/{DAG_ID}/presence/$", TokenAuthMiddleware(PresenceConsumer.as_asgi())),
    re_path(r"^ws/dags/$", TokenAuthMiddleware(DagIndexConsumer.as_asgi())),
    re_path(r"^ws/gates/$", TokenAuthMiddleware(GateInboxConsumer.as_asgi())),
]

# The server process sends the notification outbox (NOTIFY_EMBEDDED, the default).
start_embedded()
