"""Replay benchmark (``make bench-replay``): what a supervisor waits for on a township with a
year behind it: an incident's timeline page, one frame of its replay, and the department
table of the last 30 days.

Data, generated once into the database ``whistle_bench_replay`` on DATABASE_URL's server (the
demo township ``qingshui`` seeded there, plus generated sensors and users), for the year that
ends at the moment of generation:

- readings: every sensor of the township (34 of the demo + 346 generated = 380, six metrics)
  reports its metric every 20 minutes: ~9.99 million rows, written by ``INSERT … SELECT`` over
  ``generate_series`` in PostgreSQL (no row crosses the wire), ten chunks with progress lines;
- 20,000 incidents spread over the year (more by day than by night), each opened from 1-3
  alerts raised by the township's rules (or from a grid officer's report for matters no rule
  watches), each with a whistle summoning 1-4 departments from the responsibility list; every
  department has its own pace, so some check in late (overdue, reminded, escalated to level 1
  or 2) and a few never do and are released; most incidents are closed with their 631 level,
  the last days' are still being handled;
- 40,000 alerts that never became incidents (dismissed by the duty officer or cleared by the
  sensor or device), so a replay frame's alert queue is as full as the live board's;
- one incident whose timeline has 10,000 entries: a methane alarm on the restaurant street
  that repeated every ~2.5 s through a night before the morning's emergency whistle (with
  the sensor's readings at that cadence);
- every timeline row the services would have written, with their shapes
  (``incidents.services``, ``alerts.services``), copied in with COPY.

A run that finds the data of this ``VERSION`` skips generation (``--regenerate`` forces it).
Generation takes about a minute and a half on 2 cores; ``VACUUM ANALYZE`` ends it, as
autovacuum would long have done on a year-old database.

Measured in this process through Django's test client (the whole request: middleware, session,
queries, template rendering), each ``--repeat`` times after two warm-ups, as a supervisor:

1. timeline: ``GET /supervise/qingshui/incidents/<id>/`` of the 10,000-entry incident. Floors:
   ``count(*)`` of those 10,000 rows, and fetching them raw, through the same connection.
2. frame: ``GET …/incidents/<id>/replay/frame?at=…`` of that incident at the middle of its span,
   and of 5 ordinary incidents at the middle of theirs. When the view is not there (404) it is
   reported missing and not measured.
3. department stats: ``supervision.stats.department_table`` over the 30 days that end
   where the data ends, called directly; for information, the whole performance page for the
   same 30 days. Floor: counting the period's summonses with the same joins.

4. case library: ``GET /cases/?…`` as the township's duty officer, a query for each filter
   (text of two Chinese characters, a phrase and a Latin word; category, grid, township,
   department, status, period, 631 level, satisfaction, reopened, a rare combination, the second
   page), each required to find incidents. The figure is the filter with the largest p95; for
   information, the CSV of all 20,000 incidents.

5. trends (研判): ``GET /supervise/qingshui/trends/`` as a supervisor for the year that ends
   where the data ends, by month (matters per category and grid with last year's, hour of the
   day, hot spots); for information, the same by week.

A floor for every request: ``GET /healthz`` through the same client.

    python -m bench.replay [--repeat 20] [--regenerate] [--profile] [--database NAME]

Progress on stderr (``[bench]``); results on stdout, each next to its target; the last line is
``replay: timeline <a> ms, frame <b> ms, department stats <c> ms, cases <d> ms, trends <e> ms``,
each the p95 of
its samples (frame: the larger p95 of the big incident's and the ordinary incidents'; ``n/a``
when the view is missing; cases: the worst filter's, also told in a line of its own
``cases: p95 <d> ms (worst filter <name>) over <n> queries; ceiling 300 ms``). Targets: timeline
< 300 ms, frame < 100 ms, department stats < 1 s, case library < 300 ms, trends < 300 ms. The
exit status is 0
whether targets are met or not; 1 only when something could not be measured (or a case-library
filter found nothing).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import json
import math
import os
import pstats
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from bench.common import code_state, database_url, prepare_demo

DATABASE = "whistle_bench_replay"
# Bump when the generated data changes shape: a run then regenerates instead of reusing.
# 3: alerts' closed_at; 4: satisfaction, reopenings, finishing and intake columns; 5: the
# whistles' escalation chains and the summonses' place in them.
VERSION = 5
TOWNSHIP = "qingshui"
YEAR = timedelta(days=365)
READING_EVERY = timedelta(minutes=20)
INCIDENTS = 20_000
LONE_ALERTS = 40_000
BIG_TIMELINE = 10_000
ORDINARY_FRAMES = 5
STATS_DAYS = 30
TARGET_MS = {
    "timeline": 300.0,
    "frame": 100.0,
    "department stats": 1000.0,
    "cases": 300.0,
    "trends": 300.0,
}
# Generated sensors per type, on top of the demo's 34: 380 in all, ~10 million readings a year.
EXTRA_SENSORS = {
    "water_level": 60,
    "rainfall": 30,
    "smoke": 120,
    "gas": 70,
    "aqi": 40,
    "temperature": 26,
}
SENSOR_NAMES = {
    "water_level": ("水位计", "level gauge"),
    "rainfall": ("雨量计", "rain gauge"),
    "smoke": ("烟感", "smoke detector"),
    "gas": ("燃气探测器", "gas detector"),
    "aqi": ("空气质量监测", "air quality monitor"),
    "temperature": ("温度监测", "temperature monitor"),
}
# Incidents per category over the year (relative), and months when a category peaks.
CATEGORY_WEIGHTS = {
    "parking": 16,
    "garbage": 15,
    "unlicensed-business": 10,
    "dispute": 9,
    "illegal-construction": 8,
    "public-order": 7,
    "rental-housing": 5,
    "fire": 5,
    "flood": 5,
    "straw-burning": 4,
    "illegal-mining": 4,
    "production-safety": 4,
    "gas-leak": 3,
    "air-quality": 3,
    "device-fault": 2,
}
PEAK_MONTHS = {"flood": {6, 7, 8}, "straw-burning": {5, 6, 10, 11}, "fire": {1, 2, 3, 4}}
# Local hour of day → relative activity: a township is busy by day, quiet at night.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 9, 9, 9, 8, 8, 9, 9, 9, 8, 7, 6, 5, 3, 2, 1)
# What a grid officer files for the matters no camera or sensor rule watches.
REPORTS = {
    "dispute": ("邻里因宅基地边界发生纠纷，双方情绪激动", "村民因土地流转租金问题上访"),
    "rental-housing": ("出租房屋群租，消防通道堵塞", "出租大院私拉电线给电动车充电"),
    "production-safety": ("小作坊违规存放易燃物品", "仓库未配备灭火器，安全出口上锁"),
    "illegal-construction": ("村民在自家院内违规加盖二层", "临街商铺私搭彩钢板棚"),
    "air-quality": ("工地扬尘严重，裸土未覆盖", "小区附近有人焚烧垃圾，烟气刺鼻"),
    "unlicensed-business": ("路口有无照流动摊贩聚集",),
    "public-order": ("夜间烧烤摊噪音扰民",),
    "garbage": ("河道边堆放大量建筑垃圾",),
}
FEEDBACK = (
    "已处置完毕，现场恢复正常。",
    "相关部门联合执法，责令整改，已复查合格。",
    "已约谈当事人并签订承诺书，网格员持续跟踪。",
    "隐患已消除，纳入网格日常巡查。",
)
DISMISS_REASONS = ("误报", "重复报警", "现场核实无异常", "已劝离")
DONE_NOTES = ("已处置完毕", "现场已清理", "已责令整改", "")
RELEASE_REASONS = ("不属于本部门职责，改由其他部门处置", "现场已由先到部门处置完毕")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN_NAMES = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "军", "杰", "涛", "明", "超", "霞")


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- what the generation draws from -----------------------------------------------------------


@dataclass(frozen=True)
class Place:
    device_id: int | None
    code: str
    grid_id: int | None
    latitude: float | None
    longitude: float | None
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    pk: int
    name: str
    kind: str
    category: str
    severity: str
    labels: tuple[str, ...]
    metric: str
    threshold: float | None
    clear_at: float | None
    device_kinds: tuple[str, ...]
    device_id: int | None


@dataclass
class World:
    township_id: int
    zone: ZoneInfo
    report_within: dict[str, timedelta]
    duty_id: int
    categories: dict[str, int]
    departments: dict[int, str]  # id → code
    members: dict[int, list[int]]  # department id → its members' user ids
    responsible: dict[str, list[int]]  # category code → department ids, lead first
    rules: list[Rule]
    cameras: list[Place]
    gateways: list[Place]
    sensors: dict[str, list[Place]]  # metric → sensors
    grids: list[Place]  # a point inside each comprehensive grid
    reporters: dict[int, int]  # grid id → its grid officer
    pace: dict[int, float] = field(default_factory=dict)  # department → median check-in share


def _inside(lon: float, lat: float, ring: list[list[float]]) -> bool:
    """Ray casting: is the point inside the polygon ring?"""
    found = False
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        if (y0 > lat) != (y1 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
            found = not found
    return found


def _point_in(
    rng: random.Random, ring: list[list[float]], holes: list[list[list[float]]]
) -> tuple[float, float]:
    """A random point inside ``ring`` and outside every hole (the dedicated grids)."""
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    for _ in range(1000):
        lon, lat = rng.uniform(min(lons), max(lons)), rng.uniform(min(lats), max(lats))
        if _inside(lon, lat, ring) and not any(_inside(lon, lat, h) for h in holes):
            return round(lon, 6), round(lat, 6)
    raise RuntimeError("no point found inside a grid")


def seed_extra(rng: random.Random) -> None:
    """The generated sensors (each placed inside a comprehensive grid, clear of the dedicated
    ones), a member for each department, a grid officer for each grid. Idempotent."""
    from django.contrib.auth.hashers import make_password

    from command.org.models import Department, Device, Grid, Township, User
    from demo.data import SENSOR_PROFILES

    township = Township.objects.get(code=TOWNSHIP)
    grids = list(Grid.objects.filter(township=township).order_by("code"))
    comprehensive = [g for g in grids if g.kind == Grid.Kind.COMPREHENSIVE]
    holes = [g.polygon["coordinates"][0] for g in grids if g.kind == Grid.Kind.DEDICATED]
    gateways = list(Device.objects.filter(township=township, kind=Device.Kind.GATEWAY))
    existing = set(Device.objects.filter(township=township).values_list("code", flat=True))
    devices = []
    for sensor_type, count in EXTRA_SENSORS.items():
        profile = SENSOR_PROFILES[sensor_type]
        zh, en = SENSOR_NAMES[sensor_type]
        for n in range(1, count + 1):
            code = f"rp-{sensor_type.replace('_', '')}-{n:03d}"
            grid = rng.choice(comprehensive)
            lon, lat = _point_in(rng, grid.polygon["coordinates"][0], holes)
            if code in existing:
                continue
            gateway = min(gateways, key=lambda g: abs((g.longitude or 0) - lon))
            devices.append(
                Device(
                    township=township,
                    code=code,
                    kind=Device.Kind.SENSOR,
                    sensor_type=sensor_type,
                    name=f"{grid.name}{zh}{n:03d}",
                    name_en=f"{grid.name_en} {en} {n:03d}",
                    grid=grid,
                    gateway=gateway,
                    latitude=lat,
                    longitude=lon,
                    metadata={
                        "metric": profile["metric"],
                        "unit": profile["unit"],
                        "thresholds": dict(profile["thresholds"]),
                    },
                    online=True,
                )
            )
    Device.objects.bulk_create(devices)
    # Accounts that never log in: they are who acted in the generated history.
    unusable = make_password(None)
    users = []
    taken = set(User.objects.filter(username__startswith="rp-").values_list("username", flat=True))
    for department in Department.objects.all():
        for n in (1, 2):
            username = f"rp-{department.code}-{n}"
            if username not in taken:
                users.append(
                    User(
                        username=username,
                        password=unusable,
                        role=User.Role.DEPARTMENT_MEMBER,
                        department=department,
                        last_name=rng.choice(SURNAMES),
                        first_name="".join(rng.choices(GIVEN_NAMES, k=rng.choice((1, 2)))),
                    )
                )
    for grid in comprehensive:
        username = f"rp-grid-{grid.code.rsplit('-', 1)[-1]}"
        if username not in taken:
            users.append(
                User(
                    username=username,
                    password=unusable,
                    role=User.Role.GRID_OFFICER,
                    township=township,
                    last_name=rng.choice(SURNAMES),
                    first_name="".join(rng.choices(GIVEN_NAMES, k=2)),
                )
            )
    User.objects.bulk_create(users)


def load_world() -> World:
    from alerts.models import AlertRule
    from command.org.models import (
        Category,
        Department,
        Device,
        Grid,
        Responsibility,
        Township,
        User,
    )
    from incidents.services.whistles import report_within

    township = Township.objects.get(code=TOWNSHIP)
    kinds = ("emergency", "general", "tough")
    members: dict[int, list[int]] = {}
    for user_id, department_id in User.objects.filter(
        username__startswith="rp-", department__isnull=False
    ).values_list("pk", "department_id"):
        members.setdefault(department_id, []).append(user_id)
    responsible: dict[str, list[int]] = {}
    for line in Responsibility.objects.select_related("category").order_by(
        "category__code", "-lead", "department__code"
    ):
        responsible.setdefault(line.category.code, []).append(line.department_id)
    rules = [
        Rule(
            r.pk,
            r.name,
            r.kind,
            r.category.code,
            r.severity,
            tuple(r.labels or ()),
            r.metric,
            r.threshold,
            r.clear_at,
            tuple(r.device_kinds or ()),
            r.device_id,
        )
        for r in AlertRule.objects.filter(township=township, enabled=True).select_related(
            "category"
        )
    ]
    cameras, gateways = [], []
    sensors: dict[str, list[Place]] = {}
    for d in Device.objects.filter(township=township).order_by("code"):
        place = Place(
            d.pk, d.code, d.grid_id, d.latitude, d.longitude, tuple(d.metadata.get("zones", ()))
        )
        if d.kind == Device.Kind.CAMERA:
            cameras.append(place)
        elif d.kind == Device.Kind.GATEWAY:
            gateways.append(place)
        else:
            sensors.setdefault(d.metadata.get("metric", ""), []).append(place)
    grids = []
    for g in Grid.objects.filter(township=township, kind=Grid.Kind.COMPREHENSIVE).order_by("code"):
        ring = g.polygon["coordinates"][0]
        lon = sum(p[0] for p in ring[:-1]) / (len(ring) - 1)
        lat = sum(p[1] for p in ring[:-1]) / (len(ring) - 1)
        grids.append(Place(None, g.code, g.pk, round(lat, 6), round(lon, 6)))
    reporters = {}
    by_username = dict(
        User.objects.filter(username__startswith="rp-grid-").values_list("username", "pk")
    )
    for grid in grids:
        reporters[grid.grid_id] = by_username[f"rp-grid-{grid.code.rsplit('-', 1)[-1]}"]
    return World(
        township_id=township.pk,
        zone=ZoneInfo(township.time_zone),
        report_within={kind: report_within(township, kind) for kind in kinds},
        duty_id=User.objects.get(username="duty").pk,
        categories=dict(Category.objects.values_list("code", "pk")),
        departments=dict(Department.objects.values_list("pk", "code")),
        members=members,
        responsible=responsible,
        rules=rules,
        cameras=cameras,
        gateways=gateways,
        sensors=sensors,
        grids=grids,
        reporters=reporters,
    )


# --- readings ---------------------------------------------------------------------------------

# One sensor's year in one statement: daily and seasonal cycles around a base taken from its
# warning threshold, plus noise, rounded to what a sensor reports. Rows come out per device in
# time order, so the primary key's B-tree is filled left to right.
_READINGS = """
INSERT INTO streams_reading (time, device_id, metric, value)
SELECT s.t, d.id, d.metric, round(1000 * CASE d.metric
    WHEN 'water_level' THEN d.base * (0.55 + 0.12 * greatest(0, sin(2 * pi() * (e.x / 31557600.0
        - 0.35))) + 0.02 * sin(2 * pi() * e.x / 86400 + d.phase) + 0.02 * random())
    WHEN 'rainfall_mm_h' THEN greatest(0, 80 * power(random(), 14) - 1)
    WHEN 'smoke_density' THEN d.base * (0.05 + 0.1 * random())
    WHEN 'methane_ppm' THEN 6 + 3 * sin(2 * pi() * e.x / 86400 + d.phase) + 4 * random()
    WHEN 'pm25' THEN 55 + 30 * cos(2 * pi() * (e.x / 31557600.0 - 0.03))
        + 15 * sin(2 * pi() * e.x / 86400 + d.phase) + 20 * random()
    WHEN 'temperature' THEN 22 - 12 * cos(2 * pi() * (e.x / 31557600.0 - 0.04))
        + 6 * sin(2 * pi() * e.x / 86400 + d.phase) + random()
    ELSE random() END) / 1000
  FROM unnest(%(ids)s::bigint[], %(metrics)s::text[], %(bases)s::float8[], %(phases)s::float8[],
              %(offsets)s::int[]) AS d(id, metric, base, phase, offset_s)
 CROSS JOIN LATERAL generate_series(%(start)s::timestamptz + make_interval(secs => d.offset_s),
                                    %(end)s::timestamptz, %(every)s::interval) AS s(t)
 CROSS JOIN LATERAL (SELECT extract(epoch FROM s.t)::float8) AS e(x)
"""


def load_readings(conn: Any, world: World, start: datetime, end: datetime) -> int:
    sensors = [
        (place, metric) for metric, places in sorted(world.sensors.items()) for place in places
    ]
    from command.org.models import Device

    thresholds = {
        d.pk: float(d.metadata.get("thresholds", {}).get("warning") or 1)
        for d in Device.objects.filter(pk__in=[p.device_id for p, _m in sensors])
    }
    rng = random.Random(f"readings-{VERSION}")
    rows = [
        (
            place.device_id,
            metric,
            thresholds[place.device_id],
            rng.uniform(0, 2 * math.pi),
            # Sensors do not all report on the same second.
            rng.randrange(int(READING_EVERY.total_seconds())),
        )
        for place, metric in sensors
    ]
    chunks = 10
    size = -(-len(rows) // chunks)
    written = 0
    started = time.monotonic()
    for n in range(0, len(rows), size):
        chunk = rows[n : n + size]
        with conn.transaction():
            cursor = conn.execute(
                _READINGS,
                {
                    "ids": [r[0] for r in chunk],
                    "metrics": [r[1] for r in chunk],
                    "bases": [r[2] for r in chunk],
                    "phases": [r[3] for r in chunk],
                    "offsets": [r[4] for r in chunk],
                    "start": start,
                    "end": end,
                    "every": READING_EVERY,
                },
            )
            written += cursor.rowcount
        progress(
            f"readings: {written:,} rows ({n + len(chunk)}/{len(rows)} sensors),"
            f" {time.monotonic() - started:.0f} s"
        )
    return written


# --- incidents, alerts and their timeline -----------------------------------------------------


def _told(detail: dict) -> dict:
    """What ``alerts.services.alert_raise`` copies from an alert's detail into its timeline
    rows (what crossed the line)."""
    from alerts.services import _TOLD

    return {k: v for k, v in detail.items() if k in _TOLD}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


@dataclass
class Tables:
    """Rows to COPY, with ids given here (the tables are emptied first, identities restarted)."""

    township_id: int
    timeline: list[tuple] = field(default_factory=list)
    alerts: list[tuple] = field(default_factory=list)
    incidents: list[tuple] = field(default_factory=list)
    whistles: list[tuple] = field(default_factory=list)
    summonses: list[tuple] = field(default_factory=list)
    reports: list[tuple] = field(default_factory=list)
    readings: list[tuple] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)

    def new_id(self, table: str) -> int:
        self.ids[table] = self.ids.get(table, 0) + 1
        return self.ids[table]

    def entry(
        self,
        at: datetime,
        subject_type: str,
        subject_id: int,
        action: str,
        source: str,
        actor: int | None = None,
        before: dict | None = None,
        after: dict | None = None,
    ) -> None:
        self.timeline.append(
            (
                uuid.uuid4(),
                at,
                self.township_id,
                subject_type,
                subject_id,
                action,
                actor,
                source,
                _json(before),
                _json(after),
            )
        )


MS = timedelta(milliseconds=1)
# (time, subject type, subject id, action, source, actor, before, after): one timeline row.
Event = tuple[datetime, str, int, str, str, int | None, dict | None, dict | None]


def _entry(
    at: datetime,
    subject_type: str,
    subject_id: int,
    action: str,
    source: str,
    actor: int | None,
    before: dict | None,
    after: dict | None,
) -> Event:
    return (at, subject_type, subject_id, action, source, actor, before, after)


@dataclass
class AlertPlan:
    """What a rule (or a report) would raise: the fields of ``alerts.rules.AlertSpec``."""

    category: str
    severity: str
    source: str
    title: str
    dedupe_key: str
    place: Place
    details: Callable[[datetime, int], dict]  # the detail of the n-th occurrence at a time
    report: int | None = None


class Generator:
    def __init__(self, world: World, tables: Tables, end: datetime, seed: str) -> None:
        self.world = world
        self.tables = tables
        self.end = end
        self.rng = random.Random(seed)
        # Callbacks draw from their own generator: the rest of the year stays as it was.
        self.callback_rng = random.Random(f"callback-{seed}")
        self.by_category: dict[str, list[Rule]] = {}
        for rule in world.rules:
            self.by_category.setdefault(rule.category, []).append(rule)
        self.lone_rules = [r for r in world.rules if self._places(r)]
        rng = random.Random(f"pace-{VERSION}")
        # Each department has its own pace: the median share of the deadline it takes to be on
        # site. The slow ones are overdue a sixth of the time, the fast ones almost never.
        world.pace = {d: rng.uniform(0.25, 0.6) for d in sorted(world.departments)}
        self.open_keys: set[str] = set()

    # - moments -

    def moment(self, start: datetime, end: datetime, category: str | None = None) -> datetime:
        """A time in [start, end): busier by day, and in a category's season."""
        rng = self.rng
        days = (end - start).days + 2  # the partial days at both ends too
        while True:
            day = start + timedelta(days=rng.randrange(days))
            if category in PEAK_MONTHS:
                local_month = day.astimezone(self.world.zone).month
                if local_month not in PEAK_MONTHS[category] and rng.random() < 0.6:
                    continue
            local = day.astimezone(self.world.zone).replace(hour=0, minute=0, second=0)
            hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
            at = local + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
            if start <= at < end:
                return at.astimezone(UTC)

    # - alerts -

    def _places(self, rule: Rule) -> list[Place]:
        world = self.world
        if rule.device_id:
            return [p for p in world.cameras if p.device_id == rule.device_id]
        if rule.kind == "camera_label":
            return world.cameras
        if rule.kind in ("threshold", "rate_of_change"):
            return world.sensors.get(rule.metric, [])
        if rule.kind == "device_offline":
            return [
                *(world.cameras if "camera" in rule.device_kinds else []),
                *(world.gateways if "gateway" in rule.device_kinds else []),
            ]
        return []

    def rule_plan(self, rule: Rule) -> AlertPlan:
        rng = self.rng
        place = rng.choice(self._places(rule))
        key = f"rule:{rule.pk}:{place.device_id}"
        if rule.kind == "camera_label":
            label = rng.choice(rule.labels)
            zones = list(place.zones[:1])

            def camera(at: datetime, n: int) -> dict:
                return {
                    "label": label,
                    "score": round(rng.uniform(0.62, 0.97), 2),
                    "zones": zones,
                    "event_id": f"{at.timestamp():.6f}-{rng.getrandbits(24):06x}",
                    "rule": rule.pk,
                }

            title = f"{rule.name}: {label} @ {place.code}"
            return AlertPlan(rule.category, rule.severity, "camera", title, key, place, camera)
        if rule.kind == "device_offline":
            title = f"{rule.name}: {place.code}"
            return AlertPlan(
                rule.category,
                rule.severity,
                "device",
                title,
                key,
                place,
                lambda at, n: {"label": "offline", "rule": rule.pk},
            )
        threshold = rule.threshold or 1.0
        first = round(threshold * rng.uniform(1.02, 1.3), 2)

        def sensor(at: datetime, n: int) -> dict:
            value = first if n == 1 else round(threshold * rng.uniform(1.01, 1.5), 2)
            return {"metric": rule.metric, "value": value, "rule": rule.pk, "threshold": threshold}

        title = f"{rule.name}: {rule.metric} {first:g} @ {place.code}"
        return AlertPlan(rule.category, rule.severity, "sensor", title, key, place, sensor)

    def report_plan(self, category: str, at: datetime) -> AlertPlan:
        rng = self.rng
        world = self.world
        grid = rng.choice(world.grids)
        description = rng.choice(REPORTS.get(category, ("网格员巡查发现问题，请求处置",)))
        report = self.tables.new_id("report")
        reporter = world.reporters[grid.grid_id]
        username = f"rp-grid-{grid.code.rsplit('-', 1)[-1]}"
        lat = round((grid.latitude or 0) + rng.uniform(-0.002, 0.002), 6)
        lon = round((grid.longitude or 0) + rng.uniform(-0.002, 0.002), 6)
        place = Place(None, grid.code, grid.grid_id, lat, lon)
        urgent = category in ("fire", "gas-leak", "flood", "production-safety")
        plan = AlertPlan(
            category,
            "critical" if urgent else "major",
            "report",
            description,
            f"report:{report}",
            place,
            lambda at, n: {"report": report, "reporter": username},
            report=report,
        )
        self.tables.reports.append(
            [
                report,
                description,
                lat,
                lon,
                at,
                None,  # the alert, set when it is raised
                world.categories[category],
                grid.grid_id,
                reporter,
                world.township_id,
                "[]",
                "grid",  # filed by a grid officer on patrol: no caller, no ticket
                "",
                "",
                "",
            ]
        )
        return plan

    def alert(
        self,
        plan: AlertPlan,
        first_seen: datetime,
        last_until: datetime,
        events: list[Event],
        *,
        repeats: int,
        ack_at: datetime | None,
    ) -> tuple[int, dict, datetime, str]:
        """Raise ``plan`` at ``first_seen`` and repeat it up to ``repeats`` times before
        ``last_until``, acknowledged at ``ack_at``; returns (id, last detail, last seen, status)."""
        rng = self.rng
        alert_id = self.tables.new_id("alert")
        if plan.report is not None:
            self.tables.reports[-1][5] = alert_id
        status = "new"
        detail = plan.details(first_seen, 1)
        events.append(
            (
                first_seen,
                "alert",
                alert_id,
                "alert.raised",
                "web" if plan.report else "mqtt",
                None,
                None,
                {"status": status, "count": 1, "severity": plan.severity, **_told(detail)},
            )
        )
        count, seen, at = 1, first_seen, first_seen
        for _ in range(repeats):
            at += timedelta(seconds=rng.uniform(5, 90))
            if at >= last_until:
                break
            if ack_at is not None and status == "new" and at > ack_at:
                status = self._acknowledge(alert_id, ack_at, events)
            count += 1
            seen = at
            detail = plan.details(at, count)
            after = {"status": status, "count": count, "severity": plan.severity, **_told(detail)}
            events.append((at, "alert", alert_id, "alert.updated", "mqtt", None, None, after))
        if ack_at is not None and status == "new" and ack_at < last_until:
            status = self._acknowledge(alert_id, ack_at, events)
        # Written by alert_row() once the caller knows how the alert ended.
        self._alert_row = (alert_id, plan, count, first_seen, seen, detail)
        return alert_id, detail, seen, status

    def _acknowledge(self, alert_id: int, at: datetime, events: list[Event]) -> str:
        before, after = {"status": "new"}, {"status": "acknowledged"}
        actor = self.world.duty_id
        events.append((at, "alert", alert_id, "alert.acknowledged", "web", actor, before, after))
        return "acknowledged"

    def alert_row(self, status: str, incident: int | None) -> None:
        alert_id, plan, count, first_seen, last_seen, detail = self._alert_row
        world = self.world
        self.tables.alerts.append(
            (
                alert_id,
                plan.severity,
                status,
                plan.source,
                plan.title[:200],
                plan.dedupe_key,
                count,
                first_seen,
                last_seen,
                _json(detail),
                world.categories[plan.category],
                plan.place.device_id,
                plan.place.grid_id,
                world.township_id,
                incident,
            )
        )

    def lone_alert(self) -> None:
        """An alert that never became an incident: dismissed, cleared, or still open."""
        rng = self.rng
        rule = rng.choice(self.lone_rules)
        plan = self.rule_plan(rule)
        start = self.end - YEAR
        first_seen = self.moment(start, self.end)
        events: list[Event] = []
        if plan.source == "camera":
            ends = first_seen + timedelta(minutes=rng.uniform(2, 40))
            ack = first_seen + (ends - first_seen) * rng.uniform(0.1, 0.6)
        else:
            ends = first_seen + timedelta(minutes=rng.uniform(10, 180))
            ack = None
        repeats = min(int(rng.expovariate(1 / 3)), 60)
        alert_id, _detail, _seen, status = self.alert(
            plan,
            first_seen,
            min(ends, self.end),
            events,
            repeats=repeats,
            ack_at=ack if ack and rng.random() < 0.5 else None,
        )
        if ends <= self.end:
            if plan.source == "camera":
                reason = rng.choice(DISMISS_REASONS)
                after = {"status": "dismissed", "dismiss_reason": reason}
                before = {"status": status}
                events.append(
                    _entry(
                        ends,
                        "alert",
                        alert_id,
                        "alert.dismissed",
                        "web",
                        self.world.duty_id,
                        before,
                        after,
                    )
                )
                self._alert_row[5].update(dismiss_reason=reason)
                status = "dismissed"
            else:
                reason = (
                    "device back online"
                    if plan.source == "device"
                    else f"{rule.metric} back to {(rule.clear_at or 0) * 0.9:g}"
                )
                after = {"status": "cleared", "reason": reason}
                events.append(
                    _entry(
                        ends,
                        "alert",
                        alert_id,
                        "alert.cleared",
                        "mqtt",
                        None,
                        {"status": status},
                        after,
                    )
                )
                self._alert_row[5].update(cleared=reason)
                status = "cleared"
        elif plan.dedupe_key in self.open_keys:
            return  # one open alert per key: the unique index would refuse a second
        else:
            self.open_keys.add(plan.dedupe_key)
        self.alert_row(status, None)
        self._emit(events)

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            if event[0] <= self.end:
                self.tables.entry(*event)

    # - incidents -

    def incident(self, opened_at: datetime, category: str) -> None:
        rng = self.rng
        world = self.world
        tables = self.tables
        incident_id = tables.new_id("incident")
        events: list[Event] = []
        duty = world.duty_id
        rules = [r for r in self.by_category.get(category, []) if self._places(r)]
        if rules:
            plans = [self.rule_plan(rng.choice(rules))]
            plans += [
                self.rule_plan(rng.choice(rules))
                for _ in range(rng.choices((0, 1, 2), (75, 18, 7))[0])
            ]
        else:
            plans = [self.report_plan(category, opened_at - timedelta(minutes=rng.uniform(3, 40)))]
        alerts = []
        for plan in plans:
            if plan.report:
                first_seen = tables.reports[-1][4]
            else:
                first_seen = opened_at - timedelta(minutes=rng.uniform(1, 30))
            ack = first_seen + (opened_at - first_seen) * rng.uniform(0.05, 0.5)
            alert_id, _detail, _seen, status = self.alert(
                plan,
                first_seen,
                opened_at - timedelta(seconds=5),
                events,
                repeats=0 if plan.report else min(int(rng.expovariate(1 / 4)), 40),
                ack_at=ack if rng.random() < 0.4 else None,
            )
            self.alert_row("escalated", incident_id)
            alerts.append((alert_id, status))
        first = plans[0]
        severity = min((p.severity for p in plans), key=_severity_rank)
        events.append(
            _entry(
                opened_at,
                "incident",
                incident_id,
                "incident.opened",
                "web",
                duty,
                None,
                {"status": "open", "alerts": [a for a, _s in alerts]},
            )
        )
        # The alerts' escalation shares the opening's moment (as incident_open writes it).
        for alert_id, status in alerts:
            events.append(
                _entry(
                    opened_at,
                    "alert",
                    alert_id,
                    "alert.escalated",
                    "web",
                    duty,
                    {"status": status},
                    {"status": "escalated", "incident": incident_id},
                )
            )
        kind = self.whistle_kind(category, severity)
        blown_at = opened_at + timedelta(
            minutes=rng.uniform(1, 8) if kind == "emergency" else rng.uniform(3, 40)
        )
        outcome = self.whistle(incident_id, category, kind, blown_at, first.place, events)
        resolved_at = closed_at = None
        settled = feedback = ""
        if outcome is not None:
            resolved_at = outcome + timedelta(minutes=rng.uniform(5, 90))
            closed_at = resolved_at + timedelta(minutes=rng.uniform(10, 30 * 60))
            settled = rng.choices(("grid", "township", "county"), (60, 30, 10))[0]
            feedback = rng.choice(FEEDBACK)
        closing = {"feedback": feedback, "settled_level": settled}
        status = self.incident_status(incident_id, events, resolved_at, closed_at, closing)
        kept = [e for e in events if e[0] <= self.end]
        satisfaction, reopened = "", 0
        if status != "closed":
            closed_at = None
            settled = feedback = ""
            if status != "resolved":
                resolved_at = None
        else:
            # 回访: most callers are satisfied; a few were not and the matter was reopened once.
            satisfaction = self.callback_rng.choices(
                ("satisfied", "basic", "unsatisfied", ""), (70, 15, 5, 10)
            )[0]
            reopened = int(satisfaction == "unsatisfied" and self.callback_rng.random() < 0.5)
        tables.incidents.append(
            (
                incident_id,
                first.title[:200],
                "",
                severity,
                status,
                first.place.latitude,
                first.place.longitude,
                opened_at,
                resolved_at,
                closed_at,
                feedback,
                settled,
                world.categories[category],
                first.place.grid_id,
                duty,
                world.township_id,
                "[]",
                satisfaction,
                reopened,
                "",
            )
        )
        for event in kept:
            tables.entry(*event)

    def incident_status(
        self,
        incident_id: int,
        events: list[Event],
        resolved_at: datetime | None,
        closed_at: datetime | None,
        closing: dict[str, str] | None = None,
    ) -> str:
        """Resolve and close (with ``closing``: feedback and 631 level) at the times given;
        returns the incident's status at the end of the data."""
        duty = self.world.duty_id
        if resolved_at is not None and closed_at is not None:
            last = max(
                (e for e in events if e[1] == "incident" and "status" in (e[7] or {})),
                key=lambda e: e[0],
            )
            before = last[7]["status"]
            events.append(
                _entry(
                    resolved_at,
                    "incident",
                    incident_id,
                    "incident.resolved",
                    "web",
                    duty,
                    {"status": before},
                    {"status": "resolved"},
                )
            )
            events.append(
                _entry(
                    closed_at,
                    "incident",
                    incident_id,
                    "incident.closed",
                    "web",
                    duty,
                    {"status": "resolved"},
                    {"status": "closed", **(closing or {})},
                )
            )
        status = "open"
        for event in sorted(events, key=lambda e: e[0]):
            if event[0] <= self.end and event[1] == "incident" and event[7]:
                status = event[7].get("status", status)
        return status

    def whistle_kind(self, category: str, severity: str) -> str:
        rng = self.rng
        if category in ("illegal-mining", "illegal-construction") and rng.random() < 0.4:
            return "tough"
        if severity == "critical":
            return rng.choices(("emergency", "general"), (80, 20))[0]
        if severity == "major":
            return rng.choices(("general", "emergency", "tough"), (75, 10, 15))[0]
        return rng.choices(("general", "tough"), (85, 15))[0]

    def whistle(
        self,
        incident_id: int,
        category: str,
        kind: str,
        blown_at: datetime,
        place: Place,
        events: list[Event],
        paces: dict[int, tuple[float, float | None]] | None = None,
    ) -> datetime | None:
        """Blow a whistle and play each summons out; returns when the last department was done
        or released (None if not all by the end of the data)."""
        from incidents.services.deadlines import DEFAULT_ESCALATION_POLICY

        rng = self.rng
        world = self.world
        tables = self.tables
        duty = world.duty_id
        within = world.report_within[kind]
        purpose = {
            "emergency": "emergency_response",
            "tough": rng.choice(("key_task", "joint_enforcement")),
            "general": rng.choices(("joint_enforcement", "key_task"), (60, 40))[0],
        }[kind]
        on_list = world.responsible.get(category, [])
        if paces is not None:
            departments = list(paces)
        else:
            wanted = rng.choices((1, 2, 3, 4), (35, 35, 20, 10))[0]
            departments = on_list[: max(1, min(wanted, len(on_list)))]
            if rng.random() < 0.05 or not departments:
                others = [d for d in world.departments if d not in departments]
                departments = [*departments[: max(0, len(departments) - 1)], rng.choice(others)]
        if blown_at > self.end:
            return None
        whistle_id = tables.new_id("whistle")
        tables.whistles.append(
            (
                whistle_id,
                kind,
                purpose,
                blown_at,
                within,
                _json(DEFAULT_ESCALATION_POLICY),
                "",
                duty,
                incident_id,
                None,
                "",  # not joint: the generated year has no joint whistles
                "[]",
                "[]",  # no escalation chain: the generated past pages nobody
            )
        )
        events.append(
            _entry(
                blown_at,
                "whistle",
                whistle_id,
                "whistle.blown",
                "web",
                duty,
                None,
                {"kind": kind, "purpose": purpose, "departments": departments},
            )
        )
        deadline = blown_at + within
        first_check_in: datetime | None = None
        finished: list[datetime] = []
        for department in departments:
            summons_id = tables.new_id("summons")
            events.append(
                _entry(
                    blown_at,
                    "summons",
                    summons_id,
                    "summons.notified",
                    "web",
                    duty,
                    None,
                    {"status": "notified", "deadline": deadline.isoformat()},
                )
            )
            if paces is not None:
                share, ack_share = paces[department]
                check_in = blown_at + within * share
                ack = None if ack_share is None else blown_at + within * ack_share
                never = False
            else:
                share = rng.lognormvariate(math.log(world.pace[department]), 0.5)
                never = rng.random() < 0.015
                check_in = blown_at + within * share
                ack = blown_at + within * rng.lognormvariate(math.log(0.04), 0.7)
            off_list = "" if department in on_list else "现场需要协助处置"
            member = rng.choice(world.members[department])
            end, row = self.summons(
                summons_id,
                kind,
                deadline,
                within,
                None if never else check_in,
                ack,
                member,
                place,
                events,
            )
            tables.summonses.append(
                (summons_id, *row, off_list, department, whistle_id, False, 0, 0, "", 0)
            )
            if row[3] is not None and (first_check_in is None or row[3] < first_check_in):
                first_check_in = row[3]
            finished.append(end)
        events.append(
            _entry(
                blown_at,
                "incident",
                incident_id,
                "incident.dispatched",
                "web",
                duty,
                {"status": "open"},
                {"status": "dispatched"},
            )
        )
        if first_check_in is not None:
            # On site at the moment of the first check-in, by whoever checked in.
            first = next(
                e for e in events if e[3] == "summons.checked_in" and e[0] == first_check_in
            )
            events.append(
                _entry(
                    first_check_in,
                    "incident",
                    incident_id,
                    "incident.on_site",
                    first[4],
                    first[5],
                    {"status": "dispatched"},
                    {"status": "on_site"},
                )
            )
        last = max(finished)
        return last if last <= self.end else None

    def summons(
        self,
        summons_id: int,
        kind: str,
        deadline: datetime,
        within: timedelta,
        check_in: datetime | None,
        ack: datetime | None,
        member: int,
        place: Place,
        events: list[Event],
    ) -> tuple[datetime, tuple]:
        """One summoned department from notification to done (or release); returns when it
        finished and its row's fields up to the end of the data."""
        rng = self.rng
        end = self.end
        source = rng.choices(("web", "api"), (70, 30))[0]
        status = "notified"
        acknowledged_at = checked_in_at = done_at = released_at = None
        lat = lon = None
        note = reason = ""
        overdue, level = False, 0
        if ack is not None and (check_in is None or ack < check_in):
            events.append(
                _entry(
                    ack,
                    "summons",
                    summons_id,
                    "summons.acknowledged",
                    source,
                    member,
                    {"status": "notified"},
                    {"status": "acknowledged"},
                )
            )
            if ack <= end:
                status, acknowledged_at = "acknowledged", ack
        remind = deadline - min(timedelta(minutes=10), within / 3)
        if check_in is None or check_in > remind:
            events.append(
                _entry(
                    remind,
                    "summons",
                    summons_id,
                    "summons.reminded",
                    "system",
                    None,
                    None,
                    {"deadline": deadline.isoformat()},
                )
            )
        policy = ((1, deadline, "township_supervisors"),)
        policy += ((2, deadline + timedelta(minutes=30), "district_supervisors"),)
        for step_level, at, notify in policy:
            if check_in is not None and check_in <= at:
                break
            if not overdue:
                events.append(
                    _entry(
                        at,
                        "summons",
                        summons_id,
                        "summons.overdue",
                        "system",
                        None,
                        None,
                        {"deadline": deadline.isoformat()},
                    )
                )
            events.append(
                _entry(
                    at + MS,
                    "summons",
                    summons_id,
                    "summons.escalated",
                    "system",
                    None,
                    {"level": level},
                    {"level": step_level, "notify": notify},
                )
            )
            if at <= end:
                overdue, level = True, step_level
        if check_in is None:
            released = deadline + timedelta(hours=rng.uniform(1, 6))
            reason = rng.choice(RELEASE_REASONS)
            events.append(
                _entry(
                    released,
                    "summons",
                    summons_id,
                    "summons.released",
                    "web",
                    self.world.duty_id,
                    {"status": status},
                    {"status": "released", "reason": reason},
                )
            )
            if released <= end:
                status, released_at = "released", released
            else:
                reason = ""
            finished = released
        else:
            lat = round((place.latitude or 40.24) + rng.uniform(-0.0005, 0.0005), 6)
            lon = round((place.longitude or 116.66) + rng.uniform(-0.0005, 0.0005), 6)
            on_time = check_in <= deadline
            events.append(
                _entry(
                    check_in,
                    "summons",
                    summons_id,
                    "summons.checked_in",
                    source,
                    member,
                    {"status": status},
                    {"status": "checked_in", "on_time": on_time},
                )
            )
            events[-1][7]["position"] = [lat, lon]
            # Time on site until done: a tough problem takes a working day, an emergency less
            # than an hour.
            hours = {"tough": 8.0, "general": 1.5, "emergency": 0.8}[kind]
            finished = check_in + timedelta(hours=rng.lognormvariate(math.log(hours), 0.6))
            note = rng.choice(DONE_NOTES)
            events.append(
                _entry(
                    finished,
                    "summons",
                    summons_id,
                    "summons.done",
                    source,
                    member,
                    {"status": "checked_in"},
                    {"status": "done", **({"note": note} if note else {})},
                )
            )
            if check_in <= end:
                status, checked_in_at = "checked_in", check_in
                acknowledged_at = acknowledged_at or check_in
            else:
                lat = lon = None
            if finished <= end:
                status, done_at = "done", finished
            else:
                note = ""
        row = (
            status,
            deadline,
            acknowledged_at,
            checked_in_at,
            lat,
            lon,
            done_at,
            note,
            released_at,
            reason,
            overdue,
            level,
            member if checked_in_at else None,
        )
        return finished, row

    # - the incident with 10,000 entries -

    def big_incident(self) -> tuple[int, datetime, datetime]:
        """A methane alarm on the restaurant street that repeats every ~2.5 s through a night;
        the duty officer acknowledges it, calls the gas company, and opens an incident with an
        emergency whistle in the morning. Returns (incident id, first entry, opened at)."""
        rng = self.rng
        world = self.world
        tables = self.tables
        rule = next(r for r in world.rules if r.metric == "methane_ppm")
        place = next(p for p in world.sensors["methane_ppm"] if p.code == "gas-04")
        night = (self.end - timedelta(days=45)).astimezone(world.zone)
        raised = night.replace(hour=1, minute=10, second=7, microsecond=0).astimezone(UTC)
        opened_at = raised + timedelta(hours=6, minutes=55)
        incident_id = tables.new_id("incident")
        duty = world.duty_id
        fire, emergency, yingji = (
            next(pk for pk, code in world.departments.items() if code == wanted)
            for wanted in ("fire-rescue", "emergency", "qs-yingji")
        )
        events: list[Event] = []
        # The morning: the whistle and each department's steps (one of them late).
        blown_at = opened_at + timedelta(minutes=4, seconds=12)
        paces = {fire: (0.45, 0.03), emergency: (0.7, 0.1), yingji: (1.2, 0.2)}
        done = self.whistle(incident_id, "gas-leak", "emergency", blown_at, place, events, paces)
        assert done is not None
        resolved_at = done + timedelta(minutes=18)
        closed_at = resolved_at + timedelta(hours=3, minutes=40)
        alert_id = tables.new_id("alert")
        events.append(
            _entry(
                opened_at,
                "incident",
                incident_id,
                "incident.opened",
                "web",
                duty,
                None,
                {"status": "open", "alerts": [alert_id]},
            )
        )
        events.append(
            _entry(
                opened_at,
                "alert",
                alert_id,
                "alert.escalated",
                "web",
                duty,
                {"status": "acknowledged"},
                {"status": "escalated", "incident": incident_id},
            )
        )
        feedback = "燃气公司更换老化阀门，复测浓度正常；餐饮商户已完成安全培训。"
        closing = {"feedback": feedback, "settled_level": "county"}
        self.incident_status(incident_id, events, resolved_at, closed_at, closing)
        ack_at = raised + timedelta(minutes=6, seconds=40)
        threshold = rule.threshold or 50.0
        events.append(
            _entry(
                raised,
                "alert",
                alert_id,
                "alert.raised",
                "mqtt",
                None,
                None,
                {"status": "new", "count": 1, "severity": rule.severity}
                | {"metric": "methane_ppm", "value": 62.0, "threshold": threshold},
            )
        )
        events.append(
            _entry(
                ack_at,
                "alert",
                alert_id,
                "alert.acknowledged",
                "web",
                duty,
                {"status": "new"},
                {"status": "acknowledged"},
            )
        )
        repeats = BIG_TIMELINE - len(events)
        step = (opened_at - timedelta(seconds=20) - raised) / (repeats + 1)
        value = 62.0
        for n in range(2, repeats + 2):
            at = raised + step * (n - 1) + timedelta(milliseconds=rng.uniform(-300, 300))
            status = "acknowledged" if at > ack_at else "new"
            value = round(min(480.0, max(threshold + 1, value + rng.gauss(0.4, 3.0))), 1)
            after = {"status": status, "count": n, "severity": rule.severity}
            after |= {"metric": "methane_ppm", "value": value, "threshold": threshold}
            events.append((at, "alert", alert_id, "alert.updated", "mqtt", None, None, after))
            # The reading that raised the repeat, kept with the sensor's history.
            tables.readings.append((at, place.device_id, "methane_ppm", value))
        detail = {"metric": "methane_ppm", "value": round(value, 1), "rule": rule.pk}
        detail["threshold"] = threshold
        title = f"{rule.name}: methane_ppm 62 @ {place.code}"
        tables.alerts.append(
            (
                alert_id,
                rule.severity,
                "escalated",
                "sensor",
                title,
                f"rule:{rule.pk}:{place.device_id}",
                repeats + 1,
                raised,
                events[-1][0],
                _json(detail),
                world.categories["gas-leak"],
                place.device_id,
                place.grid_id,
                world.township_id,
                incident_id,
            )
        )
        tables.incidents.append(
            (
                incident_id,
                "桥西餐饮街燃气浓度持续超标",
                "夜间燃气探测器持续报警，疑似管道泄漏。",
                "critical",
                "closed",
                place.latitude,
                place.longitude,
                opened_at,
                resolved_at,
                closed_at,
                feedback,
                "county",
                world.categories["gas-leak"],
                place.grid_id,
                duty,
                world.township_id,
                "[]",
                "satisfied",
                0,
                "",
            )
        )
        assert len(events) == BIG_TIMELINE, len(events)
        for event in events:
            tables.entry(*event)
        return incident_id, raised, opened_at


def _severity_rank(severity: str) -> int:
    return ("critical", "major", "minor", "warning").index(severity)


# --- generation -------------------------------------------------------------------------------

STATE_TABLE = "bench_replay_state"
GENERATED_TABLES = (
    "incidents_timelineentry",
    "incidents_summons",
    "incidents_whistle",
    "streams_gridreport",
    "alerts_alert",
    "alerts_delivery",
    "incidents_incident",
    "streams_reading",
    "streams_deviceevent",
    "alerts_rulestate",
)
COPIES = (
    (
        "incidents",
        "incidents_incident (id, title, description, severity, status, latitude, longitude,"
        " opened_at, resolved_at, closed_at, feedback, settled_level, category_id, grid_id,"
        " opened_by_id, township_id, evidence, satisfaction, reopened_count, callback_note)",
    ),
    (
        "alerts",
        "alerts_alert (id, severity, status, source, title, dedupe_key, count, first_seen,"
        " last_seen, detail, category_id, device_id, grid_id, township_id, incident_id)",
    ),
    (
        "reports",
        "streams_gridreport (id, description, latitude, longitude, created_at, alert_id,"
        " category_id, grid_id, reporter_id, township_id, photos, channel, caller_name,"
        " caller_phone, external_id)",
    ),
    (
        "whistles",
        "incidents_whistle (id, kind, purpose, blown_at, report_within, escalation_policy, note,"
        " blown_by_id, incident_id, joint_township_id, joint_status, joint_pending,"
        " escalation_chain)",
    ),
    (
        "summonses",
        "incidents_summons (id, status, check_in_deadline, acknowledged_at, checked_in_at,"
        " check_in_latitude, check_in_longitude, done_at, done_note, released_at,"
        " release_reason, overdue, escalation_level, checked_in_by_id, off_list_reason,"
        " department_id, whistle_id, finish_overdue, finish_escalation_level, returned_count,"
        " return_reason, page_step)",
    ),
    (
        "timeline",
        "incidents_timelineentry (id, time, township_id, subject_type, subject_id, action,"
        " actor_id, source, before, after)",
    ),
)


@dataclass(frozen=True)
class Generated:
    end: datetime
    big_incident: int
    seconds: float


def generated(conn: Any) -> Generated | None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (version int PRIMARY KEY,"
        " data_end timestamptz NOT NULL, big_incident bigint NOT NULL, seconds float8 NOT NULL,"
        " generated_at timestamptz NOT NULL DEFAULT now())"
    )
    row = conn.execute(
        f"SELECT data_end, big_incident, seconds FROM {STATE_TABLE} WHERE version = %s"
        " AND EXISTS (SELECT 1 FROM incidents_incident WHERE id = big_incident)",
        [VERSION],
    ).fetchone()
    return Generated(*row) if row else None


def generate(url: str) -> Generated:
    import psycopg

    started = time.monotonic()
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - YEAR
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {STATE_TABLE}")
        conn.execute(f"TRUNCATE {', '.join(GENERATED_TABLES)} RESTART IDENTITY CASCADE")
        # Losing the last commits to a crash costs nothing here: generation starts over.
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        seed_extra(random.Random(f"devices-{VERSION}"))
        world = load_world()
        progress(
            f"generating a year to {end:%Y-%m-%d %H:%M} UTC for {TOWNSHIP}:"
            f" {sum(len(p) for p in world.sensors.values())} sensors, {INCIDENTS:,} incidents"
        )
        readings = load_readings(conn, world, start, end)

        tables = Tables(world.township_id)
        generator = Generator(world, tables, end, f"history-{VERSION}")
        big, _raised, _opened = generator.big_incident()
        stamp = time.monotonic()
        categories = list(CATEGORY_WEIGHTS)
        weights = list(CATEGORY_WEIGHTS.values())
        planned = sorted(
            (generator.moment(start + timedelta(days=1), end - timedelta(minutes=5), c), c)
            for c in generator.rng.choices(categories, weights, k=INCIDENTS - 1)
        )
        for opened_at, category in planned:
            generator.incident(opened_at, category)
        for _ in range(LONE_ALERTS):
            generator.lone_alert()
        progress(
            f"history: {len(tables.incidents):,} incidents, {len(tables.alerts):,} alerts,"
            f" {len(tables.summonses):,} summonses, {len(tables.timeline):,} timeline entries"
            f" built in {time.monotonic() - stamp:.0f} s"
        )
        stamp = time.monotonic()
        with conn.transaction():
            for name, target in COPIES:
                rows = getattr(tables, name)
                with conn.cursor().copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            # The night of the big incident: the gas sensor's readings at its alarm's cadence
            # replace its regular ones.
            first, last = tables.readings[0][0], tables.readings[-1][0]
            conn.execute(
                "DELETE FROM streams_reading WHERE device_id = %s AND metric = 'methane_ppm'"
                " AND time BETWEEN %s AND %s",
                [tables.readings[0][1], first - READING_EVERY, last],
            )
            with conn.cursor().copy(
                "COPY streams_reading (time, device_id, metric, value) FROM STDIN"
            ) as copy:
                for row in tables.readings:
                    copy.write_row(row)
            # When each closed alert left the queue, from its timeline, as the services set it.
            from alerts.models import CLOSED_AT_FROM_TIMELINE

            conn.execute(CLOSED_AT_FROM_TIMELINE)
            # Ids were given here: the identities go on after them, for whatever comes next.
            for table in (
                "incidents_incident",
                "alerts_alert",
                "streams_gridreport",
                "incidents_whistle",
                "incidents_summons",
            ):
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" greatest((SELECT max(id) FROM {table}), 1))"
                )
        copied = sum(len(getattr(tables, name)) for name, _target in COPIES)
        progress(f"copied {copied:,} rows in {time.monotonic() - stamp:.0f} s")
        stamp = time.monotonic()
        timescale = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        if timescale:
            from streams.timeseries import MINUTE_AGGREGATE

            conn.execute(f"CALL refresh_continuous_aggregate('{MINUTE_AGGREGATE}', NULL, NULL)")
        # What autovacuum has long done on a year-old database: statistics for the planner and
        # a visibility map, so the first measurement does not pay for hint bits.
        for table in (*GENERATED_TABLES, "org_device", "org_user"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        progress(f"VACUUM ANALYZE in {time.monotonic() - stamp:.0f} s")
        seconds = time.monotonic() - started
        conn.execute(
            f"INSERT INTO {STATE_TABLE} (version, data_end, big_incident, seconds)"
            " VALUES (%s, %s, %s, %s)",
            [VERSION, end, big, seconds],
        )
    progress(f"generated {readings:,} readings and the history in {seconds:.0f} s")
    return Generated(end, big, seconds)


# --- measurement ------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    samples: list[float]
    note: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 0.95)

    def line(self, target: float | None = None) -> str:
        text = f"{self.name}: p50 {self.p50:.1f} ms, p95 {self.p95:.1f} ms"
        text += f" ({len(self.samples)} samples{', ' + self.note if self.note else ''})"
        if target is not None:
            verdict = "PASS" if self.p95 < target else "FAIL"
            text += f" | target p95 < {target:.0f} ms: {verdict}"
        return text


def timed(run: Callable[[], Any], repeat: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def profiled(label: str, run: Callable[[], Any]) -> None:
    """Where one call spends its time (cProfile, top functions by cumulative time), on stderr."""
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    print(f"--- profile: {label}", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)


def get(client: Any, path: str) -> Callable[[], Any]:
    def run() -> Any:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
        return response

    return run


def _span(incident: Any) -> tuple[datetime, datetime, int]:
    from incidents.selectors import incident_timeline

    entries = incident_timeline(incident=incident)
    return entries[0].time, entries[-1].time, len(entries)


def _timeline_filter(incident: Any) -> tuple[str, list[Any]]:
    """The rows the timeline page reads, as one WHERE clause (for the floors)."""
    from incidents.models import Summons

    whistles = list(incident.whistles.values_list("pk", flat=True))
    summonses = list(
        Summons.objects.filter(whistle__incident=incident).values_list("pk", flat=True)
    )
    alerts = list(incident.alerts.values_list("pk", flat=True))
    where = (
        "(subject_type = 'incident' AND subject_id = %s)"
        " OR (subject_type = 'whistle' AND subject_id = ANY(%s))"
        " OR (subject_type = 'summons' AND subject_id = ANY(%s))"
        " OR (subject_type = 'alert' AND subject_id = ANY(%s))"
    )
    return where, [incident.pk, whistles, summonses, alerts]


def measure(
    found: Generated, repeat: int, profile: bool
) -> tuple[dict[str, Figure | None], list[str]]:
    """Each figure (None: not measured), and what failed."""
    from django.db import connection
    from django.test import Client
    from django.urls import Resolver404, resolve

    from command.org.models import Township, User
    from command.timeline.models import TimelineEntry
    from incidents.models import Incident
    from supervision import stats

    township = Township.objects.get(code=TOWNSHIP)
    client = Client()
    client.force_login(User.objects.get(username="supervisor"))
    big = Incident.objects.get(pk=found.big_incident)
    results: dict[str, Figure | None] = {}
    failed: list[str] = []

    def query(sql: str, params: list[Any]) -> Callable[[], Any]:
        def run() -> Any:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        return run

    # Floors: a request that does nothing, and the timeline's rows without Django.
    floor = Figure("GET /healthz", timed(get(client, "/healthz"), repeat))
    where, params = _timeline_filter(big)
    table = TimelineEntry._meta.db_table
    count = query(f"SELECT count(*) FROM {table} WHERE {where}", params)
    entries = count()[0][0]
    count_floor = Figure("count(*) of the timeline rows", timed(count, repeat))
    fetch = query(f"SELECT * FROM {table} WHERE {where} ORDER BY time", params)
    fetch_floor = Figure(f"fetch of the {entries:,} rows", timed(fetch, repeat))
    print(f"floor: {floor.line()}")
    print(f"floor: {count_floor.line()}")
    print(f"floor: {fetch_floor.line()}")

    # 1. The timeline page of the incident with 10,000 entries.
    path = f"/supervise/{TOWNSHIP}/incidents/{big.pk}/"
    response = get(client, path)()
    rows = response.content.count(b"<tr data-action=")
    # The page shows a run of one alert's repeats as one row: count what the rows stand for.
    told = rows + sum(int(n) - 1 for n in re.findall(rb'data-repeats="(\d+)"', response.content))
    if told != entries:
        failed.append("timeline")
        print(f"timeline: the page tells {told:,} entries of {entries:,}")
    note = (
        f"{entries:,} entries in {rows:,} rows (runs of repeats as one),"
        f" {len(response.content) / 1e6:.2f} MB of HTML"
    )
    results["timeline"] = Figure("timeline", timed(get(client, path), repeat), note)
    print(results["timeline"].line(TARGET_MS["timeline"]))
    every = Figure(
        "timeline, every entry its own row (?all=1, information)",
        timed(get(client, path + "?all=1"), max(3, repeat // 4), warmup=1),
    )
    print(every.line())
    if profile:
        profiled("timeline page", get(client, path))

    # 2. Replay frames: the big incident at the middle of its span, and ordinary ones.
    frame_path = f"/supervise/{TOWNSHIP}/incidents/{big.pk}/replay/frame"
    try:
        resolve(frame_path)
    except Resolver404:
        print("frame: the view GET …/incidents/<id>/replay/frame is missing (404): not measured")
        results["frame"] = None
    else:
        try:
            results["frame"] = measure_frames(client, township, big, entries, repeat, profile)
        except Exception as problem:  # a view being written: report it, measure the rest
            print(f"frame: could not be measured: {problem!r}")
            results["frame"] = None
            failed.append("frame")

    # 3. The department table of the 30 days that end where the data ends.
    end = found.end
    start = end - timedelta(days=STATS_DAYS)
    departments = stats.department_table(township_id=township.pk, start=start, end=end)
    received = sum(r.received for r in departments)
    summonses_floor = query(
        "SELECT count(*) FROM incidents_summons s"
        " JOIN incidents_whistle w ON w.id = s.whistle_id"
        " JOIN incidents_incident i ON i.id = w.incident_id"
        " WHERE i.township_id = %s AND w.blown_at >= %s AND w.blown_at < %s",
        [township.pk, start, end],
    )
    summonses_figure = Figure("count(*) of the period's summonses", timed(summonses_floor, repeat))
    print(f"floor: {summonses_figure.line()}")
    results["department stats"] = Figure(
        "department stats",
        timed(
            lambda: stats.department_table(township_id=township.pk, start=start, end=end), repeat
        ),
        f"{len(departments)} departments, {received:,} summonses in {STATS_DAYS} days",
    )
    print(results["department stats"].line(TARGET_MS["department stats"]))
    local_end = end.astimezone(ZoneInfo(township.time_zone)).date()
    period = {"start": local_end - timedelta(days=STATS_DAYS - 1), "end": local_end}
    page = f"/supervise/{TOWNSHIP}/?{urlencode(period)}"
    print(Figure("performance page (information)", timed(get(client, page), repeat)).line())
    if profile:
        profiled("performance page", get(client, page))

    # 4. The case library: a page of each filter, as the township's duty officer.
    results["cases"] = measure_cases(found, township, repeat, profile, failed)

    # 5. The trends page (研判) of the year that ends where the data ends.
    year = {"start": local_end - timedelta(days=364), "end": local_end}
    trends_path = f"/supervise/{TOWNSHIP}/trends/?{urlencode(year | {'bucket': 'month'})}"
    total = re.search(rb'id="trend-total">(\d+)<', get(client, trends_path)().content)
    if not total or not int(total.group(1)):
        print(f"trends: {trends_path} counted no matter")
        failed.append("trends")
    results["trends"] = Figure(
        "trends",
        timed(get(client, trends_path), repeat),
        f"{int(total.group(1)) if total else 0:,} matters in a year, by month",
    )
    print(results["trends"].line(TARGET_MS["trends"]))
    weeks = f"/supervise/{TOWNSHIP}/trends/?{urlencode(year | {'bucket': 'week'})}"
    print(Figure("trends by week (information)", timed(get(client, weeks), repeat)).line())
    if profile:
        profiled("trends page", get(client, trends_path))
    return results, failed


def case_filters(found: Generated, township: Any) -> list[tuple[str, dict[str, str]]]:
    """A query of each filter of the case library, each finding incidents of the year."""
    from django.db.models import Count

    from incidents.models import Incident
    from supervision import cases as case_library

    grid = (
        Incident.objects.filter(township=township)
        .values("grid__code")
        .annotate(n=Count("id"))
        .order_by("-n", "grid__code")[0]["grid__code"]
    )
    local_end = found.end.astimezone(ZoneInfo(township.time_zone)).date()
    month = local_end - timedelta(days=180)
    first = case_library.case_page(
        user=_duty(), filters=case_library.CaseFilter(), limit=None
    ).next_cursor
    return [
        ("none", {}),
        ("text, 2 characters", {"q": "垃圾"}),
        ("text, a phrase", {"q": "宅基地边界"}),
        ("text, Latin", {"q": "water_level"}),
        ("category", {"category": "flood"}),
        ("grid", {"grid": grid}),
        ("township", {"township": TOWNSHIP}),
        ("department", {"department": "chengguan"}),
        ("status", {"status": "active"}),
        ("period", {"start": str(month - timedelta(days=29)), "end": str(month)}),
        ("631 level", {"level": "county"}),
        ("satisfaction", {"satisfaction": "unsatisfied"}),
        ("reopened", {"reopened": "yes"}),
        ("rare combination", {"category": "fire", "level": "grid", "satisfaction": "basic"}),
        ("second page", {"after": first or ""}),
    ]


def _duty() -> Any:
    from command.org.models import User

    return User.objects.get(username="duty")


def measure_cases(
    found: Generated, township: Any, repeat: int, profile: bool, failed: list[str]
) -> Figure | None:
    """The case library's page (``GET /cases/?…``) for each filter; the figure is the filter
    with the largest p95. A filter that finds nothing is a failure: each must find incidents."""
    from django.test import Client

    client = Client()
    client.force_login(_duty())
    figures = []
    for name, params in case_filters(found, township):
        path = f"/cases/?{urlencode(params)}"
        try:
            response = get(client, path)()
        except RuntimeError as problem:
            print(f"cases, {name}: {problem}")
            failed.append(f"cases ({name})")
            continue
        rows = response.content.count(b"<tr data-incident=")
        if not rows:
            print(f"cases, {name}: {path} found no incident")
            failed.append(f"cases ({name})")
        figure = Figure(f"cases, {name}", timed(get(client, path), repeat), f"{rows} rows")
        print(figure.line(TARGET_MS["cases"]))
        figures.append(figure)
    if not figures:
        return None
    worst = max(figures, key=lambda f: f.p95)
    queries = sum(len(f.samples) for f in figures)
    verdict = "PASS" if worst.p95 < TARGET_MS["cases"] else "FAIL"
    print(
        f"cases: p95 {worst.p95:.0f} ms (worst filter {worst.name.removeprefix('cases, ')})"
        f" over {queries} queries; ceiling {TARGET_MS['cases']:.0f} ms: {verdict}"
    )
    csv_path = "/cases/?format=csv"

    def export() -> int:
        response = client.get(csv_path)
        return sum(len(chunk) for chunk in response.streaming_content)

    size = export()
    print(
        Figure(
            "cases, CSV of every incident (information)",
            timed(export, max(3, repeat // 4), warmup=1),
            f"{size / 1e6:.1f} MB",
        ).line()
    )
    if profile:
        profiled("case library, department filter", get(client, "/cases/?department=chengguan"))
    return Figure("cases", worst.samples, worst.name)


def measure_frames(
    client: Any, township: Any, big: Any, entries: int, repeat: int, profile: bool
) -> Figure:
    """Frames of the big incident and of ordinary ones, each at the middle of its span; the
    figure with the larger p95."""
    from incidents.models import Incident

    first, last, _n = _span(big)
    frame_path = f"/supervise/{TOWNSHIP}/incidents/{big.pk}/replay/frame"
    at = first + (last - first) / 2
    big_path = f"{frame_path}?{urlencode({'at': at.isoformat()})}"
    size = len(get(client, big_path)().content)
    big_frame = Figure(
        f"frame of the {entries:,}-entry incident",
        timed(get(client, big_path), repeat),
        f"at {at:%Y-%m-%d %H:%M:%S} UTC, {size / 1e3:.0f} kB",
    )
    print(big_frame.line(TARGET_MS["frame"]))
    closed = list(
        Incident.objects.filter(township=township, status=Incident.Status.CLOSED)
        .exclude(pk=big.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    ordinary = []
    sizes = []
    for pk in random.Random("frames").sample(closed, ORDINARY_FRAMES):
        first, last, n = _span(Incident.objects.get(pk=pk))
        at = first + (last - first) / 2
        path = f"/supervise/{TOWNSHIP}/incidents/{pk}/replay/frame?"
        path += urlencode({"at": at.isoformat()})
        sizes.append(n)
        ordinary += timed(get(client, path), repeat)
    small_frame = Figure(
        f"frame of {ORDINARY_FRAMES} ordinary incidents",
        ordinary,
        f"{min(sizes)}-{max(sizes)} entries each",
    )
    print(small_frame.line(TARGET_MS["frame"]))
    if profile:
        profiled("frame of the big incident", get(client, big_path))
    return max(big_frame, small_frame, key=lambda f: f.p95)


def data_line(found: Generated, fresh: bool) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'streams_reading'")
        readings = cursor.fetchone()[0]
        counts = []
        for table in (
            "incidents_incident",
            "alerts_alert",
            "incidents_summons",
            "incidents_timelineentry",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts.append(cursor.fetchone()[0])
    when = "this run" if fresh else f"an earlier run (generated to {found.end:%Y-%m-%d %H:%M} UTC)"
    return (
        f"data: ~{readings:,} readings, {counts[0]:,} incidents, {counts[1]:,} alerts,"
        f" {counts[2]:,} summonses, {counts[3]:,} timeline entries; generated in"
        f" {found.seconds:.0f} s by {when}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="samples per figure")
    parser.add_argument("--regenerate", action="store_true", help="generate the data again")
    parser.add_argument("--profile", action="store_true", help="cProfile one request of each")
    parser.add_argument(
        "--database", default=DATABASE, help=f"database on DATABASE_URL's server ({DATABASE})"
    )
    args = parser.parse_args(argv)
    # The test client's requests come from "testserver"; query logging (DEBUG) would be
    # measured too.
    hosts = os.environ.get("ALLOWED_HOSTS") or "localhost,127.0.0.1"
    os.environ["ALLOWED_HOSTS"] = f"{hosts},testserver"
    os.environ["DEBUG"] = "0"
    url = database_url(args.database)
    progress(f"database {args.database}")
    prepare_demo(url)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        found = None if args.regenerate else generated(conn)
    fresh = found is None
    if found is None:
        found = generate(url)
    else:
        progress(f"reusing the data of version {VERSION} (--regenerate to start over)")
    print(data_line(found, fresh))
    # What generation left behind is garbage now; collections of it would land in samples.
    gc.collect()
    results, failed = measure(found, args.repeat, args.profile)
    packages = ["command", "frontend", "streams", "alerts", "incidents", "supervision"]
    print(f"code: {code_state(packages)}")
    figures = [
        f"{name} {'n/a' if figure is None else f'{figure.p95:.0f} ms'}"
        for name, figure in results.items()
    ]
    print(f"replay: {', '.join(figures)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
