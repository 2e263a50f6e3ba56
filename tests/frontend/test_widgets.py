"""The board's widgets are declared once, in frontend.widgets.BOARD_WIDGETS: a widget added there
is on the board page, in the state a socket gets on connect, redrawn by its events and drawn in
replay frames, with nothing else to edit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.utils.safestring import mark_safe

from command.asgi import application
from command.realtime import board_group
from frontend import widgets
from frontend.widgets import Widget
from tests.conftest import database_now, end_connections_since, signed_in
from tests.frontend.test_board import ORIGIN, session_cookie

PROBE = Widget(
    name="probe",
    slot="side",
    page=lambda township, language: mark_safe(
        f'<section id="probe">page of {township.code}</section>'
    ),
    state=lambda township, language: ['<section id="probe" hx-swap-oob="true">state</section>'],
    # No other widget redraws on it: a frame for this event is the probe's alone.
    redraw_on=frozenset({"summons.notified"}),
    item="summons_id",
    redraw=lambda township, language, items: [
        f'<section id="probe" hx-swap-oob="true">redrawn {sorted(items)}</section>'
    ],
    replay=lambda moment: {"probe": f'<section id="probe">then {moment.at_ms}</section>'},
)


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.setattr(widgets, "BOARD_WIDGETS", (*widgets.BOARD_WIDGETS, PROBE))


def test_the_registry_says_which_events_redraw_which_widgets():
    assert widgets.board_marks({"type": "alert.raised", "alert_id": 7}) == [
        ("alert_queue", 7),
        ("map", None),
        ("figures", None),
    ]
    assert widgets.board_marks({"type": "whistle.blown"}) == [
        ("incidents", None),
        ("figures", None),
    ]
    assert widgets.board_marks({"type": "summons.notified", "summons_id": 3}) == []
    assert len({w.name for w in widgets.BOARD_WIDGETS}) == len(widgets.BOARD_WIDGETS)


def test_a_widget_declares_what_it_needs():
    with pytest.raises(ValueError, match="unknown event types"):
        Widget(name="x", slot="side", page=str, state=list, redraw_on=frozenset({"alert.rased"}))
    with pytest.raises(ValueError, match="needs a slot, page and state"):
        Widget(name="x", slot="side", page=str)
    with pytest.raises(ValueError, match="not on the live board"):
        Widget(name="x", redraw_on=frozenset({"alert.raised"}))


@pytest.mark.django_db
def test_an_added_widget_is_on_the_page_and_in_replay_frames(demo, probe):
    from tests.incidents.test_replay import _moment, tell_story

    body = signed_in("duty").get("/board/qingshui/").content.decode()
    assert '<section id="probe">page of qingshui</section>' in body
    # Placed by its slot: with the panels on the right, after those declared before it.
    assert body.index('id="alert-queue"') < body.index('id="incident-panel"') < body.index("probe")
    assert body.index('id="board-figures"') < body.index('id="map-overlay"') < body.index("probe")

    incident = tell_story()["incident"]
    at = _moment(incident, "whistle.blown")
    frame = (
        signed_in("supervisor")
        .get(f"/supervise/qingshui/incidents/{incident.pk}/replay/frame", {"at": at.isoformat()})
        .content.decode()
    )
    assert '<section id="probe">then ' in frame
    assert 'id="alert-queue"' in frame and 'id="replay-recent"' in frame


def test_an_added_widget_is_in_the_connect_state_and_redrawn_by_its_events(demo_committed, probe):

    cookie = session_cookie("duty")
    started = database_now()

    async def run() -> tuple[str, str]:
        from channels.layers import get_channel_layer

        board = WebsocketCommunicator(
            application,
            "/ws/board/qingshui/",
            [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)],
        )
        assert (await board.connect(timeout=5))[0]
        state = ""
        while "probe" not in state:
            state += await board.receive_from(timeout=5)
        await get_channel_layer().group_send(
            board_group("qingshui"), {"type": "summons.notified", "id": "probe-1", "summons_id": 7}
        )
        while "redrawn" not in (pushed := await board.receive_from(timeout=5)):
            pass
        await board.disconnect()
        return state, pushed

    with ThreadPoolExecutor(1) as executor:
        state, pushed = executor.submit(async_to_sync(run)).result()
    # The render threads' connections outlive the loop async_to_sync made: end them so the
    # test database can be dropped.
    end_connections_since(started)
    # Sent after the widgets declared before it, the figures last of those.
    assert state.index('id="alert-queue"') < state.index('id="board-figures"')
    assert state.index('id="board-figures"') < state.index('<section id="probe"')
    assert pushed == '<section id="probe" hx-swap-oob="true">redrawn [7]</section>'


@pytest.mark.django_db
def test_the_board_state_takes_as_many_queries_for_thirty_alerts_as_for_three():
    """No query per row or per figure: a district township's board state is rendered for each
    of its boards on every reconnect, and a row's query per alert made it scale with the
    queue."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from alerts.models import Alert
    from command.org.models import Category, Device, Township
    from demo.district import seed_district

    township = Township.objects.get(code=seed_district(townships=1, sensors=4).townships[0])
    cameras = list(Device.objects.filter(township=township, kind="camera")[:1])
    category = Category.objects.get(code="flood")

    def raise_alerts(n: int) -> None:
        Alert.objects.bulk_create(
            Alert(
                township=township,
                category=category,
                severity="high",
                source="camera",
                title=f"积水 {n}-{i}",
                device=cameras[0],
                grid=cameras[0].grid,
                dedupe_key=f"q-{n}-{i}",
            )
            for i in range(n)
        )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            widgets.board_state(township=township, language="zh-hans")
        return len(captured.captured_queries)

    raise_alerts(3)
    queries()  # the map's grids and devices, read once and kept
    few = queries()
    raise_alerts(27)
    assert queries() == few
