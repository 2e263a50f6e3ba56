"""Websocket consumers: HTML fragments for htmx's ws extension (``hx-swap-oob``).

On connect a board gets the full current state from the database, so a reconnect never depends
on what the socket missed; afterwards each event marks what it changed, and the changes are
rendered and sent together: a burst of a thousand alerts a second becomes a few frames a second
that each carry the latest state, instead of three renders per alert that the browser (and this
process) cannot keep up with.

What a socket sends is bounded whatever the backlog: lists carry their first page (the rest is
paged over HTTP, frontend.paging) and no frame exceeds ``WEBSOCKET_FRAME_MAX_BYTES``: a state
or a batch that is larger goes out in several frames, cut between rows (frontend.frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import random
import weakref
import zlib
from http.cookies import SimpleCookie
from importlib import import_module
from typing import Any

from channels.consumer import get_handler_name
from channels.db import DatabaseSyncToAsync, database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils.translation import get_supported_language_variant
from django.utils.translation.trans_real import parse_accept_lang_header

from command import realtime
from command.org import selectors as org_selectors
from frontend import district as district_view
from frontend import notifications, rendering, widgets
from frontend import supervisor_console as supervise
from frontend.frames import Part, pack
from incidents import selectors as incident_selectors

FORBIDDEN = 4403
log = logging.getLogger("whistle.frontend")
# Frames being rendered or just rendered, by (consumer class, group, language, event ids): a
# thousand boards of one township receive the same events, so one renders and all send it.
_frames: dict[tuple[Any, ...], asyncio.Task[list[str]]] = {}
_FRAME_KEPT_SECONDS = 10.0
# Full states being rendered, by (consumer class, group, language), with when each started.
_states: dict[tuple[Any, ...], tuple[float, asyncio.Task[list[str]]]] = {}
# A user's unread notifications being rendered for their sockets, by (user, language), with when
# each started: a thousand sockets of one big screen reconnecting are one query, not a thousand.
_trays: dict[tuple[Any, ...], tuple[float, asyncio.Task[list[str]]]] = {}
# What a batch marks for the person's own notifications (pushed to their group only).
NOTIFICATIONS = "notification"
# Re-checks of one user's rights, shared by the sockets of the same session and board (a big
# screen's thousand reconnecting sockets are one check, not a thousand queued on one thread).
_checks: dict[tuple[Any, ...], asyncio.Task[bool]] = {}


class GroupHub:
    """This process's sockets of one group, as one member of the group on the channel layer.

    With every socket a member, a group_send is delivered by the channel layer to each socket's
    channel: per socket, a wake-up of its receive (channels_redis waits on a lock and a queue in
    tasks of their own, anew for each message) and of channels' dispatch loop, a thousand of
    each per event for a thousand boards on one screen wall. The hub receives the event once
    and hands it to each socket's ``dispatch`` in turn, which only marks what changed.
    The sockets keep their own channels for the rest (their user's group, extra groups).
    """

    def __init__(self, layer: Any, group: str) -> None:
        self.layer = layer
        self.group = group
        self.members: dict[FragmentConsumer, None] = {}  # in the order they joined
        self.channel = ""
        self._started: asyncio.Task[None] | None = None
        self._receiving: asyncio.Task[None] | None = None
        self._rejoiner: asyncio.Task[None] | None = None
        self._rejoin_seconds = 600.0  # the first member's (FragmentConsumer.rejoin_seconds)

    @classmethod
    def of(cls, layer: Any, group: str) -> GroupHub:
        hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
        hub = hubs.get((layer, group))
        if hub is None:
            hub = hubs[(layer, group)] = cls(layer, group)
        return hub

    async def join(self, consumer: FragmentConsumer) -> None:
        """Returns once the hub is a member of the group: what is sent to it after this
        reaches ``consumer``."""
        self.members[consumer] = None
        if self._started is None:
            self._rejoin_seconds = consumer.rejoin_seconds
            self._started = asyncio.get_running_loop().create_task(self._start())
        await asyncio.shield(self._started)

    async def leave(self, consumer: FragmentConsumer) -> None:
        self.members.pop(consumer, None)
        if self.members:
            return
        self._forget()
        if self._started is None:
            return
        try:
            await asyncio.shield(self._started)
        except Exception:
            return  # it never joined
        for task in (self._receiving, self._rejoiner):
            if task is not None:
                task.cancel()
        await self.layer.group_discard(self.group, self.channel)

    def _forget(self) -> None:
        hubs = _hubs.get(asyncio.get_running_loop(), {})
        if hubs.get((self.layer, self.group)) is self:
            del hubs[(self.layer, self.group)]

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        loop = asyncio.get_running_loop()
        self._receiving = loop.create_task(self._receive())
        self._rejoiner = loop.create_task(self._rejoin())

    async def _rejoin(self) -> None:
        """Join the group again now and then, as each socket does its own groups
        (FragmentConsumer.rejoin_seconds): the core layer drops members after its expiry."""
        while True:
            await asyncio.sleep(self._rejoin_seconds * random.uniform(0.75, 1.25))
            try:
                await self.layer.group_add(self.group, self.channel)
            except Exception as exc:  # Redis away: the next round, or the receive fails
                log.warning("rejoining %s failed: %s", self.group, exc)

    async def _receive(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # What the sockets missed is unknown: close them all (1011), as a socket whose
                # own receive failed was closed; they reconnect and get the full state.
                log.exception("receiving the events of %s failed", self.group)
                self._forget()
                if self._rejoiner is not None:
                    self._rejoiner.cancel()
                members, self.members = list(self.members), {}
                for consumer in members:
                    await consumer.close(code=1011)
                with contextlib.suppress(Exception):
                    await self.layer.group_discard(self.group, self.channel)
                return
            for n, consumer in enumerate(list(self.members)):
                try:
                    await consumer.dispatch(message)
                except Exception:
                    log.exception("handling %s on %s failed", message.get("type"), self.group)
                if n % HUB_SLICE == 0:
                    # A handler only marks: without a pause the first socket's shared render
                    # would start after the last socket is marked, and nothing would be sent
                    # meanwhile. After the first and every HUB_SLICE-th, the loop runs the rest.
                    await asyncio.sleep(0)


# Sockets a hub hands an event to between two turns of the event loop.
HUB_SLICE = 100
# The hubs of each event loop (a test runs several loops, the server one), by layer and group.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, str], GroupHub]] = (
    weakref.WeakKeyDictionary()
)


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
    """A push-only socket: authorize on connect, send the full current state, then the changes.

    Event handlers only :meth:`mark` what changed. One flush task renders everything marked so
    far in one frame; what is marked while it renders goes into the next frame, sent no sooner
    than ``min_interval`` after the last. An idle socket sends at once (no added latency); a
    busy one coalesces. Subclasses say who may connect and how a batch is rendered.
    """

    url_kwarg = ""
    group: str | None = None
    # At most this many frames a second under a burst: enough to look live, few enough that
    # a browser swaps each one before the next arrives.
    min_interval = 0.1
    # What a batch marks that goes out in a frame of its own ahead of the rest: rendered first
    # and sent while the rest renders, so what the person acts on (a new alert's row) is not
    # held up by the widgets around it (the map, the figures).
    first: frozenset[str] = frozenset()
    # The other widgets (the map, the figures: a redraw each costs a few queries and tens of
    # kB) are redrawn at most once per this many seconds, on ticks of the loop's clock; 0: with
    # every frame. A new alert's row does not wait for them.
    rest_interval = 0.0
    # Rights are re-checked before a frame when the last check is older than this, and at
    # once when the user is saved or logs out (command.org.signals): a deactivated, demoted or
    # logged-out user's socket closes instead of receiving pushes.
    recheck_seconds = 15.0
    # The core channel layer drops a group member that joined longer ago than its group expiry
    # (settings: an hour), open socket or not: a wall board open for days would go deaf. Each
    # socket joins its groups again about this often (spread, so a thousand sockets opened
    # together do not rejoin together); the expiry is what removes the members of a process
    # killed without closing its sockets.
    rejoin_seconds = 600.0

    def authorize(self, user: Any, key: str) -> tuple[Any, str] | None:
        """(the scoped object, its group), or None to refuse. Runs in a thread (ORM)."""
        raise NotImplementedError

    def full_state(self) -> list[Part]:
        raise NotImplementedError

    def extra_groups(self) -> list[str]:
        """Groups besides ``group`` whose events this socket hears (after authorize)."""
        return []

    def render_batch(self, batch: dict[str, set[int]]) -> list[Part]:
        """The fragments for everything marked since the last frame. Runs in a thread."""
        raise NotImplementedError

    def frames(self, parts: list[Part]) -> list[str]:
        """The parts in frames no larger than ``WEBSOCKET_FRAME_MAX_BYTES`` each: a backlog
        makes more frames, never a frame the server or the browser refuses."""
        return pack(parts, limit=settings.WEBSOCKET_FRAME_MAX_BYTES)

    def full_state_frames(self) -> list[str]:
        return self.frames(self.full_state())

    def render_batch_frames(self, batch: dict[str, set[int]]) -> list[str]:
        # The person's own notifications come only to their sockets (their user group), so a
        # batch holding one is shared by that person's sockets alone.
        rest = {what: items for what, items in batch.items() if what != NOTIFICATIONS}
        parts = self.render_batch(rest) if rest else []
        if NOTIFICATIONS in batch:
            parts += notifications.entry_parts(
                user_id=self.user_id, notification_ids=batch[NOTIFICATIONS], language=self.language
            )
        return self.frames(parts)

    def tray_frames(self) -> list[str]:
        return self.frames(notifications.tray_parts(user_id=self.user_id, language=self.language))

    async def send_frames(self, frames: list[str]) -> None:
        for frame in frames:
            await self.send(text_data=frame)

    async def connect(self) -> None:
        key = self.scope["url_route"]["kwargs"].get(self.url_kwarg, "")
        allowed = await database_sync_to_async(self.authorize)(self.scope["user"], key)
        if allowed is None:
            # Closing before accept refuses the handshake (HTTP 403).
            await self.close(code=FORBIDDEN)
            return
        self.scoped, self.group = allowed
        self.key = key
        self.user_id = self.scope["user"].pk
        self._checked = asyncio.get_running_loop().time()
        await self.channel_layer.group_add(realtime.user_group(self.user_id), self.channel_name)
        self.language = scope_language(self.scope)
        self._marked: dict[str, set[int]] = {}
        self._events: dict[str, set[Any]] = {}  # what → the events that marked it
        self._flusher: asyncio.Task | None = None
        self._last_frame = 0.0
        self._rest_after = 0.0
        self._wake = asyncio.Event()
        # This socket's own channel is in its user's group and the extra groups; the group of
        # the page is the hub's (one member for the sockets of this process), rejoined by it.
        self._joined = [realtime.user_group(self.user_id), *self.extra_groups()]
        self._hub = GroupHub.of(self.channel_layer, self.group)
        await self._hub.join(self)
        for group in self._joined[1:]:
            await self.channel_layer.group_add(group, self.channel_name)
        self._rejoiner = asyncio.get_running_loop().create_task(self._rejoin())
        await self.accept()
        joined = asyncio.get_running_loop().time()
        await self.send_frames(await self._shared_state(joined=joined))
        await self.send_frames(await self._shared_tray(joined=joined))

    async def disconnect(self, code: int) -> None:
        hub = getattr(self, "_hub", None)
        if hub is not None:
            await hub.leave(self)
        if self.group:
            await self.channel_layer.group_discard(
                realtime.user_group(self.user_id), self.channel_name
            )
            for group in self.extra_groups():
                await self.channel_layer.group_discard(group, self.channel_name)
        for task in (getattr(self, "_flusher", None), getattr(self, "_rejoiner", None)):
            if task is not None:
                task.cancel()

    async def _rejoin(self) -> None:
        """Join this socket's groups again, every ``rejoin_seconds`` or so, while it is open."""
        while True:
            await asyncio.sleep(self.rejoin_seconds * random.uniform(0.75, 1.25))
            try:
                for group in self._joined:
                    await self.channel_layer.group_add(group, self.channel_name)
            except Exception as exc:  # Redis away: the next round, or the socket closes
                log.warning("rejoining %s failed: %s", self.group, exc)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler, a hop to its one
        # sync thread; with a thousand sockets that is a thousand hops queued per event. Our
        # event handlers only mark what changed (no ORM), so they are called directly.
        handler = getattr(self, get_handler_name(message), None)
        if message["type"] in realtime.EVENT_TYPES and handler is not None:
            await handler(message)
            return
        await super().dispatch(message)

    def still_allowed(self) -> bool:
        """The user as the database holds them now, with this socket's session still theirs
        (not logged out, password unchanged), may still open this socket. Runs in a thread."""
        from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
        from django.utils.crypto import constant_time_compare

        user = get_user_model().objects.filter(pk=self.user_id).first()
        if user is None:
            return False
        session = self.scope.get("session")
        if session is not None:
            store = import_module(settings.SESSION_ENGINE).SessionStore
            stored = store(session_key=session.session_key).load()
            if str(stored.get(SESSION_KEY)) != str(user.pk) or not constant_time_compare(
                stored.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
            ):
                return False
        return self.authorize(user, self.key) is not None

    async def recheck(self, reason: Any = None) -> bool:
        """Close the socket (4403) unless its user may still have it.

        The sockets of one session on one board share the check: those re-checking for the same
        ``reason`` (a ``user.changed`` event) or, periodically, within the same re-check period
        await one query, run in the pool of render threads rather than on the one thread of sync
        code, where a thousand of them delayed every frame by seconds."""
        loop = asyncio.get_running_loop()
        self._checked = loop.time()
        session = self.scope.get("session")
        if reason is not None:
            period = reason
        elif self.recheck_seconds > 0:
            period = int(loop.time() // self.recheck_seconds)
        else:  # every frame re-checks
            period = loop.time()
        key = (type(self), self.user_id, getattr(session, "session_key", None), self.key, period)
        task = _checks.get(key)
        if task is None:
            check = DatabaseSyncToAsync(self.still_allowed, thread_sensitive=False)
            task = loop.create_task(check())
            _checks[key] = task
            loop.call_later(self.recheck_seconds, _checks.pop, key, None)
        if await asyncio.shield(task):
            return True
        log.info("closing %s for user %s: no longer allowed", self.group, self.user_id)
        await self._refuse()
        return False

    async def _refuse(self) -> None:
        self._refused = True
        self._marked.clear()
        self._events.clear()
        await self.close(code=FORBIDDEN)

    async def user_changed(self, event: dict[str, Any]) -> None:
        session = self.scope.get("session")
        if event.get("ended_session") and session is not None:
            from command.org.signals import session_tag

            if event["ended_session"] == session_tag(session.session_key):
                await self._refuse()
                return
        await self.recheck(reason=event.get("id"))

    async def notification_new(self, event: dict[str, Any]) -> None:
        # 督办 for this person: shown on whichever live page they have open.
        self.mark(event, NOTIFICATIONS, event["notification_id"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Actions go through HTTP (CSRF, one code path); the socket only pushes.
        return

    def mark(self, event: dict[str, Any], what: str, item: int | None = None) -> None:
        """Note that ``what`` changed (``item``: which one); it goes out with the next frame."""
        if getattr(self, "_refused", False):
            return
        items = self._marked.setdefault(what, set())
        if item is not None:
            items.add(item)
        # Every broadcast has an id (command.realtime).
        self._events.setdefault(what, set()).add(event["id"])
        if what in self.first:
            self._wake.set()  # a flush waiting for the widgets' tick sends this at once
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._marked:
            wait = self._last_frame + self.min_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if loop.time() - self._checked > self.recheck_seconds and not await self.recheck():
                return
            now = loop.time()
            due = [what for what in self._marked if what in self.first or now >= self._rest_after]
            if not due:
                # Only the widgets around the rows are marked, and their tick is ahead: wait
                # for it, or for a row, which goes at once.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._rest_after - now)
                continue
            batch = {what: self._marked.pop(what) for what in due}
            events = {what: self._events.pop(what, set()) for what in due}
            ahead = {what: items for what, items in batch.items() if what in self.first}
            rest = {what: items for what, items in batch.items() if what not in self.first}
            if rest and self.rest_interval:
                # The next tick on the loop's clock, the same for every socket of the group in
                # the process, so that they flush together and share one render. Each group's
                # ticks are offset by a phase of their own: thirty townships' maps rendered on
                # the same tick queued a new alert's row for a second behind them.
                interval = self.rest_interval
                phase = zlib.crc32(str(self.group).encode()) % 1000 / 1000 * interval
                self._rest_after = (math.floor((now - phase) / interval) + 1) * interval + phase
            stages = [
                (stage, frozenset().union(*(events[what] for what in stage)))
                for stage in (ahead, rest)
                if stage
            ]
            pending = self._shared_frames(*stages[0])
            for n in range(len(stages)):
                try:
                    frames = await pending
                except Exception:
                    # A reconnect re-renders from the database; keep this socket serving.
                    log.exception("rendering a frame for %s failed", self.group)
                    frames = []
                if n + 1 < len(stages):
                    pending = self._shared_frames(*stages[n + 1])
                await self.send_frames(frames)
            self._last_frame = loop.time()

    def _shared_state(self, *, joined: float) -> Any:
        """The full state for a socket that joined its group at ``joined``. When a thousand
        boards reconnect at once (a server restart), one render serves every socket that had
        joined before it started: whatever changes after that render read the database reaches
        them as a push. It runs in the pool of render threads, not on the one thread of sync
        code, where the authorize() of each socket would queue behind every full state and its
        handshake time out (daphne gives it 5 s)."""
        loop = asyncio.get_running_loop()
        key = (type(self), self.group, self.language)
        found = _states.get(key)
        if found is not None and found[0] >= joined and not found[1].done():
            return asyncio.shield(found[1])
        render = DatabaseSyncToAsync(self.full_state_frames, thread_sensitive=False)
        task = loop.create_task(render())
        _states[key] = (loop.time(), task)

        def forget(done: asyncio.Task) -> None:
            if _states.get(key, (0.0, None))[1] is done:
                del _states[key]

        task.add_done_callback(forget)
        return asyncio.shield(task)

    def _shared_tray(self, *, joined: float) -> Any:
        """The person's unread notifications for a socket that joined at ``joined``, shared by
        their sockets as :meth:`_shared_state` shares a board's state."""
        loop = asyncio.get_running_loop()
        key = (self.user_id, self.language)
        found = _trays.get(key)
        if found is not None and found[0] >= joined and not found[1].done():
            return asyncio.shield(found[1])
        render = DatabaseSyncToAsync(self.tray_frames, thread_sensitive=False)
        task = loop.create_task(render())
        _trays[key] = (loop.time(), task)

        def forget(done: asyncio.Task) -> None:
            if _trays.get(key, (0.0, None))[1] is done:
                del _trays[key]

        task.add_done_callback(forget)
        return asyncio.shield(task)

    def _shared_frames(self, batch: dict[str, set[int]], events: frozenset[Any]) -> Any:
        """The frames for what these events marked (all of it, or one stage of it): rendered by
        the first socket of the process that asks, awaited by the others (shielded, so one
        socket closing does not cancel it for all)."""
        key = (type(self), self.group, self.language, events, frozenset(batch))
        task = _frames.get(key)
        if task is None:
            # Not thread-sensitive: renders for different townships or languages run side by
            # side instead of queueing behind every HTTP request on one thread.
            render = DatabaseSyncToAsync(self.render_batch_frames, thread_sensitive=False)
            task = asyncio.get_running_loop().create_task(render(batch))
            _frames[key] = task
            asyncio.get_running_loop().call_later(_FRAME_KEPT_SECONDS, _frames.pop, key, None)
        return asyncio.shield(task)


class BoardConsumer(FragmentConsumer):
    """The duty board of a township: its widgets (frontend.widgets), each redrawn by the events
    its declaration names."""

    url_kwarg = "township"
    first = widgets.FIRST
    # A district township's burst of camera events redrew its map and figures ten times a
    # second on every board: most of a serve process's time in bench-district.
    rest_interval = 1.0

    def authorize(self, user: Any, key: str) -> tuple[Any, str] | None:
        township = org_selectors.township_for_board(user=user, code=key)
        return (township, realtime.board_group(township.code)) if township else None

    def full_state(self) -> list[Part]:
        return widgets.board_state(township=self.scoped, language=self.language)

    def render_batch(self, batch: dict[str, set[int]]) -> list[Part]:
        return widgets.board_batch(township=self.scoped, language=self.language, batch=batch)

    async def dispatch(self, message: dict[str, Any]) -> None:
        marks = widgets.board_marks(message)
        if not marks:
            await super().dispatch(message)
            return
        for widget, item in marks:
            self.mark(message, widget, item)


class DistrictConsumer(FragmentConsumer):
    """The district board: every township of a district. It hears the board groups of the
    district's townships (and their supervision groups, for escalation steps) and redraws the
    figures, the map's badges and the queues on every event, the alert list on alert events
    and the escalations on the others. A district board redraws a little slower than a
    township's: it is watched for where things stand, not worked from row by row."""

    url_kwarg = "district"
    min_interval = 0.25

    def authorize(self, user: Any, key: str) -> tuple[Any, str] | None:
        district = district_view.district_for_board(user=user, code=key)
        if district is None:
            return None
        self.townships = district_view.district_townships(district)
        return district, realtime.district_group(district.code)

    def extra_groups(self) -> list[str]:
        townships = getattr(self, "townships", [])
        return [realtime.board_group(t.code) for t in townships] + [
            realtime.supervision_group(t.pk) for t in townships
        ]

    def full_state(self) -> list[Part]:
        return district_view.district_state(
            district=self.scoped, townships=self.townships, language=self.language
        )

    def render_batch(self, batch: dict[str, set[int]]) -> list[Part]:
        return district_view.district_parts(
            district=self.scoped, townships=self.townships, language=self.language, what=set(batch)
        )

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in widgets.ALERT_EVENTS:
            self.mark(message, district_view.ALERTS)
        elif kind in realtime.EVENT_TYPES and ("board" in message or "supervised" in message):
            self.mark(message, district_view.WORK)
        else:
            await super().dispatch(message)


class DepartmentConsumer(FragmentConsumer):
    """A department's console: its summons, the moment a whistle summons it, and the
    supervision orders (督办单) addressed to it."""

    url_kwarg = "department"

    def authorize(self, user: Any, key: str) -> tuple[Any, str] | None:
        department = incident_selectors.department_for_console(user=user, code=key)
        return (department, realtime.department_group(department.code)) if department else None

    def full_state(self) -> list[Part]:
        return [
            *rendering.summons_inbox_parts(department=self.scoped, language=self.language),
            rendering.order_inbox_html(department=self.scoped, oob=True, language=self.language),
            rendering.order_count_html(department=self.scoped),
        ]

    def render_batch(self, batch: dict[str, set[int]]) -> list[Part]:
        new = batch.get("new summons", set())
        changed = sorted(new | batch.get("summons", set()))
        parts: list[Part] = [
            rendering.summons_push_html(
                department=self.scoped,
                summons_id=summons_id,
                new=summons_id in new,
                language=self.language,
            )
            for summons_id in changed
        ]
        if changed:
            parts.append(rendering.summons_count_html(department=self.scoped))
        new_orders = batch.get("new orders", set())
        orders = sorted(new_orders | batch.get("orders", set()))
        parts += [
            rendering.order_push_html(
                department=self.scoped,
                order_id=order_id,
                new=order_id in new_orders,
                language=self.language,
            )
            for order_id in orders
        ]
        if orders:
            parts.append(rendering.order_count_html(department=self.scoped))
        return parts

    async def summons_notified(self, event: dict[str, Any]) -> None:
        # Added to the list wherever it would sort: a new summons must be seen at once.
        self.mark(event, "new summons", event["summons_id"])

    async def summons_updated(self, event: dict[str, Any]) -> None:
        # Replaced where it is shown; on a page not shown it is fetched when that page is.
        self.mark(event, "summons", event["summons_id"])

    async def order_updated(self, event: dict[str, Any]) -> None:
        # Just issued: added to the list; acknowledged or answered: replaced, or removed.
        new = event.get("status") == "issued"
        self.mark(event, "new orders" if new else "orders", event["order_id"])


class SupervisorConsumer(FragmentConsumer):
    """The supervisor console (督办台): the townships a supervisor follows. It hears their boards
    (every summons' change is broadcast there) and their supervision groups (notifications'
    progress), and redraws its sections, at most once a second."""

    min_interval = 1.0
    REDRAWN_BY = frozenset(
        {
            "whistle.blown",
            "summons.notified",
            "summons.updated",
            "incident.updated",
            "order.updated",
            "notification.updated",
        }
    )

    def authorize(self, user: Any, key: str) -> tuple[Any, str] | None:
        from command.org import policy
        from command.org.models import Township

        if not policy.can_open_supervisor_console(user):
            return None
        ids = policy.supervised_township_ids(user)
        townships = Township.objects.all() if ids is None else Township.objects.filter(pk__in=ids)
        scoped = (ids, [(t.pk, t.code) for t in townships.order_by("pk")])
        # The group names the scope: sockets of the same scope share their renders, and only
        # they (a district supervisor's console must not be shared with a township's).
        if ids is None:
            group = "supervise.all"
        elif len(ids) == 1:
            group = realtime.supervision_group(next(iter(ids)))
        else:
            scope = hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()[:24]
            group = f"supervise.scope.{scope}"
        return scoped, group

    def extra_groups(self) -> list[str]:
        _ids, townships = self.scoped
        return [
            group
            for pk, code in townships
            for group in (realtime.board_group(code), realtime.supervision_group(pk))
        ]

    def full_state(self) -> list[Part]:
        ids, _townships = self.scoped
        return list(supervise.console_parts(township_ids=ids, language=self.language, oob=True))

    def render_batch(self, batch: dict[str, set[int]]) -> list[Part]:
        return self.full_state() if "console" in batch else []

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type", "")
        if kind in self.REDRAWN_BY:
            self.mark(message, "console")
            return
        if kind in realtime.EVENT_TYPES and getattr(self, get_handler_name(message), None) is None:
            return  # the boards' other news (alerts, figures) is not this page's
        await super().dispatch(message)
