"""The demo's past (demo.past): 90 generated days behind the demo township, so the supervisor's
pages, the case library and replay show something on a first run; written once, in seconds,
with the services' own shapes. And the shared generator (demo.history) still makes the replay
benchmark's data."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client

from alerts.models import Alert
from command import clock
from command.org.models import Department, Township, User
from command.timeline.actions import Action, payload_check
from command.timeline.models import TimelineEntry
from demo.past import DAYS, RATED_AFTER, seed_demo_past
from demo.seed import seed_demo
from incidents.models import Incident, Summons, SupervisionOrder, Whistle
from streams.models import GridReport, Reading
from supervision import stats
from supervision.models import DepartmentRating

pytestmark = pytest.mark.django_db


@pytest.fixture
def past() -> object:
    seed_demo()
    return seed_demo_past(refresh=False)


def _client(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def _rows(html: str, table_id: str, marker: str) -> list[str]:
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert table, f"no #{table_id}"
    return re.findall(rf'<tr {marker}="([^"]+)"', table.group(0))


def test_the_past_fills_the_supervisors_pages_the_case_library_and_replay(past):
    assert past.written and past.incidents == 500 and past.readings > 200_000
    # A few seconds on a shared CI machine; the demo prints its own figure at start-up.
    assert past.seconds < 20, past.seconds
    supervisor = _client("supervisor")

    page = supervisor.get("/supervise/qingshui/").content.decode()
    departments = _rows(page, "department-table", "data-department")
    assert len(departments) >= 5, departments
    settled = dict(
        re.findall(r'<tr data-level="(\w+)">.*?<td class="settled-count">(\d+)</td>', page, re.S)
    )
    assert int(settled["grid"]) > int(settled["township"]) > int(settled["county"]) > 0, settled

    review = supervisor.get("/supervise/qingshui/review/").content.decode()
    channels = _rows(review, "review-channels", "data-channel")
    assert len(channels) >= 3, channels  # devices and several intake channels, yesterday
    assert int(re.search(r'id="review-alerts">(\d+)<', review).group(1)) > 0

    console = supervisor.get("/supervise/console/")
    assert console.status_code == 200

    cases = _client("duty").get("/cases/").content.decode()
    assert cases.count("<tr data-incident=") == 50  # a full first page

    # An incident with a returned piece of work and a supervision order reads on its timeline
    # and replays at its middle.
    order = SupervisionOrder.objects.filter(status="answered").select_related("incident").first()
    assert order is not None
    incident = order.incident
    timeline = supervisor.get(f"/supervise/qingshui/incidents/{incident.pk}/")
    assert timeline.status_code == 200
    actions = set(
        TimelineEntry.objects.filter(subject_type="order", subject_id=order.pk).values_list(
            "action", flat=True
        )
    )
    assert actions == {"order.issued", "order.acknowledged", "order.answered"}
    entries = list(
        TimelineEntry.objects.filter(subject_type="incident", subject_id=incident.pk).order_by(
            "time"
        )
    )
    middle = entries[0].time + (entries[-1].time - entries[0].time) / 2
    frame = supervisor.get(
        f"/supervise/qingshui/incidents/{incident.pk}/replay/frame", {"at": middle.isoformat()}
    )
    assert frame.status_code == 200


def test_the_past_has_what_a_working_township_has(past):
    township = Township.objects.get(code="qingshui")
    end, start = past.end, past.start
    rows = stats.department_table(township_id=township.pk, start=start, end=end)
    assert sum(r.received for r in rows) == Summons.objects.count()
    assert sum(r.overdue for r in rows) > 0 and sum(r.escalated for r in rows) > 0
    assert sum(r.accepted for r in rows) > sum(r.accepted_first_time for r in rows) > 0
    assert sum(r.rated for r in rows) > 0 and sum(r.orders for r in rows) > 0
    assert Summons.objects.filter(status="released").exists()
    assert Summons.objects.filter(returned_count=1, status="accepted").exists()
    channels = set(GridReport.objects.values_list("channel", flat=True))
    assert {"grid", "phone", "12345"} <= channels, channels
    hotline = GridReport.objects.filter(channel="12345").first()
    assert hotline.external_id and hotline.caller_phone
    # What a caller's phone looks like on the board: masked in the alert and its timeline.
    alert = Alert.objects.get(pk=hotline.alert_id)
    assert alert.source == "intake" and "****" in alert.detail["caller"]
    assert Alert.objects.filter(status="dismissed").count() > 100
    assert Alert.objects.filter(status="cleared").count() > 100
    called = Incident.objects.exclude(satisfaction="")
    assert called.exists() and not called.filter(callback_at__isnull=True).exists()
    due = Incident.objects.filter(status="closed", satisfaction="")
    assert due.exists()  # callbacks still to make: the review page's list
    # Each department has a head; the demo supervisor is paged by e-mail.
    assert not Department.objects.filter(head__isnull=True).exists()
    assert Department.objects.get(code="chengguan").head.username == "chengguan"
    supervisor = User.objects.get(username="supervisor")
    assert supervisor.phone and supervisor.notify_by == ["email"]


def test_the_township_rated_its_departments_for_the_past_full_months(past):
    """Through the assessment's own service, each rating on the day it was given."""
    township = Township.objects.get(code="qingshui")
    ratings = DepartmentRating.objects.filter(township=township)
    assert ratings.count() == past.ratings >= 10
    months = set(ratings.values_list("period_start", flat=True))
    # Every whole month of the past whose rating day (the 3rd of the next, 10:00) has come.
    zone = township.zone
    expected, month = set(), past.start.astimezone(zone).date().replace(day=1)
    while month < past.end.astimezone(zone).date():
        following = (month + timedelta(days=32)).replace(day=1)
        rated = datetime.combine(following, datetime.min.time(), tzinfo=zone) + RATED_AFTER
        if datetime.combine(month, datetime.min.time(), tzinfo=zone) >= past.start and (
            rated <= past.end
        ):
            expected.add(month)
        month = following
    assert months == expected and len(months) >= 1, (months, expected)
    for rating in ratings:
        assert rating.period == "month" and rating.marks.count() >= 2
        assert past.start <= rating.rated_at <= past.end
        # Rated after its month, which began inside the past.
        assert rating.rated_at.astimezone(zone).date() > rating.period_start
        assert rating.period_start >= past.start.astimezone(zone).date()
        assert 0 < rating.score <= 100
    given = TimelineEntry.objects.filter(subject_type="rating", action="rating.given")
    assert given.count() == past.ratings
    # Told at the time: the demo's start pages nobody about last month's rating.
    assert not TimelineEntry.objects.filter(subject_type="rating").exclude(pk__in=given).exists()
    # The district supervisor's view of the last full month ranks the rated departments
    # (when its rating day has come: in the first days of a month it is still to be given).
    last = max(months).strftime("%Y-%m")
    page = _client("supervisor").get("/supervise/district/", {"period": last}).content.decode()
    ranked = re.findall(r'<tr data-department="([^"]+)" data-rank="\d+"', page)
    assert set(ranked) == set(
        ratings.filter(period_start=max(months)).values_list("department__code", flat=True)
    ), ranked


def test_the_past_lies_in_the_90_days_before_now(past):
    now = clock.now()
    assert past.end <= now and now - past.end < timedelta(minutes=1)
    assert past.end - past.start == timedelta(days=DAYS)
    township = Township.objects.get(code="qingshui")
    times = TimelineEntry.objects.filter(township=township)
    assert times.filter(time__lt=past.start).count() == 0
    assert times.filter(time__gt=past.end).count() == 0
    assert not Incident.objects.filter(opened_at__lt=past.start).exists()
    assert not Whistle.objects.filter(blown_at__gt=past.end).exists()
    assert not Reading.objects.filter(time__lt=past.start).exists()
    assert not Reading.objects.filter(time__gt=past.end).exists()
    # It reaches today: the last weeks are as full as the first.
    recent = Incident.objects.filter(opened_at__gte=now - timedelta(days=7)).count()
    assert recent > 20, recent


def test_seeding_again_writes_nothing(past):
    counts = (Incident.objects.count(), TimelineEntry.objects.count(), Reading.objects.count())
    again = seed_demo_past(refresh=False)
    assert not again.written
    assert (
        Incident.objects.count(),
        TimelineEntry.objects.count(),
        Reading.objects.count(),
    ) == counts
    # New rows go on after the generated ids: the services create with the identities.
    latest = Incident.objects.order_by("-pk").first()
    created = Incident.objects.create(
        township=latest.township,
        title="x",
        severity="minor",
        category=latest.category,
    )
    assert created.pk > latest.pk


def test_every_generated_timeline_row_is_in_the_vocabulary(past):
    for entry in TimelineEntry.objects.all().iterator():
        action = payload_check(entry.action, entry.before, entry.after)
        assert Action(action).subject.value == entry.subject_type, entry.action


def test_the_benchmark_generator_still_generates_a_small_year():
    """The replay benchmark's own path through demo.history, for three days."""
    from bench import replay
    from demo import history

    seed_demo()
    history.seed_extra(random.Random("t"), township_code="qingshui", sensors={"smoke": 2})
    world = history.load_world("qingshui")
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=3)
    tables = history.Tables(world.township_id)
    generator = history.Generator(
        world, tables, end, "t", start=start, pace_seed=f"pace-{replay.VERSION}"
    )
    big, _raised, _opened = generator.big_incident(300)
    for _ in range(30):
        generator.incident(generator.moment(start, end - timedelta(hours=1)), "garbage")
    for _ in range(60):
        generator.lone_alert()
    conn = connection.connection
    history.copy_tables(conn, tables)
    readings = history.load_readings(conn, world, start, end, seed="r")
    assert Incident.objects.count() == 31
    assert TimelineEntry.objects.filter(subject_type="alert", action="alert.updated").count()
    assert Incident.objects.get(pk=big).status == "closed"
    assert readings == Reading.objects.count() > 36 * 3 * 72 * 0.9
    assert not SupervisionOrder.objects.exists()  # no extras: the benchmark's data as it was
    assert not Summons.objects.filter(status="accepted").exists()
    for entry in TimelineEntry.objects.all().iterator():
        payload_check(entry.action, entry.before, entry.after)


def test_seed_demo_past_command_writes_the_past_once():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("seed_demo", "--past", stdout=out)
    assert "the last 90 days: 事件 incidents 500" in out.getvalue(), out.getvalue()
    again = StringIO()
    call_command("seed_demo", "--past", stdout=again)
    assert "already has a past: nothing written" in again.getvalue(), again.getvalue()
    assert Incident.objects.count() == 500


LIVE_SECONDS = 21 * 60


def test_a_data_directory_the_demo_ran_in_before_gets_its_past_too():
    """The simulator's alerts are open under the rules' keys and its readings are in: the past
    opens no alert under those keys (one open alert per key) and its readings stop where the
    sensors' own begin."""
    from alerts.models import AlertRule
    from command.org.models import Device

    seed_demo()
    township = Township.objects.get(code="qingshui")
    now = clock.now()
    live = [
        Alert(
            township=township,
            category=rule.category,
            severity=rule.severity,
            status="new",
            source="camera",
            title="live",
            dedupe_key=f"rule:{rule.pk}:{device.pk}",
            first_seen=now,
            last_seen=now,
        )
        for rule in AlertRule.objects.filter(township=township)
        for device in Device.objects.filter(township=township)
    ]
    Alert.objects.bulk_create(live)
    # And the sensors' readings of the last 21 minutes, every second: each sensor's generated
    # series (every 20 minutes) would meet one of them.
    sensors = Device.objects.filter(township=township, kind="sensor")
    since = now.replace(microsecond=0) - timedelta(minutes=21)
    Reading.objects.bulk_create(
        (
            Reading(
                time=since + timedelta(seconds=n), device=d, metric=d.metadata["metric"], value=1
            )
            for d in sensors
            for n in range(LIVE_SECONDS)
        ),
        batch_size=5000,
    )
    # A short, busy past: a dozen of its alerts would still be open at its end.
    past = seed_demo_past(days=2, incidents=20, lone_alerts=400, refresh=False)
    assert past.written
    generated = Alert.objects.filter(status__in=["new", "acknowledged"]).exclude(title="live")
    assert not generated.filter(dedupe_key__startswith="rule:").exists()
    assert past.readings > 0
    assert Reading.objects.count() == past.readings + LIVE_SECONDS * sensors.count()
