"""Refuse text PostgreSQL cannot store before any view sees it.

A NUL character or a lone UTF-16 surrogate in a query parameter or a JSON / form body reaches the
database as a string psycopg cannot send (a 500, found by fuzzing the API). No field of ours
may hold either, so the request is refused with 400 and the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.translation import gettext as _

from command.text import all_storable, storable

# A JSON escape of NUL or of a surrogate half (checked precisely only when one is there).
_SUSPECT_ESCAPE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")
_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded")


def _json_storable(body: bytes) -> bool:
    if not _SUSPECT_ESCAPE.search(body):
        return True
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return True  # malformed JSON is the parser's to refuse, with its own message
    return all_storable(data)


def _query_storable(query: QueryDict) -> bool:
    return all(
        storable(key) and all(storable(value) for value in values) for key, values in query.lists()
    )


def unstorable_text_refused(get_response: Callable[[HttpRequest], HttpResponse]):
    def middleware(request: HttpRequest) -> HttpResponse:
        bad = not _query_storable(request.GET)
        content_type = request.content_type or ""
        if not bad and request.method in ("POST", "PUT", "PATCH") and content_type in _TEXT_BODIES:
            body = request.body
            if b"\x00" in body:
                bad = True
            elif content_type == "application/json":
                bad = not _json_storable(body)
            else:
                bad = not _query_storable(request.POST)
        if not bad:
            return get_response(request)
        detail = _(
            "The request contains a NUL character or a broken character (a lone UTF-16 "
            "surrogate), which no field can hold."
        )
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail, "code": "unstorable_text"}, status=400)
        return HttpResponse(detail, status=400, content_type="text/plain; charset=utf-8")

    return middleware
