"""Broadcasts when the channel layer is stuck: a Redis that accepts connections but never
answers (the sends time out, are counted and logged) and cannot grow the outbox without bound."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import wait_for


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A TCP server on loopback that accepts, reads whatever it is sent, and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(0.2)
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_channel_layer_times_out_and_the_outbox_stays_bounded(silent_redis, caplog):
    from channels_redis.core import RedisChannelLayer

    from command.realtime import _Outbox

    layer = RedisChannelLayer(hosts=[{"address": silent_redis, "socket_timeout": None}])
    outbox = _Outbox(layer)
    outbox.MAX_QUEUED = 50
    outbox.SEND_TIMEOUT = 0.3
    with caplog.at_level(logging.ERROR, logger="whistle.realtime"):
        for i in range(200):
            outbox.put("board.qingshui", {"type": "alert.raised", "n": i})
        # The first send waits on the silent server; the rest fill the queue to its bound.
        wait_for(lambda: outbox.dropped > 0, timeout=10, what="the outbox to refuse more")
        assert outbox.depth() <= outbox.MAX_QUEUED
        wait_for(lambda: outbox.failed >= 2, timeout=10, what="sends to time out")
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "no answer within" in messages
    assert "outbox full" in messages


def test_a_forked_process_starts_an_outbox_of_its_own():
    """The test server and pre-forking servers fork after the parent's outbox loop runs; the
    child inherits the loop object without its thread and must not send through it."""
    import os

    from command import realtime

    realtime._outbox._ready()
    inherited = realtime._outbox
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        fresh = realtime._outbox is not inherited and realtime._outbox._loop is None
        os.write(write, b"1" if fresh else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
    os.close(write)


class RecordingLayer:
    """A channel layer that keeps what it is sent, per configured name."""

    sent: dict[str, list[tuple[str, dict]]] = {}

    def __init__(self, name: str) -> None:
        self.name = name

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.setdefault(self.name, []).append((group, message))


def test_the_outbox_sends_through_the_layer_the_settings_name_now():
    """A layer switched after the outbox started (the tests' own Redis on a laptop without
    REDIS_URL) gets the later sends: the outbox must not keep the layer it started with."""
    from django.test import override_settings

    from command.realtime import _Outbox

    backend = f"{__name__}.RecordingLayer"
    outbox = _Outbox()
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": backend, "CONFIG": {"name": "a"}}}
    ):
        outbox.put("board.qingshui", {"type": "alert.raised", "n": 1})
        wait_for(lambda: RecordingLayer.sent.get("a"), timeout=5, what="the first send")
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": backend, "CONFIG": {"name": "b"}}}
    ):
        outbox.put("board.qingshui", {"type": "alert.raised", "n": 2})
        wait_for(lambda: RecordingLayer.sent.get("b"), timeout=5, what="the send after the switch")
    assert [m["n"] for _, m in RecordingLayer.sent["a"]] == [1]
    assert [m["n"] for _, m in RecordingLayer.sent["b"]] == [2]
