"""The daily review (一日一研判) on a small known history: yesterday's intake by channel,
category and grid, repeats at the same place, and what is open and overdue now."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.models import Alert
from command import clock
from command.org.models import Category, Department, Grid, Township, User
from incidents.models import Incident, Summons, Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from intake.reports import report_file
from supervision import review as daily
from tests.conftest import raise_alert, signed_in

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 8, 30, tzinfo=SHANGHAI)  # the morning meeting
YESTERDAY = datetime(2026, 11, 20, 0, 0, tzinfo=SHANGHAI)
G7, G12 = "110112-QS-007", "110112-QS-012"


def _alert(key, at, *, category="parking", grid=G7, source="camera", title="违停"):
    qingshui = Township.objects.get(code="qingshui")
    with clock.frozen(at=at):
        return raise_alert(qingshui.pk, key, category=category, source=source, title=title,
                           time=at, grid_id=Grid.objects.get(code=grid).pk)  # fmt: skip


def _open(title, at, *, category="parking", grid=G7, alerts=()):
    with clock.frozen(at=at):
        incident = incident_open(
            actor=User.objects.get(username="duty"),
            township=Township.objects.get(code="qingshui"),
            category=Category.objects.get(code=category),
            severity="major",
            title=title,
            grid=Grid.objects.get(code=grid),
            alerts=list(Alert.objects.filter(pk__in=alerts)),
        )
    Incident.objects.filter(pk=incident.pk).update(opened_at=at)
    return Incident.objects.get(pk=incident.pk)


def _summon(incident, code, **state):
    whistle = whistle_blow(
        actor=User.objects.get(username="duty"),
        incident=incident,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(Department.objects.get(code=code), "needed")],
    )
    summons = whistle.summonses.get()
    Summons.objects.filter(pk=summons.pk).update(**state)
    return summons


@pytest.fixture
def history(demo):
    h = timedelta(hours=1)
    made: dict = {}
    # Yesterday: two cameras on parking in grid 7 (one opened as an incident), a smoke sensor
    # in grid 12, a grid officer's report of garbage in grid 7, a dispute opened by hand.
    cam1 = _alert("cam-1", YESTERDAY + 9 * h)
    _alert("cam-2", YESTERDAY + 14 * h)
    _alert("smoke-1", YESTERDAY + 20 * h, category="fire", grid=G12, source="sensor",
           title="烟感")  # fmt: skip
    with clock.frozen(at=YESTERDAY + 11 * h):
        report_file(reporter=User.objects.get(username="grid01"),
                    category=Category.objects.get(code="garbage"), description="垃圾堆积",
                    grid=Grid.objects.get(code=G7))  # fmt: skip
    Alert.objects.filter(source="report").update(first_seen=YESTERDAY + 11 * h)
    made["from_camera"] = _open("路口违停", YESTERDAY + 9.5 * h, alerts=[cam1])
    made["by_hand"] = _open("邻里纠纷", YESTERDAY + 16 * h, category="dispute", grid=G12)
    # Not yesterday: the day before (intake no; repeats yes) and 40 days ago (neither).
    _alert("cam-old", YESTERDAY - 5 * h)
    _alert("cam-older", YESTERDAY - timedelta(days=40))
    merged = _alert("cam-dup", YESTERDAY - 2 * 24 * h)
    Alert.objects.filter(pk=merged).update(status=Alert.Status.MERGED)
    # Garbage in grid 7: two matters in 30 days, not a repeat.
    _alert("garbage-7", YESTERDAY - 3 * 24 * h, category="garbage")
    # Open now: a fire five days old with an overdue summons; yesterday's parking incident
    # with a summons late to finish; a closed incident whose summons was overdue is history.
    made["stale"] = _open("秸秆焚烧", NOW - timedelta(days=5), category="fire", grid=G12)
    made["late"] = _summon(made["stale"], "chengguan", overdue=True)
    made["finishing"] = _summon(made["from_camera"], "traffic", finish_overdue=True,
                                status=Summons.Status.CHECKED_IN)  # fmt: skip
    closed = _open("已办结", NOW - timedelta(days=6), category="garbage", grid=G12)
    _summon(closed, "chengguan", overdue=True, status=Summons.Status.ACCEPTED)
    Incident.objects.filter(pk=closed.pk).update(status=Incident.Status.CLOSED)
    return made


def test_yesterday_figures(history):
    qingshui = Township.objects.get(code="qingshui")
    with clock.frozen(at=NOW):
        day = daily.review_day(qingshui, None)
        review = daily.daily_review(township=qingshui, day=day)
    assert str(day) == "2026-11-20"
    assert review.alerts == 4 and review.incidents == 2
    channels = {c.key: (c.alerts, c.incidents) for c in review.by_channel}
    report = [k for k in channels if k == "report" or k.startswith("report:")]
    assert len(report) == 1 and channels[report[0]] == (1, 0)
    assert channels["camera"] == (2, 0) and channels["sensor"] == (1, 0)
    assert channels[daily.BY_HAND] == (0, 1)
    categories = {c.key: (c.alerts, c.incidents) for c in review.by_category}
    code = {c.pk: c.code for c in Category.objects.all()}
    assert {code[int(k)]: v for k, v in categories.items()} == {
        "parking": (2, 1), "fire": (1, 0), "garbage": (1, 0), "dispute": (0, 1),
    }  # fmt: skip
    grids = {Grid.objects.get(pk=int(c.key)).code: (c.alerts, c.incidents) for c in review.by_grid}
    assert grids == {G7: (3, 1), G12: (1, 1)}


def test_repeats_open_and_overdue(history):
    qingshui = Township.objects.get(code="qingshui")
    with clock.frozen(at=NOW):
        review = daily.daily_review(township=qingshui, day=YESTERDAY.date())
    # Parking in grid 7 in the 30 days: cam-2, cam-old and the incident cam-1 became: 3 (the
    # merged duplicate and the one 40 days ago do not count).
    assert [(r.category.code, r.grid.code, r.matters) for r in review.repeats] == [
        ("parking", G7, 3)
    ]
    assert review.repeats[0].incidents == [history["from_camera"]]
    overdue = {(o.summons.pk, o.check_in, o.finishing) for o in review.overdue}
    assert overdue == {(history["late"].pk, True, False), (history["finishing"].pk, False, True)}
    open_cases = [(c.incident.title, c.stale, c.overdue) for c in review.open_cases]
    assert open_cases == [("秸秆焚烧", True, 1), ("路口违停", False, 1), ("邻里纠纷", False, 0)]


def test_the_page_links_each_case(history):
    client = signed_in("duty")
    with clock.frozen(at=NOW):
        page = client.get("/supervise/qingshui/review/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="review-alerts">4<' in text and 'id="review-incidents">2<' in text
    for key in ("from_camera", "by_hand", "stale"):
        assert f'href="/supervise/qingshui/incidents/{history[key].pk}/"' in text
    assert re.search(r'data-grid="110112-QS-007" data-category="parking"', text)
    assert 'data-stale="1"' in text
    # Another day: the day before yesterday had one alert.
    with clock.frozen(at=NOW):
        before = client.get("/supervise/qingshui/review/?day=2026-11-19")
    assert 'id="review-alerts">1<' in before.content.decode()


@pytest.mark.parametrize("day", ["2026-11-32", "tomorrow", "2026-11-22"])
def test_a_bad_or_future_day_is_a_400(history, day):
    with clock.frozen(at=NOW):
        page = signed_in("duty").get(f"/supervise/qingshui/review/?day={day}")
    assert page.status_code == 400
    assert 'class="form-errors"' in page.content.decode()


def test_only_those_who_supervise_the_township(history):
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan")
    User.objects.create(username="duty_b", role=User.Role.DUTY_OFFICER, township=beishan)
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="duty_b"))
    assert client.get("/supervise/qingshui/review/").status_code == 403
    assert signed_in("chengguan").get("/supervise/qingshui/review/").status_code == 403


def test_callbacks_due_list_the_closed_cases_with_their_callers(demo):
    from command.org.models import Category, Grid, User
    from incidents.services.incidents import incident_call_back, incident_close, incident_resolve
    from intake.reports import intake_file
    from supervision.review import callbacks_due

    township = Township.objects.get(code="qingshui")
    duty = User.objects.get(username="duty")
    filed = intake_file(
        actor=duty,
        channel="phone",
        township=township,
        category=Category.objects.get(code="garbage"),
        description="来电：路口垃圾桶满溢",
        grid=Grid.objects.filter(township=township).first(),
        caller_name="王五",
        caller_phone="13700002222",
        open_incident=True,
    )
    incident = filed.incident
    incident_resolve(actor=duty, incident=incident)
    incident_close(actor=duty, incident=incident, feedback="已清运", settled_level="township")

    (due,) = callbacks_due(township, whole_phone=False)
    assert due.incident == incident
    assert [(c.name, c.phone) for c in due.callers] == [("王五", "137****2222")]
    (whole,) = callbacks_due(township, whole_phone=True)
    assert whole.callers[0].phone == "13700002222"
    incident_call_back(actor=duty, incident=incident, satisfaction="satisfied")
    assert callbacks_due(township, whole_phone=True) == []
