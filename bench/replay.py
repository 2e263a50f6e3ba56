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

The generator is ``demo.history`` (the demo's 90-day past uses it too, with its extras off here).

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

6. report: ``whistle report monthly --township qingshui --month <the last whole month>`` in a
   process of its own (start-up included), its workbook opened with openpyxl and converted to
   PDF by LibreOffice (``soffice --headless --convert-to pdf``) where installed, else the line
   says "soffice not installed". Ceiling 10 s for the command.

A floor for every request: ``GET /healthz`` through the same client.

    python -m bench.replay [--repeat 20] [--regenerate] [--profile] [--database NAME]

Progress on stderr (``[bench]``); results on stdout, each next to its target; the last line is
``replay: timeline <a> ms, frame <b> ms, department stats <c> ms, cases <d> ms, trends <e> ms,
report <f> ms``, each the p95 of its samples (frame: the larger p95 of the big incident's and the
ordinary incidents'; ``n/a`` when the view is missing; cases: the worst filter's, also told in a
line of its own ``cases: p95 <d> ms (worst filter <name>) over <n> queries; ceiling 300 ms``;
report: one run, also told in a line of its own). Targets: timeline < 300 ms, frame < 100 ms,
department stats < 1 s, case library < 300 ms, trends < 300 ms, monthly report < 10 s. The exit
status is 0
whether targets are met or not; 1 only when something could not be measured (or a case-library
filter found nothing).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from bench.common import (
    code_state,
    database_server,
    database_url,
    describe_database,
    prepare_demo,
    terminate_on_sigterm,
)
from demo.history import (
    CATEGORY_WEIGHTS,
    READING_EVERY,
    Generator,
    Tables,
    copy_tables,
    load_readings,
    load_world,
    seed_extra,
)

DATABASE = "whistle_bench_replay"
# Bump when the generated data changes shape: a run then regenerates instead of reusing.
# 3: alerts' closed_at; 4: satisfaction, reopenings, finishing and intake columns; 5: the
# whistles' escalation chains and the summonses' place in them.
VERSION = 5
TOWNSHIP = "qingshui"
YEAR = timedelta(days=365)
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
    "report": 10_000.0,
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


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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
        generated(conn)  # the state table, on a database that has never had it
        conn.execute(f"DELETE FROM {STATE_TABLE}")
        conn.execute(f"TRUNCATE {', '.join(GENERATED_TABLES)} RESTART IDENTITY CASCADE")
        # Losing the last commits to a crash costs nothing here: generation starts over.
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        seed_extra(
            random.Random(f"devices-{VERSION}"), township_code=TOWNSHIP, sensors=EXTRA_SENSORS
        )
        world = load_world(TOWNSHIP)
        progress(
            f"generating a year to {end:%Y-%m-%d %H:%M} UTC for {TOWNSHIP}:"
            f" {sum(len(p) for p in world.sensors.values())} sensors, {INCIDENTS:,} incidents"
        )
        readings = load_readings(
            conn, world, start, end, seed=f"readings-{VERSION}", progress=progress
        )

        tables = Tables(world.township_id)
        generator = Generator(
            world, tables, end, f"history-{VERSION}", start=start, pace_seed=f"pace-{VERSION}"
        )
        big, _raised, _opened = generator.big_incident(BIG_TIMELINE)
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
            copied = copy_tables(conn, tables)
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
        progress(f"copied {copied:,} rows in {time.monotonic() - stamp:.0f} s")
        stamp = time.monotonic()
        timescale = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        if timescale:
            from streams.timeseries import MINUTE_AGGREGATE

            conn.execute(f"CALL refresh_continuous_aggregate('{MINUTE_AGGREGATE}', NULL, NULL)")
            compress_old_chunks(conn)
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


def compress_old_chunks(conn: Any) -> int:
    """On TimescaleDB, what its compression policies would long have done on a year-old
    database: every chunk older than the policy's age compressed (the readings after 7 days, the
    device events after 30). Done here rather than left to the policies' jobs, which would
    compress the year in the background during a later run's measurements. Also run on a year
    generated earlier, for the chunks that have aged past the policy since; returns how many
    chunks it compressed."""
    from streams.timeseries import EVENTS_COMPRESS_AFTER, READINGS_COMPRESS_AFTER

    started = time.monotonic()
    compressed = 0
    for table, after in (
        ("streams_reading", READINGS_COMPRESS_AFTER),
        ("streams_deviceevent", EVENTS_COMPRESS_AFTER),
    ):
        chunks = conn.execute(
            "SELECT format('%%I.%%I', chunk_schema, chunk_name)"
            " FROM timescaledb_information.chunks WHERE hypertable_name = %s"
            " AND NOT is_compressed AND range_end < now() - %s::interval ORDER BY range_start",
            [table, after],
        ).fetchall()
        for (chunk,) in chunks:
            conn.execute("SELECT compress_chunk(%s::regclass, if_not_compressed => true)", [chunk])
        compressed += len(chunks)
    if compressed:
        progress(
            f"compressed {compressed} chunks older than the compression policies' age"
            f" in {time.monotonic() - started:.0f} s"
        )
    return compressed


def timescaledb_created(conn: Any) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone())


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

    # 6. The monthly report of the last whole month, as a person runs it.
    results["report"] = measure_report(found, township, failed)
    return results, failed


def measure_report(found: Generated, township: Any, failed: list[str]) -> Figure | None:
    """`whistle report monthly` of the last whole month before the data ends, in a process of
    its own (what a person waits for: start-up included); the workbook opened with openpyxl,
    and converted to PDF by LibreOffice where ``soffice`` is installed."""
    import shutil
    import subprocess
    import tempfile

    import openpyxl

    local_end = found.end.astimezone(ZoneInfo(township.time_zone)).date()
    last = local_end.replace(day=1) - timedelta(days=1)
    month = f"{last:%Y-%m}"
    with tempfile.TemporaryDirectory(prefix="whistle-report-") as folder:
        out = os.path.join(folder, f"report-{TOWNSHIP}-{month}.xlsx")
        whistle = "import sys; from command.cli import main; sys.exit(main())"
        command = [sys.executable, "-c", whistle, "report", "monthly", "--township", TOWNSHIP,
                   "--month", month, "-o", out]  # fmt: skip
        started = time.perf_counter()
        ran = subprocess.run(command, capture_output=True, text=True, timeout=120)
        elapsed = (time.perf_counter() - started) * 1000
        if ran.returncode != 0 or not os.path.exists(out):
            print(
                f"report: `whistle report monthly` failed ({ran.returncode}): {ran.stderr[-500:]}"
            )
            failed.append("report")
            return None
        book = openpyxl.load_workbook(out)
        charts = sum(len(sheet._charts) for sheet in book.worksheets)
        note = (
            f"{TOWNSHIP} {month}, {os.path.getsize(out) / 1e3:.0f} kB, {len(book.sheetnames)}"
            f" sheets, {charts} charts, opens in openpyxl; {ran.stdout.strip().rsplit(', ', 1)[-1]}"
            " of it in the command"
        )
        soffice = shutil.which("soffice") or shutil.which("libreoffice")
        if soffice is None:
            office = "soffice not installed"
        else:
            # A profile of its own: a LibreOffice the user has open would take the request.
            profile = f"-env:UserInstallation=file://{folder}/profile"
            begun = time.perf_counter()
            converted = subprocess.run(
                [soffice, profile, "--headless", "--convert-to", "pdf", "--outdir", folder, out],
                capture_output=True,
                text=True,
                timeout=180,
            )
            pdf = out.removesuffix(".xlsx") + ".pdf"
            seconds = time.perf_counter() - begun
            if converted.returncode != 0 or not os.path.exists(pdf):
                office = f"LibreOffice could not convert it ({converted.stderr.strip()[-200:]})"
                failed.append("report")
            else:
                office = (
                    f"LibreOffice converted it to PDF ({os.path.getsize(pdf) / 1e3:.0f} kB)"
                    f" in {seconds:.1f} s"
                )
    figure = Figure("report", [elapsed], note)
    ceiling = TARGET_MS["report"]
    print(
        f"report: whistle report monthly {elapsed:.0f} ms ({note}); {office}"
        f" | ceiling {ceiling / 1000:.0f} s: {'ok' if elapsed < ceiling else 'FAIL'}"
    )
    return figure


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
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        if cursor.fetchone():
            # A hypertable's own row in pg_class holds no rows (its chunks do).
            cursor.execute(
                "SELECT approximate_row_count('streams_reading'),"
                " hypertable_size('streams_reading')"
            )
        else:
            cursor.execute(
                "SELECT reltuples::bigint, pg_total_relation_size('streams_reading')"
                " FROM pg_class WHERE relname = 'streams_reading'"
            )
        readings, size = cursor.fetchone()
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
        f"data: ~{readings:,} readings ({size / 2**20:,.0f} MiB with indexes),"
        f" {counts[0]:,} incidents, {counts[1]:,} alerts,"
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
    terminate_on_sigterm()  # so that make's SIGTERM stops the server below too
    # WHISTLE_BENCH_DB=timescaledb: on a TimescaleDB cluster of the benchmark's own, where the
    # year is generated once too (its data directory is kept).
    with database_server("bench-replay"):
        return run(args)


def run(args: argparse.Namespace) -> int:
    url = database_url(args.database)
    progress(f"database {args.database}")
    prepare_demo(url)
    import psycopg
    from django.db import connection

    with psycopg.connect(url, autocommit=True) as conn:
        found = None if args.regenerate else generated(conn)
        if found is not None and timescaledb_created(conn):
            compress_old_chunks(conn)
    fresh = found is None
    if found is None:
        found = generate(url)
    else:
        progress(f"reusing the data of version {VERSION} (--regenerate to start over)")
    # Which engine was measured (with its chunks, once the year is in them).
    print(f"database: {describe_database(connection)}")
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
