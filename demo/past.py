"""The demo township's past: the last 90 days of a working command center, generated on a fresh
``whistle demo`` so the supervisor's pages, the case library, replay and timelines have
something to show at once.

The past comes from the replay benchmark's generator (``demo.history``) with what the
benchmark's data predates turned on (``Extras``: the township's acceptance of the work, some of
it returned first; callbacks; intake by several channels; supervision orders): incidents from
alerts and reports, whistles, summonses checked in on time or late (overdue, escalated) or
released, closings with their 631 level, alerts dismissed or cleared, and the demo sensors'
readings every 20 minutes. Every row is written as the services write it, with its timeline
rows, in one transaction (COPY), in a few seconds.

A township whose incidents go back more than a day already has a past (this one, or its own):
``seed_demo_past`` then writes nothing, so running the demo again does not double it.

The people who acted in it are accounts that never log in (``rp-…``): two members of each
department, a grid officer for each comprehensive grid, and the 12345 hotline's system. Each
department gets a head (paged by e-mail and on the console when its on-call does not answer)
and the demo supervisor a phone and e-mail paging; no SMS gateway is configured in the demo.

The township's supervisor (``rp-supervisor``) has rated the departments that served it in each
full month of the past (``supervision.assessment.rating_give``, on the clock of the third day
of the next month, so each rating's timeline row and objection window lie in the past); the
last month whose rating day is still to come is left for the demo's users to rate.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import Min

from alerts.models import Alert
from command import clock
from command.org import localtime
from command.org.models import Department, Township, User
from demo.data import TOWNSHIP_CODE
from demo.history import (
    CATEGORY_WEIGHTS,
    READING_EVERY,
    Extras,
    Generator,
    Tables,
    copy_tables,
    ids_in_use,
    load_readings,
    load_world,
    seed_extra,
)
from incidents.models import Incident
from streams.models import Reading
from supervision import stats
from supervision.models import Period

log = logging.getLogger("whistle.demo")

DAYS = 90
INCIDENTS = 500
LONE_ALERTS = 1_500
SEED = "demo-past-1"
HOTLINE_USERNAME = "rp-hotline"
# The township's supervisor who rated the past's months, and when after a month's end.
RATER_USERNAME = "rp-supervisor"
RATED_AFTER = timedelta(days=2, hours=10)
MONTH = Period.MONTH
# The last incidents are opened up to this long before now, so the board starts with work in
# hand. No deadline job waits for a generated summons still waiting: the deadlines sweep
# (incidents.services.deadlines) runs its reminder and escalations when they fall due.
QUIET_BEFORE_NOW = timedelta(minutes=30)
# Incidents older than this mean the township has a past already.
HAS_PAST_AFTER = timedelta(days=1)
OPEN = (Alert.Status.NEW, Alert.Status.ACKNOWLEDGED)


@dataclass(frozen=True)
class PastSummary:
    """What ``seed_demo_past`` wrote (all zero and ``written`` False when a past was there)."""

    start: datetime
    end: datetime
    written: bool
    incidents: int = 0
    alerts: int = 0
    summonses: int = 0
    orders: int = 0
    reports: int = 0
    timeline: int = 0
    readings: int = 0
    ratings: int = 0
    seconds: float = 0.0


def has_past(township: Township, now: datetime) -> bool:
    """Whether the township's incidents go back more than a day (generated or its own)."""
    return Incident.objects.filter(township=township, opened_at__lt=now - HAS_PAST_AFTER).exists()


def seed_demo_past(
    *,
    township_code: str = TOWNSHIP_CODE,
    days: int = DAYS,
    incidents: int = INCIDENTS,
    lone_alerts: int = LONE_ALERTS,
    every: timedelta = READING_EVERY,
    seed: str = SEED,
    end: datetime | None = None,
    refresh: bool = True,
) -> PastSummary:
    """Write the ``days`` before ``end`` (now) into the township seeded by ``seed_demo``: about
    ``incidents`` incidents and ``lone_alerts`` alerts that stayed alerts, and the township's
    sensors' readings every ``every``. Nothing when the township has a past already.

    ``refresh`` materializes TimescaleDB's minute aggregate over the readings, which moves its
    watermark to now: the demo wants that (the refresh policy only looks back an hour), a test
    database shared by other tests does not (readings a later test writes below the watermark
    stay unseen until refreshed)."""
    started = time.monotonic()
    end = (end or clock.now()).replace(microsecond=0)
    start = end - timedelta(days=days)
    with transaction.atomic():
        # The township row stays locked until commit: two seeders run one after the other,
        # and the second finds the first's past.
        township = Township.objects.select_for_update().get(code=township_code)
        if has_past(township, end):
            return PastSummary(start=start, end=end, written=False)
        extras = _seed_people(township, seed)
        world = load_world(township_code)
        connection.ensure_connection()
        conn = connection.connection  # psycopg's own, in this transaction: COPY needs it
        tables = Tables(world.township_id, ids=ids_in_use(conn))
        generator = Generator(
            world, tables, end, seed, start=start, pace_seed=f"pace-{seed}", extras=extras
        )
        # Alerts already open (a data directory the demo ran in before): the past leaves none
        # open under their keys, one open alert per key being the rule.
        generator.open_keys |= set(
            Alert.objects.filter(township=township, status__in=OPEN).values_list(
                "dedupe_key", flat=True
            )
        )
        planned = sorted(
            (generator.moment(start + timedelta(hours=1), end - QUIET_BEFORE_NOW, c), c)
            for c in generator.rng.choices(
                list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values()), k=incidents
            )
        )
        for opened_at, category in planned:
            generator.incident(opened_at, category)
        for _ in range(lone_alerts):
            generator.lone_alert()
        copy_tables(conn, tables)
        # The sensors' own readings, if any (a data directory the demo ran in before), go on
        # where the generated ones stop: one reading per sensor, metric and moment.
        first = Reading.objects.filter(device__township=township).aggregate(first=Min("time"))
        until = min(end, first["first"] - timedelta(seconds=1)) if first["first"] else end
        readings = load_readings(
            conn, world, start, until, seed=f"readings-{seed}", every=every, chunks=1
        )
        ratings = _rate_past_months(township, start, end, seed)
    if refresh:
        _refresh_aggregates()
    summary = PastSummary(
        start=start,
        end=end,
        written=True,
        incidents=len(tables.incidents),
        alerts=len(tables.alerts),
        summonses=len(tables.summonses),
        orders=len(tables.orders),
        reports=len(tables.reports),
        timeline=len(tables.timeline),
        readings=readings,
        ratings=ratings,
        seconds=time.monotonic() - started,
    )
    log.info("demo past: %s", summary)
    return summary


def _seed_people(township: Township, seed: str) -> Extras:
    """Who acted in the past (accounts that never log in), a head for each department, and the
    demo supervisor reachable by e-mail with a phone on record."""
    seed_extra(random.Random(f"people-{seed}"), township_code=township.code, sensors={})
    hotline, _created = User.objects.get_or_create(
        username=HOTLINE_USERNAME,
        defaults={
            "role": User.Role.HOTLINE,
            "township": township,
            "first_name": "12345热线",
            "password": make_password(None),
        },
    )
    # A demo account (chengguan, police) heads its department; elsewhere its first member.
    heads: dict[int, User] = {}
    for user in User.objects.filter(department__isnull=False).order_by("username"):
        generated = user.username.startswith("rp-")
        if generated and not user.username.endswith("-1"):
            continue
        if user.department_id not in heads or not generated:
            heads[user.department_id] = user
    for n, department in enumerate(Department.objects.filter(head__isnull=True).order_by("code")):
        head = heads.get(department.pk)
        if head is None:
            continue
        department.head = head
        department.save(update_fields=["head"])
        _reachable(head, f"1390000{n:04d}")
    supervisor = User.objects.filter(username="supervisor").first()
    if supervisor is None:
        supervisor = User.objects.filter(role=User.Role.SUPERVISOR).order_by("pk").first()
    if supervisor is None:
        raise RuntimeError("the demo past needs a supervisor: run seed_demo first")
    _reachable(supervisor, "13800000001")
    return Extras(
        supervisor_id=supervisor.pk, hotline_id=hotline.pk, hotline_username=hotline.username
    )


def _reachable(user: User, phone: str) -> None:
    """A phone on record and e-mail paging, for a person who has neither yet."""
    changed = []
    if not user.phone:
        user.phone = phone
        changed.append("phone")
    if not user.email:
        user.email = f"{user.username}@qingshui.example"
        changed.append("email")
    if not user.notify_by:
        user.notify_by = ["email"]
        changed.append("notify_by")
    if changed:
        user.save(update_fields=changed)


def _rate_past_months(township: Township, start: datetime, end: datetime, seed: str) -> int:
    """以下评上: the township's supervisor rates each department that served it in each full
    month of the past, on the township's criteria, through the assessment's own service, on the
    clock of the third day of the next month (10:00) when that is in the past too. Returns the
    ratings given."""
    from supervision import assessment

    rater, _created = User.objects.get_or_create(
        username=RATER_USERNAME,
        defaults={
            "role": User.Role.SUPERVISOR,
            "township": township,
            "last_name": "周",
            "first_name": "建国",
            "password": make_password(None),
        },
    )
    rng = random.Random(f"ratings-{seed}")
    criteria = assessment.criteria_for(township)
    month = assessment.period_start_of(MONTH, start.astimezone(township.zone).date())
    if localtime.day_start(township, month) < start:
        month = assessment.period_end(MONTH, month)  # only whole months
    given = 0
    while True:
        after = assessment.period_end(MONTH, month)
        rated_at = localtime.day_start(township, after) + RATED_AFTER
        if rated_at > end:
            return given
        begin, until = assessment.bounds(township, MONTH, month)
        served = stats.department_table(township_id=township.pk, start=begin, end=until)
        codes = [row.code for row in served if row.received]
        departments = Department.objects.filter(code__in=codes).order_by("code")
        for n, department in enumerate(departments):
            # Most departments cooperate well; a mark in the 60s now and then.
            marks = {c.pk: rng.choice((95, 92, 90, 88, 85, 85, 80, 78, 65)) for c in criteria}
            with clock.frozen(at=rated_at + timedelta(minutes=3 * n)):
                assessment.rating_give(
                    actor=rater,
                    township=township,
                    department=department,
                    period=MONTH,
                    period_start=month,
                    marks=marks,
                    # Told at the time, in the past: nobody is paged now about last month.
                    notify=False,
                )
            given += 1
        month = after


def _refresh_aggregates() -> None:
    """TimescaleDB's continuous aggregates over the new readings (a refresh cannot run inside
    a transaction, so not in one of a caller's either); plain PostgreSQL has none."""
    if connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        if cursor.fetchone() is None:
            return
    from streams.timeseries import MINUTE_AGGREGATE

    with connection.cursor() as cursor:
        cursor.execute(f"CALL refresh_continuous_aggregate('{MINUTE_AGGREGATE}', NULL, NULL)")
