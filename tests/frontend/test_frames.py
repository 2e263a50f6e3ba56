"""Frames are bounded: whatever the backlog, a socket's state goes out in frames of at most
WEBSOCKET_FRAME_MAX_BYTES, the lists carry their first page and "N more", further pages come
over HTTP, and pushes still arrive."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.utils import timezone

from command.asgi import application
from frontend.frames import Items, pack, size
from tests.conftest import database_now, end_connections_since, raise_alert, signed_in
from tests.frontend.test_board import ORIGIN, session_cookie

LIMIT = 256 * 1024


def test_pack_cuts_lists_between_rows_and_never_exceeds_the_limit(caplog):
    rows = [f'<li id="r{i}">{"水" * 30}</li>' for i in range(100)]  # 3 bytes a character
    frames = pack(
        ["<ol id='x' hx-swap-oob='true'></ol>", Items("x", rows), "<p id='n'>"], limit=1000
    )
    assert len(frames) > 5 and all(size(f) <= 1000 for f in frames)
    joined = "".join(frames)
    assert re.findall(r'id="r(\d+)"', joined) == [str(i) for i in range(100)]  # all, in order
    assert all(f.count('hx-swap-oob="beforeend:#x"') == f.count("</div>") for f in frames)
    assert joined.startswith("<ol id='x'") and joined.endswith("<p id='n'>")
    # A fragment that cannot be cut and is over the limit is left out, loudly.
    assert pack(["a" * 1001, "b"], limit=1000) == ["b"]
    assert "over the frame limit" in caplog.text


def bulk_summonses(department_code: str, count: int) -> list[int]:
    """``count`` open summons for a department, each on its own incident, in a few queries."""
    from command.org.models import Category, Department, Grid, Township
    from incidents.models import Incident, Summons, Whistle

    township = Township.objects.get(code="qingshui")
    category = Category.objects.get(code="parking")
    grid = Grid.objects.filter(township=township).first()
    now = timezone.now()
    incidents = Incident.objects.bulk_create(
        Incident(
            township=township,
            category=category,
            grid=grid,
            severity="major",
            status=Incident.Status.DISPATCHED,
            title=f"积压事件 {n}",
            description="滨河路东段双排停车，公交无法通过" * 5,
            opened_at=now - timedelta(hours=2),
        )
        for n in range(count)
    )
    whistles = Whistle.objects.bulk_create(
        Whistle(
            incident=incident,
            kind=Whistle.Kind.GENERAL,
            purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
            report_within=timedelta(hours=2),
            blown_at=now - timedelta(hours=1),
        )
        for incident in incidents
    )
    department = Department.objects.get(code=department_code)
    summonses = Summons.objects.bulk_create(
        Summons(
            whistle=whistle,
            department=department,
            check_in_deadline=now + timedelta(minutes=n % 600),
        )
        for n, whistle in enumerate(whistles)
    )
    return [s.pk for s in summonses]


def bulk_alerts(count: int) -> None:
    from alerts.models import Alert
    from command.org.models import Category, Device, Township

    township = Township.objects.get(code="qingshui")
    category = Category.objects.get(code="parking")
    devices = list(Device.objects.filter(township=township))
    now = timezone.now()
    Alert.objects.bulk_create(
        Alert(
            township=township,
            category=category,
            severity="major",
            source="camera",
            title="违停",
            device=devices[n % len(devices)],
            grid=devices[n % len(devices)].grid,
            dedupe_key=f"backlog-{n}",
            count=1 + n % 7,
            first_seen=now - timedelta(seconds=n + 60),
            last_seen=now - timedelta(seconds=n + 60),
            detail={"label": "car", "score": 0.87, "snapshot": f"/snapshots/{n}.jpg"},
        )
        for n in range(count)
    )


def converse(path: str, cookie: bytes, until: str, then=None, pushed: str | None = None):
    """Connect, read frames until one contains ``until`` (the end of the initial state), call
    ``then`` (in a thread: it writes to the database), and read until a frame contains
    ``pushed``. Returns (initial frames, pushed frames)."""

    async def run():
        from asgiref.sync import sync_to_async

        headers = [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)]
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        initial, later = [], []
        while not initial or until not in initial[-1]:
            initial.append(await communicator.receive_from(timeout=20))
        if then is not None:
            await sync_to_async(then, thread_sensitive=False)()
            while not later or pushed not in later[-1]:
                later.append(await communicator.receive_from(timeout=20))
        await communicator.disconnect()
        return initial, later

    started = database_now()
    with ThreadPoolExecutor(1) as executor:
        result = executor.submit(async_to_sync(run)).result()
    # The renders ran on worker threads of the loop async_to_sync made; the threads are gone,
    # their connections are not: end them so the test database can be dropped.
    end_connections_since(started)
    return result


def rows_in(html: str, kind: str) -> list[int]:
    return [int(i) for i in re.findall(rf'<li id="{kind}-(\d+)" class="{kind}', html)]


def cursors_in(html: str) -> list[str]:
    return re.findall(r'data-cursor="([^"]+)"', html)


def assert_bounded(frames: list[str]) -> None:
    assert settings.WEBSOCKET_FRAME_MAX_BYTES == LIMIT
    sizes = [size(frame) for frame in frames]
    assert max(sizes) <= LIMIT, sizes


@pytest.mark.django_db(transaction=True)
def test_a_console_with_5000_open_summonses_connects_pages_and_is_pushed_to(
    demo_committed, redis_url
):
    from command.org.models import Category, Department, Township, User
    from incidents.models import Whistle
    from incidents.services.incidents import incident_open
    from incidents.services.whistles import SummonedDepartment, whistle_blow

    ids = bulk_summonses("chengguan", 5000)
    page = settings.WHISTLE_PAGE_SIZE
    initial, _ = converse(
        "/ws/dept/chengguan/", session_cookie("chengguan"), until='id="summons-open-count"'
    )
    assert_bounded(initial)
    state = "".join(initial)
    shown = rows_in(state, "summons")
    # The most urgent first page, the count of all, and "N more" for the rest.
    assert shown == ids[:page] or len(shown) == page
    assert f'<span class="more-count">{5000 - page}</span>' in state
    assert ">5000</span>" in state
    # What a summons costs once its map and details are fetched on opening it, not pushed.
    assert size(state) / page < 3_000, size(state) / page

    # "show more" over HTTP: the next page after the last row shown, and what is left.
    client = signed_in("chengguan")
    response = client.get("/console/chengguan/summonses/", {"after": cursors_in(state)[-1]})
    assert response.status_code == 200
    second = response.content.decode()
    assert len(rows_in(second, "summons")) == page
    assert not set(rows_in(second, "summons")) & set(shown)
    assert f'<span class="more-count">{5000 - 2 * page}</span>' in second
    assert client.get("/console/chengguan/summonses/", {"after": "x.1"}).status_code == 400
    assert signed_in("police").get("/console/chengguan/summonses/").status_code == 403
    # A row's details (the map with its grid picked) come on opening it.
    details = client.get(f"/console/chengguan/summonses/{shown[0]}/").content.decode()
    assert "mini-map" in details and "picked" in details and "双排停车" in details
    assert signed_in("police").get(f"/console/chengguan/summonses/{shown[0]}/").status_code == 403

    # A whistle blown now still reaches the console, with the new count.
    def blow() -> None:
        duty = User.objects.get(username="duty")
        incident = incident_open(
            actor=duty,
            township=Township.objects.get(code="qingshui"),
            category=Category.objects.get(code="parking"),
            severity="critical",
            title="积压之后的违停",
        )
        whistle_blow(
            actor=duty,
            incident=incident,
            kind=Whistle.Kind.EMERGENCY,
            purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
            departments=[SummonedDepartment(Department.objects.get(code="chengguan"))],
        )

    _, pushed = converse(
        "/ws/dept/chengguan/",
        session_cookie("chengguan"),
        until='id="summons-open-count"',
        then=blow,
        pushed="积压之后的违停",
    )
    assert_bounded(pushed)
    assert "beforeend:#summons-inbox" in pushed[-1] and ">5001</span>" in pushed[-1]


@pytest.mark.django_db(transaction=True)
def test_a_board_with_2000_open_alerts_connects_pages_and_is_pushed_to(demo_committed, redis_url):
    from command.org.models import Township

    bulk_alerts(2000)
    page = settings.WHISTLE_PAGE_SIZE
    initial, _ = converse("/ws/board/qingshui/", session_cookie("duty"), until='id="board-figures"')
    assert_bounded(initial)
    state = "".join(initial)
    shown = rows_in(state, "alert")
    assert len(shown) == page
    assert f'<span class="more-count">{2000 - page}</span>' in state
    assert '<span id="open-count" class="count" hx-swap-oob="true">2000</span>' in state

    client = signed_in("duty")
    response = client.get("/board/qingshui/alerts/", {"after": cursors_in(state)[page - 1]})
    second = response.content.decode()
    assert len(rows_in(second, "alert")) == page
    assert not set(rows_in(second, "alert")) & set(shown)
    assert f'<span class="more-count">{2000 - 2 * page}</span>' in second
    assert signed_in("chengguan").get("/board/qingshui/alerts/").status_code == 403

    township = Township.objects.get(code="qingshui")
    _, pushed = converse(
        "/ws/board/qingshui/",
        session_cookie("duty"),
        until='id="board-figures"',
        then=lambda: raise_alert(township.pk, "after-the-backlog", title="积压之后"),
        pushed="afterbegin:#alert-queue",
    )
    assert_bounded(pushed)
    assert ">2001</span>" in "".join(pushed)


@pytest.mark.django_db(transaction=True)
def test_a_backlog_larger_than_a_frame_goes_out_in_several(demo_committed, settings):
    """With a frame limit smaller than a page, the same state arrives whole, cut between rows."""
    settings.WEBSOCKET_FRAME_MAX_BYTES = LIMIT // 16
    bulk_alerts(300)
    initial, _ = converse("/ws/board/qingshui/", session_cookie("duty"), until='id="board-figures"')
    assert len(initial) > 2
    assert max(size(frame) for frame in initial) <= LIMIT // 16
    assert len(rows_in("".join(initial), "alert")) == settings.WHISTLE_PAGE_SIZE
