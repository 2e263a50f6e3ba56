from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from command.asgi import application
from command.org.models import User
from tests.conftest import DEMO_PASSWORDS, database_now, end_connections_since

ORIGIN = (b"origin", b"http://localhost")


def session_cookie(username: str) -> bytes:
    client = Client()
    assert client.login(username=username, password=DEMO_PASSWORDS[username])
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def connect(path: str, cookie: bytes | None, origin=ORIGIN):
    async def run():
        headers = [origin, (b"host", b"localhost")]
        if cookie:
            headers.append((b"cookie", cookie))
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=5)
        first = await communicator.receive_from(timeout=5) if connected else None
        await communicator.disconnect()
        return connected, code, first

    # Playwright's sync API may hold an event loop in this thread (browser tests in the same
    # session), so the socket conversation runs on a thread of its own.
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(async_to_sync(run)).result()


@pytest.mark.django_db
def test_pages_need_login(client, demo):
    for path in ("/", "/board/qingshui/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/login/").status_code == 200


@pytest.mark.django_db
def test_duty_officer_lands_on_the_board(client, demo):
    client.login(username="duty", password=DEMO_PASSWORDS["duty"])
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/board/qingshui/"
    body = response.content.decode()
    assert 'ws-connect="/ws/board/qingshui/"' in body and 'id="alert-queue"' in body


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["chengguan", "grid01"])
def test_other_roles_cannot_open_the_duty_board(client, demo, username):
    client.login(username=username, password=DEMO_PASSWORDS[username])
    assert client.get("/board/qingshui/").status_code == 403
    landed = client.get("/", follow=True).redirect_chain
    assert all("/board/" not in url for url, _ in landed)


@pytest.mark.django_db
def test_duty_officer_cannot_open_another_townships_board(client, demo):
    from command.org.models import Township

    Township.objects.create(code="elsewhere", name="别处镇")
    client.login(username="duty", password=DEMO_PASSWORDS["duty"])
    assert client.get("/board/elsewhere/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_board_socket_sends_full_state_to_the_duty_officer(demo_committed):
    connected, _, first = connect("/ws/board/qingshui/", session_cookie("duty"))
    assert connected
    assert 'id="alert-queue"' in first and 'hx-swap-oob="true"' in first


@pytest.mark.django_db(transaction=True)
def test_board_socket_refuses_department_member_anonymous_and_foreign_origin(demo_committed):
    assert User.objects.get(username="chengguan").role == User.Role.DEPARTMENT_MEMBER
    assert connect("/ws/board/qingshui/", session_cookie("chengguan"))[0] is False
    assert connect("/ws/board/qingshui/", None)[0] is False
    evil = (b"origin", b"http://evil.example")
    assert connect("/ws/board/qingshui/", session_cookie("duty"), origin=evil)[0] is False


@pytest.mark.django_db
def test_department_member_lands_on_its_console_and_only_its_own(client, demo):
    client.login(username="chengguan", password=DEMO_PASSWORDS["chengguan"])
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/console/chengguan/"
    assert 'ws-connect="/ws/dept/chengguan/"' in response.content.decode()
    assert client.get("/console/police/").status_code == 403
    client.login(username="duty", password=DEMO_PASSWORDS["duty"])
    assert client.get("/console/chengguan/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_department_socket_only_for_its_members(demo_committed):
    connected, _, first = connect("/ws/dept/chengguan/", session_cookie("chengguan"))
    assert connected and 'id="summons-inbox"' in first
    assert connect("/ws/dept/chengguan/", session_cookie("police"))[0] is False
    assert connect("/ws/dept/chengguan/", session_cookie("duty"))[0] is False
    assert connect("/ws/dept/chengguan/", None)[0] is False


def test_sockets_of_one_board_render_each_event_once_and_share_the_frame(demo_committed):
    """A thousand boards of a township receive the same event; one renders, all send."""
    from unittest import mock

    from command.realtime import board_group
    from frontend import consumers

    cookie = session_cookie("duty")

    started = database_now()

    async def run():
        from channels.layers import get_channel_layer

        headers = [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)]
        boards = [
            WebsocketCommunicator(application, "/ws/board/qingshui/", headers) for _ in range(5)
        ]
        for board in boards:
            assert (await board.connect(timeout=5))[0]
            await board.receive_from(timeout=5)  # the full state
        original = consumers.BoardConsumer.render_batch
        with mock.patch.object(
            consumers.BoardConsumer, "render_batch", autospec=True, side_effect=original
        ) as renders:
            await get_channel_layer().group_send(
                board_group("qingshui"), {"type": "incident.updated", "id": "e1"}
            )
            frames = [await incidents_frame(board) for board in boards]
        for board in boards:
            await board.disconnect()
        # Only this event's renders: a demo or benchmark on the same Redis may be talking to
        # the same township's boards.
        ours = [c for c in renders.call_args_list if "incidents" in c.args[1]]
        return len(ours), frames

    async def incidents_frame(board) -> str:
        while 'id="incident-panel"' not in (frame := await board.receive_from(timeout=5)):
            pass
        return frame

    with ThreadPoolExecutor(1) as executor:
        calls, frames = executor.submit(async_to_sync(run)).result()
    end_connections_since(started)
    assert calls == 1
    assert len(set(frames)) == 1


def test_sockets_of_one_board_are_one_member_of_its_group(demo_committed):
    """The boards of one process are one member of their group on the channel layer: an event
    is received once and reaches every socket; the member leaves with the last socket."""
    from unittest import mock

    from command.realtime import board_group

    cookie = session_cookie("duty")
    group = board_group("qingshui")

    started = database_now()

    async def run():
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        added: list[str] = []
        discarded: list[str] = []
        real_add, real_discard = layer.group_add, layer.group_discard

        async def add(name, channel):
            if name == group:
                added.append(channel)
            await real_add(name, channel)

        async def discard(name, channel):
            if name == group:
                discarded.append(channel)
            await real_discard(name, channel)

        headers = [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)]
        with (
            mock.patch.object(layer, "group_add", side_effect=add),
            mock.patch.object(layer, "group_discard", side_effect=discard),
        ):
            boards = [
                WebsocketCommunicator(application, "/ws/board/qingshui/", headers) for _ in range(3)
            ]
            for board in boards:
                assert (await board.connect(timeout=5))[0]
                await board.receive_from(timeout=5)  # the full state
            await layer.group_send(group, {"type": "incident.updated", "id": "hub-1"})
            for board in boards:
                while 'id="incident-panel"' not in await board.receive_from(timeout=5):
                    pass
            for board in boards[:-1]:
                await board.disconnect()
            while_open = list(discarded)
            await boards[-1].disconnect()
        return added, while_open, discarded

    with ThreadPoolExecutor(1) as executor:
        added, while_open, discarded = executor.submit(async_to_sync(run)).result()
    end_connections_since(started)
    assert len(added) == 1
    assert while_open == []
    assert discarded == added


def test_a_new_alerts_row_goes_out_ahead_of_the_map_and_the_figures(demo_committed):
    """What the duty officer acts on is not held up by the widgets around it: the row comes in
    a frame of its own, the map and the figures in the next."""
    import json
    import time
    import uuid

    from command import realtime
    from streams import ingest

    cookie = session_cookie("duty")

    started = database_now()
    event = {"id": uuid.uuid4().hex[:16], "ts": int(time.time() * 1000), "label": "smoke"}
    with realtime.capture_broadcasts() as sent:
        ingest.store_batch_isolating(
            [
                ingest.InboundMessage(
                    "whistle/qingshui/camera/cam-16/event", json.dumps(event).encode()
                )
            ]
        )
    group, raised = next((g, e) for g, e in sent if e["type"] == "alert.raised")

    async def run():
        from channels.layers import get_channel_layer

        headers = [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)]
        board = WebsocketCommunicator(application, "/ws/board/qingshui/", headers)
        assert (await board.connect(timeout=5))[0]
        await board.receive_from(timeout=5)  # the full state
        await get_channel_layer().group_send(group, raised)
        frames = [await board.receive_from(timeout=5)]
        while 'id="board-figures"' not in frames[-1]:
            frames.append(await board.receive_from(timeout=5))
        await board.disconnect()
        return frames

    with ThreadPoolExecutor(1) as executor:
        frames = executor.submit(async_to_sync(run)).result()
    end_connections_since(started)
    row = next(frame for frame in frames if f'id="alert-{raised["alert_id"]}"' in frame)
    assert 'id="board-figures"' not in row and 'id="map-overlay"' not in row
    assert frames.index(row) < len(frames) - 1


def test_under_a_burst_rows_go_at_once_and_the_map_and_figures_wait_for_their_tick(
    demo_committed, monkeypatch
):
    """A burst of camera events in one township: each new alert's row goes out at once, while
    the map and the figures around them are redrawn at most once per ``rest_interval``."""
    import json
    import math
    import time
    import uuid

    from command import realtime
    from frontend.consumers import BoardConsumer
    from streams import ingest

    interval = 3600.0
    monkeypatch.setattr(BoardConsumer, "rest_interval", interval)
    ingest.directory.forget()  # the demo was seeded afresh: earlier tests' device ids are gone
    cookie = session_cookie("duty")
    started = database_now()
    raised = []
    for n in range(4):
        event = {"id": uuid.uuid4().hex[:16], "ts": int(time.time() * 1000), "label": "smoke"}
        with realtime.capture_broadcasts() as sent:
            ingest.store_batch_isolating(
                [
                    ingest.InboundMessage(
                        f"whistle/qingshui/camera/cam-{10 + n}/event", json.dumps(event).encode()
                    )
                ]
            )
        raised += [(g, e) for g, e in sent if e["type"] == "alert.raised"]
    assert len(raised) == 4

    async def run():
        import asyncio

        from channels.layers import get_channel_layer

        headers = [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)]
        board = WebsocketCommunicator(application, "/ws/board/qingshui/", headers)
        assert (await board.connect(timeout=5))[0]
        await board.receive_from(timeout=5)  # the full state
        loop = asyncio.get_running_loop()
        began = loop.time()
        frames = []
        for group, event in raised:
            await get_channel_layer().group_send(group, event)
            while f'id="alert-{event["alert_id"]}"' not in "".join(frames):
                frames.append(await board.receive_from(timeout=5))
        # Nothing else is waiting but the tick's redraw (an hour away).
        assert await board.receive_nothing(timeout=0.5)
        crossed = math.floor(began / interval) != math.floor(loop.time() / interval)
        await board.disconnect()
        return frames, crossed

    with ThreadPoolExecutor(1) as executor:
        frames, crossed = executor.submit(async_to_sync(run)).result()
    end_connections_since(started)
    figures = [frame for frame in frames if 'id="board-figures"' in frame]
    maps = [frame for frame in frames if 'id="map-overlay"' in frame]
    # The first event found the socket idle: its row, then the map and figures, at once. The
    # three after it sent their rows alone (unless the test straddled a tick of the clock).
    assert (len(figures), len(maps)) == ((2, 2) if crossed else (1, 1))
    assert frames.index(figures[0]) == 1 and frames.index(maps[0]) == 1
