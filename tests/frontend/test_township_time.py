"""Every "today", deadline and row time shown is the township's (command.org.localtime), whatever
the server's zone and ``settings.TIME_ZONE``: a township in New York, a server in Shanghai, the
clock pinned around New York's midnight."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from command import clock
from command.org import localtime
from command.org.models import Category, Department, Township
from frontend import rendering
from incidents.models import Incident, Summons, Whistle
from incidents.selectors import board_figures
from tests.conftest import raise_alert, signed_in

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
URUMQI = ZoneInfo("Asia/Urumqi")


@pytest.fixture
def township(demo) -> Township:
    assert settings.TIME_ZONE not in ("America/New_York", "Asia/Urumqi")
    found = Township.objects.get(code="qingshui")
    found.time_zone = "America/New_York"
    found.save(update_fields=["time_zone"])
    return found


@pytest.fixture
def midnight() -> datetime:
    """A New York midnight two days after the demo's rows: before it nothing of theirs."""
    day = (timezone.now().astimezone(NEW_YORK) + timedelta(days=2)).date()
    return datetime.combine(day, time.min, tzinfo=NEW_YORK)


def _incident(township: Township, opened_at: datetime, title: str) -> Incident:
    return Incident.objects.create(
        township=township,
        category=Category.objects.get(code="parking"),
        severity="major",
        status=Incident.Status.DISPATCHED,
        title=title,
        opened_at=opened_at,
    )


def _summons(incident: Incident, deadline: datetime) -> Summons:
    whistle = Whistle.objects.create(
        incident=incident,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        report_within=timedelta(hours=2),
        blown_at=incident.opened_at,
    )
    return Summons.objects.create(
        whistle=whistle,
        department=Department.objects.get(code="chengguan"),
        check_in_deadline=deadline,
    )


def test_the_helpers_read_the_pinned_clock_on_the_townships_wall(township, midnight):
    late = midnight + timedelta(hours=23, minutes=30)  # 12:30 the next day in Shanghai
    with clock.frozen(at=late.astimezone(ZoneInfo("UTC"))):
        assert localtime.township_now(township) == late
        assert localtime.township_today(township) == midnight.date()
        assert localtime.day_start(township) == midnight
        with localtime.shown_in(township):
            assert timezone.get_current_timezone() == NEW_YORK
    # A zone mistyped by hand (by SQL: the field is validated) does not stop the pages: the
    # default zone is used.
    Township.objects.filter(pk=township.pk).update(time_zone="Asia/Shang hai")
    township.refresh_from_db()
    assert township.zone == ZoneInfo("Asia/Shanghai")
    assert signed_in("duty").get("/board/qingshui/").status_code == 200


def test_today_on_the_board_is_the_townships_day(township, midnight):
    """New York's today counts from its midnight: not Shanghai's (11:00 the day before in New
    York) nor the server's."""
    yesterday = midnight - timedelta(minutes=10)
    just_after = midnight + timedelta(minutes=10)
    evening = midnight + timedelta(hours=23, minutes=20)  # after Shanghai's midnight
    for n, at in enumerate((yesterday, just_after, evening)):
        raise_alert(township.pk, f"tz-{n}", time=at)
        _incident(township, at, f"事件 {n}")
    with clock.frozen(at=midnight + timedelta(hours=23, minutes=30)):
        figures = board_figures(township=township)
        html = rendering.figures_html(township=township, oob=False, language="en")
    assert (figures["alerts"], figures["incidents"]) == (2, 2)
    assert re.search(r"Alerts today</dt><dd>2<", html)
    # Five minutes into the next day, today has had nothing yet.
    with clock.frozen(at=midnight + timedelta(days=1, minutes=5)):
        figures = board_figures(township=township)
    assert (figures["alerts"], figures["incidents"]) == (0, 0)


def test_rows_show_the_townships_time(township, midnight):
    """The queue, the incident panel's deadlines and a department console's rows each show
    the time on the wall of the township the row is about, not Shanghai's."""
    evening = midnight - timedelta(minutes=40)  # 23:20 in New York, 12:20 in Shanghai
    raise_alert(township.pk, "tz-row", time=evening)
    queue = rendering.alert_queue_html(township=township, oob=False, language="en")
    assert ">23:20:00</time>" in queue
    incident = _incident(township, evening, "纽约的事件")
    _summons(incident, midnight + timedelta(minutes=30))
    panel = rendering.incidents_html(township=township, oob=False, language="en")
    assert ">00:30</span>" in panel
    # The same department also serves a township in Urumqi: one console, each row its clock.
    west = Township.objects.create(code="xibian", name="西边镇", time_zone="Asia/Urumqi")
    _summons(_incident(west, evening, "乌鲁木齐的事件"), midnight + timedelta(minutes=30))
    console = signed_in("chengguan").get("/console/chengguan/").content.decode()
    urumqi = (midnight + timedelta(minutes=30)).astimezone(URUMQI).strftime("%H:%M")
    assert urumqi == "11:30"
    deadlines = re.findall(r'<span class="deadline">[^<]*<time [^>]*>([\d:]+)</time>', console)
    assert sorted(deadlines) == ["00:30", "11:30"]


def test_supervision_period_ends_today_in_the_township(township, midnight):
    late = midnight + timedelta(hours=23, minutes=30)  # already tomorrow in Shanghai
    with clock.frozen(at=late):
        body = signed_in("supervisor").get("/supervise/qingshui/").content.decode()
    assert re.search(rf'name="end" value="{midnight.date().isoformat()}"', body)
