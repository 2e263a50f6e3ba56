"""The case library (案件库): each filter finds its incident and no other, the scope holds in the
page, the CSV and the API alike, pages follow each other without gaps, bad filters are a 400."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from command.org.models import Category, Department, Grid, Township, User
from incidents.models import Incident, Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from supervision import cases as case_library
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _incident(township, grid, category, title, *, opened, description="", **fields):
    duty = User.objects.filter(township=township, role=User.Role.DUTY_OFFICER).first()
    incident = incident_open(
        actor=duty, township=township, category=Category.objects.get(code=category),
        severity="major", title=title, description=description, grid=grid,
    )  # fmt: skip
    Incident.objects.filter(pk=incident.pk).update(opened_at=opened, **fields)
    return Incident.objects.get(pk=incident.pk)


@pytest.fixture
def library(demo):
    """Six qingshui incidents, each the only one with its mark, and one of another township."""
    qingshui = Township.objects.get(code="qingshui")
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan")
    User.objects.create(username="duty_b", role=User.Role.DUTY_OFFICER, township=beishan)
    g7, g12 = Grid.objects.get(code="110112-QS-007"), Grid.objects.get(code="110112-QS-012")
    gb = Grid.objects.create(township=beishan, code="110112-BS-001", kind="comprehensive",
                             name="北")  # fmt: skip
    day = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
    made = {
        "parked": _incident(qingshui, g7, "parking", "学校门口违停车辆", opened=day,
                            description="早高峰堵塞通行"),
        "garbage": _incident(qingshui, g12, "garbage", "河道边堆放建筑垃圾",
                             opened=day - timedelta(days=3), status="closed",
                             settled_level="grid", satisfaction="satisfied",
                             feedback="已清运完毕，现场恢复"),
        "fire": _incident(qingshui, g12, "fire", "秸秆焚烧冒烟", opened=day - timedelta(days=10),
                          status="closed", settled_level="county", satisfaction="unsatisfied",
                          reopened_count=1),
        "dispute": _incident(qingshui, g7, "dispute", "邻里宅基地纠纷",
                             opened=day - timedelta(days=20), status="resolved",
                             settled_level=""),
        "basic": _incident(qingshui, g7, "parking", "Parking by the market 100%_done",
                           opened=day - timedelta(days=30), status="closed",
                           settled_level="township", satisfaction="basic"),
        "beishan": _incident(beishan, gb, "parking", "北山违停 INC-BS", opened=day,
                             description="学校门口"),
    }  # fmt: skip
    whistle_blow(
        actor=User.objects.get(username="duty"),
        incident=made["parked"],
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(Department.objects.get(code="traffic"))],
    )
    return made


def _ids(response) -> list[int]:
    return [int(n) for n in re.findall(rb'data-incident="(\d+)"', response.content)]


def _api_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def _csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


QINGSHUI = ("parked", "garbage", "fire", "dispute", "basic")
FILTERS = [
    ({"q": "垃圾"}, {"garbage"}),  # two characters: no trigram, still found
    ({"q": "建筑垃圾"}, {"garbage"}),
    ({"q": "早高峰"}, {"parked"}),  # in the description
    ({"q": "清运完毕"}, {"garbage"}),  # in the feedback
    ({"q": "100%_"}, {"basic"}),  # LIKE's wildcards are searched as they are
    ({"q": "PARKING BY"}, {"basic"}),  # case does not matter
    ({"category": "fire"}, {"fire"}),
    ({"grid": "110112-QS-012"}, {"garbage", "fire"}),
    ({"township": "qingshui"}, set(QINGSHUI)),
    ({"department": "traffic"}, {"parked"}),
    ({"status": "dispatched"}, {"parked"}),
    ({"status": "active"}, {"parked"}),
    ({"status": "resolved"}, {"dispute"}),
    ({"start": "2026-11-20", "end": "2026-11-20"}, {"parked"}),
    ({"start": "2026-10-31", "end": "2026-11-17"}, {"garbage", "fire", "dispute"}),
    ({"level": "county"}, {"fire"}),
    ({"level": "none"}, {"parked", "dispute"}),
    ({"satisfaction": "basic"}, {"basic"}),
    ({"satisfaction": "unsatisfied"}, {"fire"}),
    ({"satisfaction": "none"}, {"parked", "dispute"}),
    ({"reopened": "yes"}, {"fire"}),
    ({"reopened": "no"}, {"parked", "garbage", "dispute", "basic"}),
    ({"category": "parking", "grid": "110112-QS-007", "status": "closed"}, {"basic"}),
]


@pytest.mark.parametrize("params, expected", FILTERS, ids=lambda v: str(v))
def test_each_filter_finds_its_incidents_in_page_csv_and_api(library, params, expected):
    want = {library[k].pk for k in expected}
    client = signed_in("duty")
    page = client.get("/cases/", params)
    assert page.status_code == 200
    assert set(_ids(page)) == want
    rows = _csv_rows(client.get("/cases/", {**params, "format": "csv"}))
    assert {int(r["id"]) for r in rows} == want
    assert set(_api_ids(client.get("/api/v1/incidents", params))) == want


def test_other_townships_never_appear(library):
    client = signed_in("duty")
    for params in ({}, {"q": "学校门口"}, {"category": "parking"}):
        page = client.get("/cases/", params)
        assert library["beishan"].pk not in _ids(page)
        assert "INC-BS" not in page.content.decode()
        csv_text = b"".join(client.get("/cases/", {**params, "format": "csv"}).streaming_content)
        assert "INC-BS" not in csv_text.decode()
        assert library["beishan"].pk not in _api_ids(client.get("/api/v1/incidents", params))
    # Another township's code or grid is not a choice: a clear 400, not an empty list.
    refused = client.get("/cases/", {"township": "beishan"})
    assert refused.status_code == 400
    api = client.get("/api/v1/incidents", {"grid": "110112-BS-001"})
    assert api.status_code == 400 and api.json()["code"] == "bad_filter"


def test_a_department_member_sees_what_it_was_summoned_to(library):
    member = User.objects.get(username="chengguan")
    whistle_blow(
        actor=User.objects.get(username="duty"),
        incident=library["parked"],
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(member.department, "on site")],
    )
    client = signed_in("chengguan")
    page = client.get("/cases/")
    assert _ids(page) == [library["parked"].pk]
    # No timeline link: the timeline and replay are the township's supervision pages.
    assert f"/supervise/qingshui/incidents/{library['parked'].pk}/" not in page.content.decode()
    assert _api_ids(client.get("/api/v1/incidents")) == [library["parked"].pk]
    assert _api_ids(client.get("/api/v1/incidents", {"category": "fire"})) == []


def test_rows_show_local_time_departments_and_links(library):
    page = signed_in("duty").get("/cases/", {"q": "违停"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    text = page.content.decode()
    parked = library["parked"]
    assert "2026-11-20 09:00" in text  # Shanghai time, not UTC (01:00)
    assert f'href="/supervise/qingshui/incidents/{parked.pk}/"' in text
    assert f'href="/supervise/qingshui/incidents/{parked.pk}/replay/"' in text
    assert Department.objects.get(code="traffic").name in text
    assert "路口违停" not in text


@pytest.mark.parametrize(
    "params",
    [
        {"category": "no-such"},
        {"start": "2026-13-01"},
        {"start": "yesterday"},
        {"start": "2026-11-20", "end": "2026-11-01"},
        {"status": "lost"},
        {"level": "village"},
        {"satisfaction": "happy"},
        {"reopened": "maybe"},
        {"after": "x.y"},
        {"after": "99999999999999999999.1"},
        {"q": "x" * 201},
    ],
    ids=lambda p: next(iter(p)),
)
def test_bad_filters_are_a_clear_400(library, params):
    client = signed_in("duty")
    page = client.get("/cases/", params, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 400
    assert 'class="form-errors"' in page.content.decode()
    assert client.get("/cases/", {**params, "format": "csv"}).status_code == 400
    api = client.get("/api/v1/incidents", params)
    assert api.status_code == 400
    assert api.json()["code"] == "bad_filter" and api.json()["detail"]


def test_pages_follow_each_other_without_gaps(library, settings):
    qingshui = Township.objects.get(code="qingshui")
    grid = Grid.objects.get(code="110112-QS-007")
    start = datetime(2026, 10, 1, 8, 0, tzinfo=SHANGHAI)
    for n in range(7):
        # Two at the same moment: the id breaks the tie.
        _incident(qingshui, grid, "garbage", f"PAGED {n}", opened=start + timedelta(hours=n // 2))
    settings.WHISTLE_PAGE_SIZE = 3
    client = signed_in("duty")
    seen: list[int] = []
    url = "/cases/?q=PAGED"
    for _ in range(5):
        response = client.get(url)
        seen += _ids(response)
        found = re.search(
            rb'id="case-next" rel="next"|href="([^"]+)" id="case-next"', response.content
        )
        if not found:
            break
        url = found.group(1).decode().replace("&amp;", "&")
    expected = list(
        Incident.objects.filter(title__startswith="PAGED")
        .order_by("-opened_at", "-id")
        .values_list("pk", flat=True)
    )
    assert seen == expected and len(seen) == 7
    # The API: limit and next, the same order.
    api_seen: list[int] = []
    next_url = "/api/v1/incidents?q=PAGED&limit=2"
    while next_url:
        body = client.get(next_url).json()
        api_seen += [i["id"] for i in body["items"]]
        next_url = body["next"]
    assert api_seen == expected


def test_csv_has_every_matching_row_with_its_fields(library, settings):
    settings.WHISTLE_PAGE_SIZE = 1  # the export is not one page
    rows = _csv_rows(signed_in("duty").get("/cases/", {"format": "csv"}))
    by_id = {int(r["id"]): r for r in rows}
    assert set(by_id) == {library[k].pk for k in QINGSHUI}
    garbage = by_id[library["garbage"].pk]
    assert garbage["title"] == "河道边堆放建筑垃圾"
    assert garbage["category"] == "garbage" and garbage["grid"] == "110112-QS-012"
    assert garbage["status"] == "closed" and garbage["settled_level"] == "grid"
    assert garbage["satisfaction"] == "satisfied" and garbage["feedback"] == "已清运完毕，现场恢复"
    assert garbage["opened_at"] == "2026-11-17T09:00:00+08:00"
    assert by_id[library["parked"].pk]["departments"] == "traffic"
    assert by_id[library["fire"].pk]["reopened_count"] == "1"


def test_selector_is_shared_and_scoped(library):
    duty_b = User.objects.get(username="duty_b")
    form = case_library.CaseFilterForm({"q": "学校门口"}, user=duty_b)
    assert form.is_valid()
    page = case_library.case_page(user=duty_b, filters=form.filters())
    assert [r.incident.pk for r in page.rows] == [library["beishan"].pk]
    assert page.next_cursor is None
