"""Sockets follow rights after connect: a user deactivated, demoted or logged out stops
receiving pushes, and the socket closes (4403). Real Redis channel layer, real ASGI stack."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from command.asgi import application
from command.org.models import Township, User
from frontend.consumers import FORBIDDEN, BoardConsumer
from tests.conftest import DEMO_PASSWORDS, raise_alert

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


def signed_in(username):
    client = Client()
    assert client.login(username=username, password=DEMO_PASSWORDS[username])
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


def converse(cookie, change, *, path="/ws/board/qingshui/"):
    """Connect, read the initial state, run ``change`` (in a thread: ORM), raise an alert, and
    return every message the socket got afterwards until it closed or went quiet."""

    async def run():
        communicator = WebsocketCommunicator(
            application, path, headers=[*ORIGIN, (b"cookie", cookie)]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.receive_from(timeout=5)  # the initial state
        await sync_to_async(change)()
        township = await sync_to_async(Township.objects.get)(code="qingshui")
        await sync_to_async(raise_alert)(township.pk, "after-change", title="AFTER-CHANGE")
        got = []
        while True:
            if await communicator.receive_nothing(timeout=3):
                break  # quiet: nothing more is coming
            message = await communicator.receive_output(timeout=1)
            got.append(message)
            if message["type"] == "websocket.close":
                break
        await communicator.disconnect()
        return got

    with ThreadPoolExecutor(1) as executor:
        return executor.submit(async_to_sync(run)).result()


def pushed_alert(messages):
    return any("AFTER-CHANGE" in m.get("text", "") for m in messages)


def closed(messages):
    return any(m == {"type": "websocket.close", "code": FORBIDDEN} for m in messages)


@pytest.fixture
def live(demo_committed, redis_url):
    return demo_committed


def test_a_socket_keeps_pushing_while_rights_hold(live):
    _, cookie = signed_in("duty")
    messages = converse(cookie, lambda: User.objects.get(username="duty").save())
    assert pushed_alert(messages) and not closed(messages)


def deactivate():
    user = User.objects.get(username="duty")
    user.is_active = False
    user.save(update_fields=["is_active"])


def demote():
    user = User.objects.get(username="duty")
    user.role = User.Role.GRID_OFFICER
    user.save(update_fields=["role"])


@pytest.mark.parametrize("change", [deactivate, demote], ids=["deactivated", "demoted"])
def test_a_deactivated_or_demoted_users_socket_closes_and_gets_no_push(live, change):
    _, cookie = signed_in("duty")
    messages = converse(cookie, change)
    assert closed(messages) and not pushed_alert(messages)


def test_logging_out_closes_that_sessions_socket(live):
    client, cookie = signed_in("duty")
    messages = converse(cookie, lambda: client.post("/logout/"))
    assert closed(messages) and not pushed_alert(messages)


def test_a_change_no_signal_saw_is_caught_before_the_next_push(live, monkeypatch):
    # A bulk update sends no post_save: the re-check before each frame (TTL) catches it.
    monkeypatch.setattr(BoardConsumer, "recheck_seconds", 0.0)
    _, cookie = signed_in("duty")
    messages = converse(
        cookie, lambda: User.objects.filter(username="duty").update(is_active=False)
    )
    assert closed(messages) and not pushed_alert(messages)
