"""ASGI entry point: HTTP through Django, WebSockets through dagstream's routes."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Set up Django before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from dagstream_app.auth import AllowedOriginsValidator  # noqa: E402
from dagstream_app.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # ALLOWED_HOSTS, and the origins DAGSTREAM["ALLOWED_ORIGINS"] lets use tickets
        # (AllowedHostsOriginValidator when no app on another origin connects).
        "websocket": AllowedOriginsValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
