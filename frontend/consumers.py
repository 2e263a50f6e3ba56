"""Websocket consumers: HTML fragments for htmx's ws extension (``hx-swap-oob``).

On connect a board gets the full current state from the database, so a reconnect never depends
on what the socket missed; afterwards each event re-renders the affected fragment.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from channels.db import DatabaseSyncToAsync, database_sync_to_async
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


class FragmentConsumer(AsyncWebsocketConsumer):
    """A push-only socket: authorize on connect, send the full current state, then a fragment
    for each event of the group. Subclasses say who may connect and what they are shown."""

    url_kwarg = ""
    group: str | None = None

    def authorize(self, user: Any, key: str) -> tuple[Any, str] | None:
        """(the scoped object, its group), or None to refuse. Runs in a thread (ORM)."""
        raise NotImplementedError

    def full_state(self) -> str:
        raise NotImplementedError

    async def connect(self) -> None:
        key = self.scope["url_route"]["kwargs"][self.url_kwarg]
        allowed = await database_sync_to_async(self.authorize)(self.scope["user"], key)
        if allowed is None:
            # Closing before accept refuses the handshake (HTTP 403).
            await self.close(code=FORBIDDEN)
            return
        self.scoped, self.group = allowed
        self.language = scope_language(self.scope)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=await database_sync_to_async(self.full_state)())

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Actions go through HTTP (CSRF, one code path); the socket only pushes.
        return

    async def push(self, render: Any, **kwargs: Any) -> None:
        # Not thread-sensitive: the renders of many consoles run side by side instead of
        # queueing behind each other (and behind every HTTP request) on one thread.
        html = await DatabaseSyncToAsync(render, thread_sensitive=False)(
            language=self.language, **kwargs
        )
        if html:
            await self.send(text_data=html)


class BoardConsumer(FragmentConsumer):
    """The duty board of a township: its alert queue."""

    url_kwarg = "township"

    def authorize(self, user: Any, key: str) -> tuple[Any, str] | None:
        township = org_selectors.township_for_board(user=user, code=key)
        return (township, realtime.board_group(township.code)) if township else None

    def full_state(self) -> str:
        return rendering.board_state_html(township=self.scoped, language=self.language)

    async def _push_alert(self, event: dict[str, Any]) -> None:
        await self.push(rendering.alert_push_html, township=self.scoped, alert_id=event["alert_id"])
        await self.push(rendering.map_overlay_html, township=self.scoped, oob=True)
        await self.push(rendering.figures_html, township=self.scoped, oob=True)

    alert_raised = _push_alert
    alert_updated = _push_alert

    async def _push_incidents(self, event: dict[str, Any]) -> None:
        await self.push(rendering.incidents_html, township=self.scoped, oob=True)
        await self.push(rendering.figures_html, township=self.scoped, oob=True)

    incident_opened = _push_incidents
    incident_updated = _push_incidents
    whistle_blown = _push_incidents
    summons_updated = _push_incidents


class DepartmentConsumer(FragmentConsumer):
    """A department's console: its summons, the moment a whistle summons it."""

    url_kwarg = "department"

    def authorize(self, user: Any, key: str) -> tuple[Any, str] | None:
        department = incident_selectors.department_for_console(user=user, code=key)
        return (department, realtime.department_group(department.code)) if department else None

    def full_state(self) -> str:
        return rendering.summons_inbox_html(
            department=self.scoped, oob=True, language=self.language
        )

    async def _push_summons(self, event: dict[str, Any]) -> None:
        await self.push(
            rendering.summons_push_html, department=self.scoped, summons_id=event["summons_id"]
        )

    summons_notified = _push_summons
    summons_updated = _push_summons
