"""The one place that calls ``group_send``.

Services call :func:`broadcast_on_commit`; the event leaves only if the transaction that caused
it commits, so a board never shows a change the database does not hold (Zulip's
``send_event_on_commit``). Groups: ``board.{township}`` (each event also names
its township as ``board``, for the district boards that hear it), ``dept.{department}``,
``user.{id}``, ``supervise.{township id}``. Event types are dotted and listed in
:data:`EVENT_TYPES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal, get_args

from channels.layers import get_channel_layer
from django.db import transaction
from prometheus_client import Counter, Gauge

log = logging.getLogger("whistle.realtime")

OUTBOX_DEPTH = Gauge("whistle_broadcast_outbox_depth", "Broadcasts waiting for the channel layer")
BROADCASTS_DROPPED = Counter(
    "whistle_broadcasts_dropped_total", "Broadcasts dropped because the outbox was full"
)
BROADCASTS_FAILED = Counter(
    "whistle_broadcasts_failed_total", "Broadcasts the channel layer refused or timed out"
)

EventType = Literal[
    "alert.raised",
    "alert.updated",
    "incident.opened",
    "incident.updated",
    "whistle.blown",
    "summons.notified",
    "summons.updated",
    # A supervision order (督办单) issued, acknowledged or answered: its department's console
    # and its incident's board.
    "order.updated",
    # A console notification for one person (alerts.delivery.people.page), to their sockets.
    "notification.new",
    # A user's rights may have changed (saved, deactivated, logged out): their sockets re-check.
    "user.changed",
    # A notification was written, sent, failed or read: the supervisors' consoles redraw.
    "notification.updated",
]
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))

_capture_lock = threading.Lock()
_captures: list[list[tuple[str, dict[str, Any]]]] = []
# The in-memory channel layer keeps asyncio queues bound to the web server's loop; a sender on
# another thread (the MQTT ingest in `whistle demo`) must hand its send to that loop.
_server_loop: asyncio.AbstractEventLoop | None = None


BOARD_PREFIX = "board."
SUPERVISION_PREFIX = "supervise."


def board_group(township_code: str) -> str:
    return f"{BOARD_PREFIX}{township_code}"


def district_group(district_code: str) -> str:
    """The district board's own key: it hears the board groups of the district's townships."""
    return f"district.{district_code}"


def department_group(department_code: str) -> str:
    return f"dept.{department_code}"


def user_group(user_id: int) -> str:
    """Every socket of one user: told when the user's rights may have changed."""
    return f"user.{user_id}"


def supervision_group(township_id: int) -> str:
    """The supervisor consoles that follow a township: told of its notifications' progress
    (by id, so a writer that knows only the township's id needs no query)."""
    return f"{SUPERVISION_PREFIX}{township_id}"


def set_server_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    global _server_loop
    _server_loop = loop


def broadcast_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to ``group`` once the current transaction commits."""
    if event.get("type") not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event.get('type')!r}; add it to EventType")
    # Each event carries its own id: the sockets of one process that receive the same events
    # render their frame once and share it (frontend.consumers).
    event = {**event, "id": uuid.uuid4().hex}
    if group.startswith(BOARD_PREFIX):
        # Which township's board it is for: a district board hears every township's events
        # and redraws that township's row (frontend.district).
        event["board"] = group[len(BOARD_PREFIX) :]
    elif group.startswith(SUPERVISION_PREFIX):
        event["supervised"] = int(group[len(SUPERVISION_PREFIX) :])
    transaction.on_commit(lambda: _send(group, event))


def _send(group: str, event: dict[str, Any]) -> None:
    with _capture_lock:
        for capture in _captures:
            capture.append((group, event))
    if get_channel_layer() is None:
        return
    _outbox.put(group, event)


class _Outbox:
    """Sends broadcasts from an event loop of their own, in order, without making the request
    that committed wait for Redis: a whistle to five departments is eight sends, and waiting
    for each (async_to_sync per send) cost more than the whole transaction.

    With the in-memory layer (``whistle demo``) the loop is the web server's own, since that
    layer's queues belong to it.
    """

    # A channel layer that accepts connections but never answers (a Redis stuck on disk, a
    # half-open connection) must not grow the queue without bound nor hold it for ever: each
    # send has a deadline, and past MAX_QUEUED waiting events the newest are dropped, counted
    # and logged. Dropping is safe: the rows are committed, and a board that reconnects (or the
    # next push of the same list) re-renders from the database.
    MAX_QUEUED = 10_000
    SEND_TIMEOUT = 5.0
    # One warning per this many seconds while sends keep failing, not one per event.
    LOG_EVERY = 10.0

    def __init__(self, layer: Any = None) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self._layer = layer
        self.dropped = 0
        self.failed = 0
        self._logged_at: dict[str, float] = {}

    def put(self, group: str, event: dict[str, Any]) -> None:
        loop, queue = self._ready()
        loop.call_soon_threadsafe(self._enqueue, queue, group, event)

    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def _enqueue(self, queue: asyncio.Queue, group: str, event: dict[str, Any]) -> None:
        try:
            queue.put_nowait((group, event))
        except asyncio.QueueFull:
            self.dropped += 1
            BROADCASTS_DROPPED.inc()
            self._warn(
                "broadcast outbox full (%d waiting): the channel layer does not keep up; "
                "%d pushes dropped so far (boards catch up from the database)",
                queue.qsize(),
                self.dropped,
            )
        OUTBOX_DEPTH.set(queue.qsize())

    def _warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._logged_at.get(message, -self.LOG_EVERY) >= self.LOG_EVERY:
            self._logged_at[message] = now
            log.error(message, *args)

    def _ready(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
        with self._lock:
            if self._loop is not None and self._loop.is_running() and self._queue is not None:
                return self._loop, self._queue
            server = _server_loop
            if server is not None and server.is_running():
                loop = server
            else:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="broadcasts", daemon=True).start()
            self._queue = asyncio.run_coroutine_threadsafe(self._start(), loop).result(5)
            self._loop = loop
            return loop, self._queue

    async def _start(self) -> asyncio.Queue:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(self.MAX_QUEUED)
        self._task = asyncio.get_running_loop().create_task(self._drain(queue))
        return queue

    async def _drain(self, queue: asyncio.Queue) -> None:
        while True:
            group, event = await queue.get()
            OUTBOX_DEPTH.set(queue.qsize())
            # Looked up per send (a dict lookup): when the settings change the layer (the tests'
            # own Redis), channels builds a new one, and a layer kept from start-up would
            # deliver to nobody.
            layer = self._layer or get_channel_layer()
            try:
                await asyncio.wait_for(layer.group_send(group, event), self.SEND_TIMEOUT)
            except Exception as exc:
                # The row is committed and a reconnecting board re-renders from the database,
                # so a lost push is a delay, not a loss; say so and carry on.
                self.failed += 1
                BROADCASTS_FAILED.inc()
                reason = (
                    f"no answer within {self.SEND_TIMEOUT:.0f} s"
                    if isinstance(exc, TimeoutError)
                    else f"{type(exc).__name__}: {exc}"
                )
                self._warn(
                    "broadcast to %s failed (%s); %d failed so far, %d waiting",
                    group,
                    reason,
                    self.failed,
                    queue.qsize(),
                )


_outbox = _Outbox()


def _forget_loop_after_fork() -> None:
    # A forked child (a pre-forking server, the test server) inherits the parent's outbox loop
    # object but not the thread that runs it: it must start its own. It also inherits the
    # channel layer with the parent's open Redis connections: two processes talking on one
    # socket reset it (the child's websocket handshakes failed), so it makes its own layer.
    global _outbox
    _outbox = _Outbox()
    from channels.layers import channel_layers

    channel_layers.backends = {}


os.register_at_fork(after_in_child=_forget_loop_after_fork)


@contextlib.contextmanager
def capture_broadcasts() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Collect every broadcast sent while the block runs (for tests)."""
    captured: list[tuple[str, dict[str, Any]]] = []
    with _capture_lock:
        _captures.append(captured)
    try:
        yield captured
    finally:
        with _capture_lock:
            _captures.remove(captured)
