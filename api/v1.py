"""The JSON API (`/api/v1/`, OpenAPI at `/api/v1/openapi.json`): every action a person can take,
for systems (token: ``Authorization: Bearer <token>``) and for the browser (session + CSRF).

Views stay thin: they scope, call a service, and map its refusals to precise answers — 404 for
what the caller may not see, 403 for what it may see but not do, 409 for a transition the
current state does not allow, 422 for a malformed body. Each noun's views and schemas are a
router of their own; this module makes the API of them.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI
from ninja.operation import Operation
from ninja.security import HttpBearer, django_auth

from alerts.models import Alert
from api import alerts, incidents, orders, photos, ratings, reports, summonses, whistles
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org.models import User
from command.org.tokens import api_token_user
from command.timeline.models import TimelineEntry


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = api_token_user(token)
        if user is not None:
            request.user = user
            request.whistle_source = TimelineEntry.Source.API  # type: ignore[attr-defined]
        return user


class WhistleAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        # Clients generated from the document call operations by these ids, which were made
        # when every view lived in one module (command/api.py); they stay as they were.
        return f"command_api_{operation.view_func.__name__}"


api = WhistleAPI(
    title="Whistle API",
    version="1",
    description="Township command platform: alerts, incidents, whistles and summons.",
    # Session auth is cookie auth: django-ninja checks CSRF for it; a bearer token needs none.
    auth=[TokenAuth(), django_auth],
    urls_namespace="api",
    # The interactive page loads Swagger UI from a CDN, which a closed network cannot reach.
    docs_url=None,
)

for noun in (alerts, incidents, whistles, summonses, orders, photos, reports, ratings):
    api.add_router("", noun.router)


@api.exception_handler(TransitionNotAllowed)
def _conflict(request: HttpRequest, exc: TransitionNotAllowed) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc), "code": exc.code}, status=409)


@api.exception_handler(ActionForbidden)
def _forbidden(request: HttpRequest, exc: ActionForbidden) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc), "code": "forbidden"}, status=403)


@api.exception_handler(Alert.DoesNotExist)
def _alert_missing(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(request, {"detail": "Not found.", "code": "not_found"}, status=404)


def api_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's URL patterns, exempt from the site's login redirect: the API answers 401."""
    patterns, app_name, namespace = api.urls

    def exempt(items: list) -> None:
        for item in items:
            if isinstance(item, URLResolver):
                exempt(item.url_patterns)
            else:
                item.callback.login_required = False

    exempt(patterns)
    return patterns, app_name, namespace
