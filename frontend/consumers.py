"""Websocket consumers: HTML fragments for htmx's ws extension (``hx-swap-oob``).

On connect a board gets the full current state from the database, so a reconnect never depends
on what the socket missed; afterwards each event re-renders the affected fragment.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils.translation import get_supported_language_variant
from django.utils.translation.trans_real import parse_accept_lang_header

from command import realtime
from command.incidents import selectors as incident_selectors
from command.org import selectors as org_selectors
from frontend import rendering

FORBIDDEN = 4403


def scope_language(scope: dict[str, Any]) -> str:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    cookie = SimpleCookie(headers.get("cookie", ""))
    candidates = []
    if settings.LANGUAGE_COOKIE_NAME in cookie:
        candidates.append(cookie[settings.LANGUAGE_COOKIE_NAME].value)
    candidates += [lang for lang, _ in parse_accept_lang_header(headers.get("accept-language", ""))]
    for candidate in candidates:
        try:
            return get_supported_language_variant(candidate)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class BoardConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        code = self.scope["url_route"]["kwargs"]["township"]
        self.township = await database_sync_to_async(org_selectors.township_for_board)(
            user=self.scope["user"], code=code
        )
        if self.township is None:
            # Closing before accept refuses the handshake (HTTP 403).
            await self.close(code=FORBIDDEN)
            return
        self.language = scope_language(self.scope)
        self.group = realtime.board_group(self.township.code)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        html = await database_sync_to_async(rendering.alert_queue_html)(
            township=self.township, oob=True, language=self.language
        )
        await self.send(text_data=html)

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Actions go through HTTP (CSRF, one code path); the socket only pushes.
        return

    async def _push_alert(self, event: dict[str, Any]) -> None:
        html = await database_sync_to_async(rendering.alert_push_html)(
            township=self.township, alert_id=event["alert_id"], language=self.language
        )
        if html:
            await self.send(text_data=html)

    alert_raised = _push_alert
    alert_updated = _push_alert


class DepartmentConsumer(AsyncWebsocketConsumer):
    """A department's console: its summons, the moment a whistle summons it."""

    group: str | None = None

    async def connect(self) -> None:
        code = self.scope["url_route"]["kwargs"]["department"]
        self.department = await database_sync_to_async(incident_selectors.department_for_console)(
            user=self.scope["user"], code=code
        )
        if self.department is None:
            await self.close(code=FORBIDDEN)
            return
        self.language = scope_language(self.scope)
        self.group = realtime.department_group(self.department.code)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        html = await database_sync_to_async(rendering.summons_inbox_html)(
            department=self.department, oob=True, language=self.language
        )
        await self.send(text_data=html)

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return

    async def _push_summons(self, event: dict[str, Any]) -> None:
        html = await database_sync_to_async(rendering.summons_push_html)(
            department=self.department, summons_id=event["summons_id"], language=self.language
        )
        if html:
            await self.send(text_data=html)

    summons_notified = _push_summons
    summons_updated = _push_summons
