"""Trends and hot spots (研判) on a small known history, every figure counted by hand: matters
per category and grid per month and week, the same months last year, recurrence at the same
place (3 in 30 days is one, 2 is not, nor 3 spread over exactly 30), and the hour of the day on
the township's clock, not UTC."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.models import Alert
from command import clock
from command.org.models import Grid, Township, User
from supervision import trends
from tests.conftest import signed_in
from tests.supervision.test_daily_review import G7, G12, _alert, _open

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 1, tzinfo=SHANGHAI)
END = datetime(2026, 12, 1, tzinfo=SHANGHAI)  # September to November 2026
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)


def at(y, m, d, hour=10, minute=0):
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def history(demo):
    # Parking in grid 7: two camera alerts in September, one in October at half past midnight
    # on the 1st (still 30 September in UTC), and an incident opened from a fourth alert in
    # November (one matter, not two). A merged duplicate does not count.
    _alert("p-1", at(2026, 9, 3))
    _alert("p-2", at(2026, 9, 20))
    _alert("p-3", at(2026, 10, 1, 0, 30))
    cam = _alert("p-4", at(2026, 11, 2, 23, 30))  # a Monday, 15:30 UTC
    _open("路口违停", at(2026, 11, 2, 23, 40), alerts=[cam])
    merged = _alert("p-dup", at(2026, 9, 21))
    Alert.objects.filter(pk=merged).update(status=Alert.Status.MERGED)
    # Garbage in grid 12: one in November, at 07:30 on Tuesday the 3rd (Monday 23:30 UTC).
    _alert("g-1", at(2026, 11, 3, 7, 30), category="garbage", grid=G12)
    # A dispute opened by hand in grid 12 in October.
    _open("邻里纠纷", at(2026, 10, 9, 15), category="dispute", grid=G12)
    # Last year: parking in grid 7 twice in October, once in November; garbage once in
    # September. Outside both periods: August 2026 and December 2025.
    _alert("ly-p-1", at(2025, 10, 5))
    _alert("ly-p-2", at(2025, 10, 25))
    _alert("ly-p-3", at(2025, 11, 30, 23, 59))
    _alert("ly-g-1", at(2025, 9, 1, 0, 1), category="garbage", grid=G12)
    _alert("aug", at(2026, 8, 31, 23, 59))
    _alert("dec-ly", at(2025, 12, 1, 0, 0))


def _township():
    return Township.objects.get(code="qingshui")


def test_category_trend_by_month_with_last_year(history):
    trend = trends.category_trend(township_id=_township().pk, start=START, end=END)
    assert trend.buckets == [date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)]
    rows = {s.code: (s.counts, s.last_year) for s in trend.series}
    assert rows == {
        "parking": ([2, 1, 1], [0, 2, 1]),
        "dispute": ([0, 1, 0], [0, 0, 0]),
        "garbage": ([0, 0, 1], [1, 0, 0]),
    }
    # Busiest first; of two as busy, the one busier last year.
    assert [s.code for s in trend.series] == ["parking", "garbage", "dispute"]
    parking, garbage, dispute = trend.series
    assert (parking.total, parking.last_year_total) == (4, 3)
    assert parking.change == pytest.approx(4 / 3 - 1)
    assert garbage.change == 0.0
    assert dispute.change is None  # none last year
    assert trend.counts == [2, 2, 2] and trend.last_year == [1, 2, 1]
    assert (trend.total, trend.last_year_total) == (6, 4)


def test_grid_trend_by_week(history):
    # 28 September (a Monday) to 18 October: three weeks.
    start, end = at(2026, 9, 28, 0), at(2026, 10, 19, 0)
    trend = trends.grid_trend(township_id=_township().pk, start=start, end=end, bucket="week")
    assert trend.buckets == [date(2026, 9, 28), date(2026, 10, 5), date(2026, 10, 12)]
    rows = {s.code: (s.counts, s.last_year) for s in trend.series}
    # Last year's weeks are 52 weeks before: 29 September to 19 October 2025, Mondays too;
    # 5 October 2025 was a Sunday, in the first of them.
    assert rows == {G7: ([1, 0, 0], [1, 0, 0]), G12: ([0, 1, 0], [0, 0, 0])}


def test_a_period_from_mid_month_starts_in_that_month(history):
    trend = trends.category_trend(
        township_id=_township().pk, start=at(2026, 9, 15, 0), end=at(2026, 10, 3, 0)
    )
    assert trend.buckets == [date(2026, 9, 1), date(2026, 10, 1)]
    assert {s.code: s.counts for s in trend.series} == {"parking": [1, 1]}
    with pytest.raises(ValueError):
        trends.category_trend(township_id=_township().pk, start=START, end=END, bucket="day")


def test_hour_of_day_is_on_the_townships_clock(history):
    found = trends.hour_of_day(township_id=_township().pk, start=START, end=END)
    assert found.total == 6
    monday, tuesday = found.counts[0], found.counts[1]
    # The November parking incident: Monday 23:40 in Qingshui (15:40 UTC).
    assert monday[23] == 1 and monday[15] == 0
    # The garbage alert: Tuesday 07:30 in Qingshui, which is Monday 23:30 UTC.
    assert tuesday[7] == 1 and monday[23] == 1
    # 1 October 00:30 was a Thursday in Qingshui (Wednesday 16:30 UTC).
    assert found.counts[3][0] == 1 and found.counts[2][16] == 0
    # 3 September (a Thursday) and 20 September (a Sunday) at 10:00.
    assert found.by_hour[10] == 2 and found.counts[3][10] == 1 and found.counts[6][10] == 1
    assert found.busiest == 1
    assert sum(found.by_weekday) == 6


def _spot_rows(start, end):
    return [
        (s.category_code, s.grid_code, s.matters, s.peak)
        for s in trends.hot_spots(township_id=_township().pk, start=start, end=end)
    ]


def test_three_in_thirty_days_is_a_hot_spot_two_is_not(demo):
    # Fire in grid 12: 1, 10 and 29 June (3 within 30 days); garbage in grid 7: 1 and 20 June
    # only (2); disputes in grid 7: 1 June, 16 June and 1 July, the third exactly 30 days after
    # the first, so never 3 within 30 days.
    for i, day in enumerate((1, 10, 29)):
        _alert(f"fire-{i}", at(2026, 6, day), category="fire", grid=G12)
    for i, day in enumerate((1, 20)):
        _alert(f"garbage-{i}", at(2026, 6, day), category="garbage", grid=G7)
    for i, moment in enumerate((at(2026, 6, 1), at(2026, 6, 16), at(2026, 7, 1))):
        _alert(f"dispute-{i}", moment, category="dispute", grid=G7)
    start, end = at(2026, 5, 1, 0), at(2026, 8, 1, 0)
    assert _spot_rows(start, end) == [("fire", G12, 3, 3)]
    # A third garbage matter a minute short of 30 days after the first: 3 in 30 days. Of two
    # places as hot, the one seen last comes first.
    _alert("garbage-2", at(2026, 6, 30, 9, 59), category="garbage", grid=G7)
    assert _spot_rows(start, end) == [("garbage", G7, 3, 3), ("fire", G12, 3, 3)]
    # The same for the dispute: a minute earlier on 1 July and it is 3 in 30 days too.
    Alert.objects.filter(dedupe_key="dispute-2").update(first_seen=at(2026, 7, 1, 9, 59))
    assert _spot_rows(start, end)[0] == ("dispute", G7, 3, 3)
    # The period cuts the window: from 2 June, fire in grid 12 is 2.
    assert all(row[0] != "fire" for row in _spot_rows(at(2026, 6, 2, 0), end))
    (fire,) = [
        s
        for s in trends.hot_spots(township_id=_township().pk, start=start, end=end)
        if s.category_code == "fire"
    ]
    assert (fire.first_at, fire.last_at) == (at(2026, 6, 1), at(2026, 6, 29))
    assert fire.grid_id == Grid.objects.get(code=G12).pk


def test_the_trends_page(history):
    client = signed_in("duty")
    with clock.frozen(at=NOW):
        page = client.get(
            "/supervise/qingshui/trends/?start=2026-09-01&end=2026-11-30&bucket=month",
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-category="parking" data-total="4" data-last-year="3"' in text
    assert 'id="trend-total">6<' in text
    # Parking in grid 7 on 3 and 20 September and 1 October: 3 within 28 days.
    assert f'<tr data-grid="{G7}" data-category="parking">' in text
    assert (
        f"/cases/?township=qingshui&amp;category=parking&amp;grid={G7}"
        "&amp;start=2026-09-01&amp;end=2026-11-30"
    ) in text
    assert f'class="hot-spot" data-grid="{G7}"' in text
    with clock.frozen(at=NOW):
        english = client.get("/supervise/qingshui/trends/?bucket=week", HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 200 and "Year on year" in english.content.decode()
    with clock.frozen(at=NOW):
        bad = client.get("/supervise/qingshui/trends/?start=2026-11-30&end=2026-09-01")
        wrong_bucket = client.get("/supervise/qingshui/trends/?bucket=year")
    assert bad.status_code == 400 and wrong_bucket.status_code == 400


def test_only_those_who_supervise_the_township_see_its_trends(history):
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan")
    User.objects.create(username="duty_b", role=User.Role.DUTY_OFFICER, township=beishan)
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="duty_b"))
    assert client.get("/supervise/qingshui/trends/").status_code == 403
    assert signed_in("chengguan").get("/supervise/qingshui/trends/").status_code == 403
    assert Client().get("/supervise/qingshui/trends/").status_code in (302, 403)


def test_hot_spots_are_marked_on_the_performance_map(demo):
    for i, day in enumerate((1, 10, 20)):
        _alert(f"fire-{i}", at(2026, 11, day), category="fire", grid=G12)
    with clock.frozen(at=NOW):
        page = signed_in("duty").get("/supervise/qingshui/?start=2026-11-01&end=2026-11-30")
    text = page.content.decode()
    assert page.status_code == 200
    assert f'class="hot-spot" data-grid="{G12}"' in text
    assert f'class="hot-spot" data-grid="{G7}"' not in text
