"""ASGI entry: HTTP through Django, websockets through the session-authenticated router."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from command.request_limits import BodyLimit  # noqa: E402
from command.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Bodies over the ceiling are refused before Django spools them to disk.
        "http": BodyLimit(django_asgi_app, lambda: settings.WHISTLE_REQUEST_MAX_BYTES),
        # Origin check first: a page on another site must not open a socket with our cookie.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
