"""Both channels-redis layers the project can run on (WHISTLE_CHANNEL_LAYER, command.settings):
what the boards rely on (group_add, group_send to the channels of another process, group_discard,
flush), and what each does when Redis dies and comes back empty (docs/benchmarks.md, "Channel
layer"). The rest of the suite runs on the default layer."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from command.settings import CHANNEL_LAYER_KINDS, DEFAULT_CHANNEL_LAYER, redis_channel_layers
from tests.brokers import _free_port, _stop, _wait_until_listening, redis_installed
from tests.conftest import database_now, end_connections_since

pytestmark = pytest.mark.services


class RestartableRedis:
    """A throw-away Redis that can be killed and started again, empty, on the same port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port("127.0.0.1")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.root / "redis.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                 "--save", "", "--appendonly", "no", "--dir", str(self.root)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_until_listening(self.process, "127.0.0.1", self.port, log, "redis-server")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    if not redis_installed():
        pytest.skip("redis-server is not installed")
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    assert server.process is not None
    _stop(server.process)


def in_a_thread(main: Any) -> Any:
    """asyncio.run(main()) on a thread of its own: Playwright's sync API may hold an event loop
    in the test's thread (browser tests in the same session)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as executor:
        return executor.submit(lambda: asyncio.run(main())).result()


def make_layer(kind: str, url: str) -> Any:
    """The layer the settings would build for ``kind``: a process's own."""
    from django.utils.module_loading import import_string

    config = redis_channel_layers(url, kind)["default"]
    return import_string(config["BACKEND"])(**config["CONFIG"])


@pytest.mark.parametrize("kind", CHANNEL_LAYER_KINDS)
def test_a_group_send_reaches_every_channel_of_another_process_until_discarded(redis, kind):
    async def run() -> None:
        # Two layers stand for two processes: a web server holding sockets, a sender.
        server, sender = make_layer(kind, redis.url), make_layer(kind, redis.url)
        channels = [await server.new_channel() for _ in range(3)]
        for channel in channels:
            await server.group_add("board.qingshui", channel)
        await sender.group_send("board.qingshui", {"type": "alert.raised", "alert_id": 1})
        for channel in channels:
            message = await asyncio.wait_for(server.receive(channel), 5)
            assert message == {"type": "alert.raised", "alert_id": 1}
        await server.group_discard("board.qingshui", channels[0])
        await sender.group_send("board.qingshui", {"type": "alert.raised", "alert_id": 2})
        for channel in channels[1:]:
            assert (await asyncio.wait_for(server.receive(channel), 5))["alert_id"] == 2
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(server.receive(channels[0]), 0.5)
        await server.flush()
        await sender.flush()

    in_a_thread(run)


def test_the_pubsub_layer_hears_its_groups_again_after_redis_restarts_empty(redis):
    """The pub/sub layer keeps its groups in the process and subscribes again when it
    reconnects, so a socket left open hears the pushes sent after Redis is back (those sent
    while it was away are lost; the sender's outbox counts them as failed)."""

    async def run() -> None:
        server, sender = make_layer("pubsub", redis.url), make_layer("pubsub", redis.url)
        channel = await server.new_channel()
        await server.group_add("board.qingshui", channel)
        await sender.group_send("board.qingshui", {"type": "alert.raised", "alert_id": 1})
        assert (await asyncio.wait_for(server.receive(channel), 5))["alert_id"] == 1

        redis.kill()
        await asyncio.sleep(2)  # down a while: the reader's retries run out
        redis.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        heard = None
        n = 1
        while heard is None and loop.time() < deadline:
            n += 1
            try:
                await sender.group_send("board.qingshui", {"type": "alert.raised", "alert_id": n})
            except Exception:  # the sender's own connection is reconnecting too
                await asyncio.sleep(0.2)
                continue
            try:
                heard = await asyncio.wait_for(server.receive(channel), 0.5)
            except TimeoutError:
                continue
        assert heard is not None, "the subscription was not renewed within 20 s"
        await server.flush()
        await sender.flush()

    in_a_thread(run)


def test_the_core_layer_fails_its_receivers_when_redis_goes_away(redis):
    """The core layer's receive raises when Redis goes away: the consumer ends and its socket
    closes, so the board shows it is offline and its reconnect, once Redis is back, joins its
    groups again and gets the full state (Redis comes back empty, without the groups)."""

    async def run() -> None:
        server = make_layer("core", redis.url)
        channel = await server.new_channel()
        await server.group_add("board.qingshui", channel)
        receiving = asyncio.ensure_future(server.receive(channel))
        await asyncio.sleep(0.2)
        redis.kill()
        with pytest.raises(Exception) as failed:
            await asyncio.wait_for(receiving, 15)
        assert not isinstance(failed.value, TimeoutError)

    in_a_thread(run)


def test_the_layer_is_chosen_by_its_environment_variable(monkeypatch):
    from command import settings

    monkeypatch.delenv("WHISTLE_CHANNEL_LAYER", raising=False)
    assert settings.channel_layer_kind() == DEFAULT_CHANNEL_LAYER
    monkeypatch.setenv("WHISTLE_CHANNEL_LAYER", "core")
    assert redis_channel_layers("redis://x")["default"]["BACKEND"].endswith(".RedisChannelLayer")
    monkeypatch.setenv("WHISTLE_CHANNEL_LAYER", "PubSub")
    backend = redis_channel_layers("redis://x")["default"]["BACKEND"]
    assert backend.endswith(".RedisPubSubChannelLayer")
    monkeypatch.setenv("WHISTLE_CHANNEL_LAYER", "rabbit")
    with pytest.raises(ImproperlyConfigured, match="core, pubsub"):
        settings.channel_layer_kind()


@pytest.mark.parametrize("rejoins", [True, False])
def test_a_board_open_longer_than_the_group_expiry_still_hears_its_pushes(
    demo_committed, redis_url, rejoins
):
    """The core layer drops a member that joined longer ago than its group expiry, open socket
    or not; a board socket joins its groups again while it is open, so a wall board open for
    days keeps hearing. Without the rejoin (the control) it goes deaf."""
    from concurrent.futures import ThreadPoolExecutor
    from unittest import mock

    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.test import override_settings

    from command.asgi import application
    from command.realtime import board_group
    from frontend.consumers import BoardConsumer
    from tests.frontend.test_board import ORIGIN, session_cookie

    expiry = 2
    layers = redis_channel_layers(redis_url, "core")
    layers["default"]["CONFIG"]["group_expiry"] = expiry
    cookie = session_cookie("duty")
    started = database_now()

    async def run() -> bool:
        from channels.layers import get_channel_layer

        board = WebsocketCommunicator(
            application,
            "/ws/board/qingshui/",
            [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)],
        )
        assert (await board.connect(timeout=5))[0]
        await board.receive_from(timeout=5)  # the full state
        # The premise is time passing: past the expiry, the first membership is stale.
        await asyncio.sleep(expiry + 1.5)
        await get_channel_layer().group_send(
            board_group("qingshui"), {"type": "incident.updated", "id": "after-expiry"}
        )
        try:
            while 'id="incident-panel"' not in await board.receive_from(timeout=3):
                pass
        except TimeoutError:
            return False  # the communicator has ended the consumer already
        await board.disconnect()
        return True

    rejoin = 0.4 if rejoins else 3600.0
    with (
        override_settings(CHANNEL_LAYERS=layers),
        mock.patch.object(BoardConsumer, "rejoin_seconds", rejoin),
        ThreadPoolExecutor(1) as executor,
    ):
        heard = executor.submit(async_to_sync(run)).result()
    end_connections_since(started)
    assert heard is rejoins
