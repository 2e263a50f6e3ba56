"""An incident's sensor history on its timeline page: the involved devices' readings around the
incident, at a resolution that fits the window, with the rule thresholds and key moments."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert, AlertRule
from alerts.rules import rulebook
from command.org.models import Category, Department, Device, Township, User
from frontend.charts import HEIGHT, PAD
from incidents.models import Incident, Whistle
from incidents.services.incidents import incident_close, incident_open, incident_resolve
from incidents.services.summonses import summons_accept, summons_check_in, summons_done
from incidents.services.whistles import SummonedDepartment, whistle_blow
from streams.models import Reading
from streams.timeseries import timescaledb_enabled
from tests.conftest import raise_alert, signed_in

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture(autouse=True)
def fresh_rulebook():
    """Charts read the rules through ingest's cache; each test's rules are its own."""
    rulebook.forget()
    yield
    rulebook.forget()


def gauge_alert(device: Device, at: datetime, *, value: float = 3.4) -> Alert:
    alert_id = raise_alert(
        device.township_id,
        f"test:{device.pk}:water_level",
        category="flood",
        source="sensor",
        title=f"water_level {value} @ {device.code}",
        time=at,
        device_id=device.pk,
        grid_id=device.grid_id,
        detail={"metric": "water_level", "value": value, "threshold": 3.0},
    )
    return Alert.objects.get(pk=alert_id)


def incident_from(*alerts: Alert) -> Incident:
    return incident_open(
        actor=User.objects.get(username="duty"),
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="flood"),
        severity="major",
        title="滨河桥水位超警",
        alerts=list(alerts),
    )


def every(step: timedelta, start: datetime, end: datetime) -> list[datetime]:
    times, at = [], start
    while at < end:
        times.append(at)
        at += step
    return times


def page(incident: Incident, query: str = "", user: str = "supervisor", headers=EN):
    response = signed_in(user).get(
        f"/supervise/qingshui/incidents/{incident.pk}/{query}", **headers
    )
    assert response.status_code == 200
    return response, response.content.decode()


def figure(html: str, device: str, metric: str) -> str:
    article = html.split(f'class="device-history" data-device="{device}"')[1].split("</article>")[0]
    return article.split(f'data-metric="{metric}"')[1].split("</figure>")[0]


def test_a_chart_per_device_and_metric_with_the_rules_thresholds_and_key_moments(demo):
    gauge, camera = Device.objects.get(code="wl-02"), Device.objects.get(code="cam-quarry")
    flood = Category.objects.get(code="flood")
    # On top of the demo's township-wide rule (major above 3.0): one for this gauge, one for
    # another gauge and one for another metric, which do not belong on its chart.
    for device, metric, threshold, severity in [
        (gauge, "water_level", 3.6, "critical"),
        (Device.objects.get(code="wl-03"), "water_level", 9.9, "critical"),
        (gauge, "flow", 7.7, "minor"),
    ]:
        AlertRule.objects.create(
            township=gauge.township,
            name=f"{device.code} {metric} {threshold}",
            kind=AlertRule.Kind.THRESHOLD,
            category=flood,
            severity=severity,
            device=device,
            metric=metric,
            threshold=threshold,
        )
    now = timezone.now()
    Reading.objects.bulk_create(
        Reading(device=gauge, metric=metric, time=now - timedelta(minutes=m), value=value)
        for m in range(1, 50)
        for metric, value in [("water_level", 2.0 + m / 25), ("battery", 12.5 - m / 100)]
    )
    crossed = gauge_alert(gauge, now - timedelta(minutes=30))
    parked = raise_alert(
        camera.township_id,
        "test:camera",
        severity="minor",
        time=now - timedelta(minutes=20),
        device_id=camera.pk,
    )
    incident = incident_from(crossed, Alert.objects.get(pk=parked))
    duty, member = User.objects.get(username="duty"), User.objects.get(username="chengguan")
    summons = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(Department.objects.get(code="chengguan"), "在附近")],
    ).summonses.get()
    summons_check_in(actor=member, summons=summons)
    summons_done(actor=member, summons=summons, note="已处置")
    summons_accept(actor=duty, summons=summons)
    incident_resolve(actor=duty, incident=incident)
    incident_close(actor=duty, incident=incident, feedback="好", settled_level="township")

    response, html = page(incident)
    history = response.context["history"]
    assert [(e.device.code, [c.metric for c in e.charts]) for e in history.devices] == [
        ("wl-02", ["battery", "water_level"])
    ]
    assert history.quiet == [camera]  # a camera reports no readings
    assert "No readings in this window:" in html and camera.display_name in html

    water = history.devices[0].charts[1]
    assert sorted((t.value, t.severity) for t in water.thresholds) == [
        (3.0, "major"),
        (3.6, "critical"),
    ]
    for threshold in water.thresholds:
        # The line sits where its value is on the chart's value axis.
        drawn = water.high - (threshold.y - PAD) / (HEIGHT - 2 * PAD) * (water.high - water.low)
        assert drawn == pytest.approx(threshold.value, abs=1e-9)
    assert water.low < 2.0 and water.high > 3.96  # the axis spans the readings too
    chart = figure(html, "wl-02", "water_level")
    assert all(f'y1="{t.y:.1f}"' in chart for t in water.thresholds)
    assert 'class="threshold sev-critical" data-value="3.6"' in chart and "Critical 3.6" in chart
    assert 'class="threshold sev-major" data-value="3.0"' in chart and "Major 3.0" in chart
    assert 'data-value="9.9"' not in chart and 'data-value="7.7"' not in chart
    assert 'class="threshold' not in figure(html, "wl-02", "battery")

    assert [m.kind for m in water.markers] == [
        "crossed", "opened", "whistle", "check-in", "resolved", "closed",
    ]  # fmt: skip
    assert water.markers[0].at == crossed.first_seen
    assert "crossed" not in [m.kind for m in history.devices[0].charts[0].markers]
    assert "First whistle" in chart and "Threshold crossed" in chart
    # Markers that fall together are put on separate rows, not on top of each other.
    assert water.marker_rows > 1

    # An hour before the first alert to now (closed less than an hour ago): raw readings.
    assert history.start == crossed.first_seen - timedelta(hours=1)
    assert history.resolution == "raw" and "raw readings" in chart
    assert water.count == 49 and 'data-points="49"' in chart and water.band == ""
    local = zoneinfo.ZoneInfo("Asia/Shanghai")
    assert history.start.astimezone(local).strftime("%Y-%m-%d %H:%M") in chart
    assert "(Asia/Shanghai time)" in html


def shifted(incident: Incident, *, opened: datetime, closed: datetime) -> Incident:
    """The incident as if it had been opened and closed at these times."""
    Alert.objects.filter(incident=incident).update(first_seen=opened)
    Incident.objects.filter(pk=incident.pk).update(
        opened_at=opened, resolved_at=closed, closed_at=closed, status=Incident.Status.CLOSED
    )
    incident.refresh_from_db()
    return incident


@pytest.mark.parametrize(
    ("lasted", "window", "resolution", "label"),
    [
        (timedelta(0), timedelta(hours=2), "raw", "raw readings"),
        (timedelta(hours=46), timedelta(days=2), "minute", "minute averages"),
        (timedelta(days=10) - timedelta(hours=2), timedelta(days=10), "hour", "hourly averages"),
    ],
)
def test_the_resolution_fits_the_window(demo, lasted, window, resolution, label):
    gauge = Device.objects.get(code="wl-02")
    opened = timezone.now() - timedelta(days=12)
    Reading.objects.create(device=gauge, metric="water_level", time=opened, value=2.5)
    incident = shifted(
        incident_from(gauge_alert(gauge, opened)), opened=opened, closed=opened + lasted
    )
    response, html = page(incident)
    history = response.context["history"]
    assert history.end - history.start == window
    assert history.resolution == history.fitting == resolution
    assert f'data-resolution="{resolution}" data-points="1"' in html and label in html
    current = re.search(r'<a href="\?resolution=(\w+)#sensor-history"[^>]*aria-current', html)
    assert current and current.group(1) == resolution
    link = html.split(f'<a href="?resolution={resolution}#sensor-history"')[1].split("</a>")[0]
    assert "fits this window" in link


@pytest.fixture
def four_hours(demo):
    """An incident whose window is four whole hours, with a gauge reading every 10 s from an
    hour before the window to an hour after it."""
    gauge = Device.objects.get(code="wl-02")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    opened = hour - timedelta(hours=5)
    start, end = opened - timedelta(hours=1), opened + timedelta(hours=3)
    Reading.objects.bulk_create(
        Reading(device=gauge, metric="water_level", time=at, value=2.0 + (at.minute % 10) / 10)
        for at in every(timedelta(seconds=10), start - timedelta(hours=1), end + timedelta(hours=1))
    )
    incident = incident_from(gauge_alert(gauge, opened))
    return shifted(incident, opened=opened, closed=opened + timedelta(hours=2))


@pytest.mark.parametrize(
    ("query", "resolution", "points"),
    [
        ("", "minute", 240),  # four hours: more than raw fits
        ("?resolution=raw", "raw", 4 * 360),
        ("?resolution=minute", "minute", 4 * 60),
        ("?resolution=hour", "hour", 4),
        ("?resolution=nonsense", "minute", 240),
    ],
)
def test_each_resolution_draws_its_number_of_points(four_hours, query, resolution, points):
    response, html = page(four_hours, query)
    chart = response.context["history"].devices[0].charts[0]
    assert (chart.resolution, chart.count) == (resolution, points)
    assert chart.line.count("M") == 1 and chart.line.count("L") == points - 1
    if resolution == "raw":
        assert chart.band == "" and 'class="band"' not in html
    else:
        # The min–max band: the upper edge forward, the lower edge back.
        assert chart.band.count(",") == 2 * points and 'class="band"' in html
    assert f'data-resolution="{resolution}" data-points="{points}"' in html
    assert 'class="notice"' not in html


def test_minute_and_hour_buckets_come_from_the_aggregate_or_date_bin(four_hours):
    """On TimescaleDB the continuous aggregate (real time, so the last minutes are there too);
    on plain PostgreSQL ``date_bin`` over the raw table. The points drawn are the same (the test
    above runs on both)."""
    timescale = timescaledb_enabled(connection)
    for query in ("?resolution=minute", "?resolution=hour"):
        with CaptureQueriesContext(connection) as queries:
            page(four_hours, query)
        series = [q["sql"] for q in queries if "streams_reading" in q["sql"]]
        if timescale:
            assert any("time_bucket(" in sql and "streams_reading_1m" in sql for sql in series)
            assert not any("date_bin(" in sql for sql in series), series
        else:
            assert any("date_bin(" in sql for sql in series), series
            assert not any("time_bucket" in sql for sql in series)


def test_timescaledb_sql_stays_in_the_time_series_modules():
    root = Path(__file__).resolve().parent.parent
    found = {
        path.relative_to(root).as_posix()
        for folder in ("alerts", "command", "frontend", "streams")
        for path in (root / folder).rglob("*.py")
        if re.search(r"time_bucket|date_bin|streams_reading_1m", path.read_text())
    }
    # The aggregate is created where storage is chosen and read where series are selected.
    assert found == {"streams/selectors.py", "streams/timeseries.py"}


def test_raw_readings_are_refused_over_long_windows(demo):
    gauge = Device.objects.get(code="wl-02")
    opened = timezone.now() - timedelta(days=12)
    Reading.objects.create(device=gauge, metric="water_level", time=opened, value=2.5)
    two_days = shifted(
        incident_from(gauge_alert(gauge, opened)),
        opened=opened,
        closed=opened + timedelta(hours=46),
    )
    response, html = page(two_days, "?resolution=raw")
    assert response.context["history"].resolution == "minute"
    notice = html.split('class="notice"')[1].split("</p>")[0]
    assert "up to 6 hours" in notice and "48.0 hours" in notice and "minute averages" in notice
    ten_days = shifted(
        incident_from(gauge_alert(gauge, opened)),
        opened=opened,
        closed=opened + timedelta(days=10) - timedelta(hours=2),
    )
    response, html = page(ten_days, "?resolution=minute")
    assert response.context["history"].resolution == "hour"
    assert "up to 7 days" in html and "10.0 days" in html


def test_sensors_of_the_grid_that_crossed_a_threshold_are_shown_too(demo):
    gauge = Device.objects.get(code="wl-02")
    neighbour = Device.objects.create(
        township=gauge.township, code="wl-99", kind="sensor", grid=gauge.grid, name="桥下水位计"
    )
    far = Device.objects.exclude(grid=gauge.grid).get(code="wl-05")
    now = timezone.now()
    for device in (gauge, neighbour, far):
        Reading.objects.create(
            device=device, metric="water_level", time=now - timedelta(minutes=5), value=3.3
        )
    incident = incident_from(gauge_alert(gauge, now - timedelta(minutes=10)))
    assert incident.grid == gauge.grid
    gauge_alert(neighbour, now - timedelta(minutes=8))
    gauge_alert(far, now - timedelta(minutes=8))
    response, html = page(incident)
    history = response.context["history"]
    assert [(e.device.code, e.nearby) for e in history.devices] == [
        ("wl-02", False),
        ("wl-99", True),
    ]
    assert "same grid, crossed a threshold in this window" in html
    assert "crossed" in [m.kind for m in history.devices[1].charts[0].markers]


def test_an_incident_without_devices_says_so(demo):
    incident = incident_open(
        actor=User.objects.get(username="duty"),
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="minor",
        title="x",
    )
    _response, html = page(incident)
    assert "None of the incident's alerts came from a device." in html
    assert "?resolution=raw" not in html


def test_the_history_is_for_the_township_only(demo):
    gauge = Device.objects.get(code="wl-02")
    Reading.objects.create(
        device=gauge, metric="water_level", time=timezone.now() - timedelta(minutes=1), value=3
    )
    incident = incident_from(gauge_alert(gauge, timezone.now()))
    elsewhere = Township.objects.create(code="dongshan", name="东山镇")
    outsider = User.objects.create_user(
        username="dongshan-duty", role=User.Role.DUTY_OFFICER, township=elsewhere
    )
    client = Client()
    client.force_login(outsider)
    assert client.get(f"/supervise/qingshui/incidents/{incident.pk}/").status_code == 403
    assert client.get(f"/supervise/dongshan/incidents/{incident.pk}/").status_code == 404
    assert (
        client.get(f"/supervise/dongshan/incidents/{incident.pk}/?resolution=raw").status_code
        == 404
    )
    assert (
        signed_in("chengguan").get(f"/supervise/qingshui/incidents/{incident.pk}/").status_code
        == 403
    )
