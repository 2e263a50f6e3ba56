"""Trends and hot spots (研判) of a township over a period, for supervisors and the monthly
report. Every figure is one SQL query grouped in PostgreSQL.

What is counted is a *matter*: an incident (however many alerts it was opened from), or an
alert that did not become one; a merged alert was a duplicate and is not counted. A matter's
moment is when the incident was opened, or when the alert was first seen; its category and grid
are the incident's (as triaged), else the alert's. Days, weeks, months and hours are the
township's (``Township.zone``, Asia/Shanghai), never the server's or UTC.

The public selectors (keyword-only; ``start``/``end`` are aware datetimes, the period is
``[start, end)``; a caller usually passes ``command.org.localtime.day_start`` of the first day
and of the day after the last):

``category_trend(*, township_id, start, end, bucket="month") -> Trend``
    Matters per category per bucket (``"week"``: ISO weeks from Monday; ``"month"``), each
    with the same buckets a year before (months: the same months last year; weeks: 52 weeks
    before, so a Monday stays a Monday) for year on year.
``grid_trend(*, township_id, start, end, bucket="month") -> Trend``
    The same per grid.
``hour_of_day(*, township_id, start, end) -> HourOfDay``
    Matters per weekday (Monday first) and hour of the day: when things happen.
``overview(*, township_id, start, end, bucket="month") -> Overview``
    The three above in one query (one scan of the tables): what the trends page reads.
``hot_spots(*, township_id, start, end, days=REPEAT_DAYS, at_least=REPEAT_AT_LEAST)
-> list[HotSpot]``
    Recurrence at the same place: a category in a grid with ``at_least`` matters or more
    within any ``days`` days of the period (a window less than ``days`` long, so a matter
    exactly 30 days after another is not in its window, as a 30-day review of ``[end - 30
    days, end)`` would not hold both). The daily review's repeats are this on its 30 days.

Why no continuous aggregate: alerts and incidents are ordinary tables, not hypertables, and
stay so (their unique constraints, the dedupe key among them, and the foreign keys that point
at them do not fit a table partitioned on time), and a continuous aggregate reads only a
hypertable. A matter's category, grid and whether it is a matter at all change after the fact
(triage recategorises, an alert is merged or opened as an incident), which an aggregate of
the timeline's rows would not follow. A township's year is tens of thousands of matters: each
query below reads the bench-replay year (59,900 matters) in about a tenth of a second
(docs/benchmarks.md), so the tables are read as they are, on TimescaleDB and on plain
PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from django.db import connection
from django.utils.translation import gettext as _

from command.org.models import Category, Grid, Township

REPEAT_DAYS = 30
REPEAT_AT_LEAST = 3
BUCKETS = ("week", "month")
Bucket = Literal["week", "month"]
WEEK_YEAR = timedelta(weeks=52)

# The matters of a township in [start, end): one row each, with its moment.
_MATTERS = """
WITH matters AS (
    SELECT category_id, grid_id, opened_at AS at
      FROM incidents_incident
     WHERE township_id = %(township)s AND opened_at >= %(start)s AND opened_at < %(end)s
    UNION ALL
    SELECT category_id, grid_id, first_seen
      FROM alerts_alert
     WHERE township_id = %(township)s AND first_seen >= %(start)s AND first_seen < %(end)s
       AND incident_id IS NULL AND status <> 'merged'
)
"""

# This period's matters (0) and last year's (1), on the township's clock, counted per category,
# per grid (each by bucket) and per weekday and hour, in one pass: one scan of the tables and
# one aggregation with grouping sets. Each row's moment is read on the township's clock once, in
# its branch (above the union it would be converted again for each grouping set). GROUPING()
# tells which set a row belongs to (a category may be NULL: a matter with none given).
_GROUPED = """
WITH matters AS (
    SELECT 0 AS period, category_id, grid_id, opened_at AT TIME ZONE %(zone)s AS t
      FROM incidents_incident
     WHERE township_id = %(township)s AND opened_at >= %(start)s AND opened_at < %(end)s
    UNION ALL
    SELECT 0, category_id, grid_id, first_seen AT TIME ZONE %(zone)s
      FROM alerts_alert
     WHERE township_id = %(township)s AND first_seen >= %(start)s AND first_seen < %(end)s
       AND incident_id IS NULL AND status <> 'merged'
    UNION ALL
    SELECT 1, category_id, grid_id, opened_at AT TIME ZONE %(zone)s
      FROM incidents_incident
     WHERE township_id = %(township)s AND opened_at >= %(then_start)s AND opened_at < %(then_end)s
    UNION ALL
    SELECT 1, category_id, grid_id, first_seen AT TIME ZONE %(zone)s
      FROM alerts_alert
     WHERE township_id = %(township)s AND first_seen >= %(then_start)s
       AND first_seen < %(then_end)s AND incident_id IS NULL AND status <> 'merged'
), local AS (
    SELECT period, category_id, grid_id, date_trunc(%(unit)s, t)::date AS bucket,
           extract(isodow FROM t)::int AS weekday, extract(hour FROM t)::int AS hour
      FROM matters
)
SELECT GROUPING(category_id, grid_id, bucket, weekday), period, category_id, grid_id, bucket,
       weekday, hour, count(*)
  FROM local
 GROUP BY GROUPING SETS ((period, category_id, bucket), (period, grid_id, bucket),
                        (period, weekday, hour))
"""
# GROUPING(category_id, grid_id, bucket, weekday): a bit, most significant first, for each
# column a row is not grouped by.
_SET_OF = {0b0101: "category_id", 0b1001: "grid_id", 0b1110: "hours"}


# Per category and grid: the matters of the period, and the most of them within any window
# of %(days)s (a window function over each place's matters in time order).
_HOT_SPOTS = (
    _MATTERS
    + """
, windowed AS (
    SELECT category_id, grid_id, at,
           count(*) OVER (PARTITION BY category_id, grid_id ORDER BY at
                          RANGE BETWEEN %(within)s PRECEDING AND CURRENT ROW) AS within
      FROM matters
     WHERE category_id IS NOT NULL AND grid_id IS NOT NULL
)
SELECT category_id, grid_id, count(*), max(within), min(at), max(at)
  FROM windowed
 GROUP BY category_id, grid_id
HAVING max(within) >= %(least)s
 ORDER BY max(within) DESC, count(*) DESC, max(at) DESC, category_id, grid_id
"""
)


@dataclass(frozen=True)
class Series:
    """One category's (or grid's) matters per bucket, this period and the year before."""

    id: int | None  # None: matters with no category (or grid) given
    code: str
    name: str
    counts: list[int]
    last_year: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def last_year_total(self) -> int:
        return sum(self.last_year)

    @property
    def change(self) -> float | None:
        """Year on year: +0.5 is half as many again as last year; None when last year had none."""
        if not self.last_year_total:
            return None
        return self.total / self.last_year_total - 1


@dataclass(frozen=True)
class Trend:
    bucket: str  # "week" or "month"
    buckets: list[date]  # each bucket's Monday or 1st (the first may begin before the period)
    series: list[Series]  # busiest first

    @property
    def counts(self) -> list[int]:
        """All matters per bucket."""
        return [sum(s.counts[i] for s in self.series) for i in range(len(self.buckets))]

    @property
    def last_year(self) -> list[int]:
        return [sum(s.last_year[i] for s in self.series) for i in range(len(self.buckets))]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.series)

    @property
    def last_year_total(self) -> int:
        return sum(s.last_year_total for s in self.series)

    @property
    def change(self) -> float | None:
        return self.total / self.last_year_total - 1 if self.last_year_total else None


@dataclass(frozen=True)
class HourOfDay:
    counts: list[list[int]]  # [weekday 0 = Monday … 6][hour 0 … 23]

    @property
    def total(self) -> int:
        return sum(map(sum, self.counts))

    @property
    def busiest(self) -> int:
        return max(max(row) for row in self.counts)

    @property
    def by_hour(self) -> list[int]:
        return [sum(row[h] for row in self.counts) for h in range(24)]

    @property
    def by_weekday(self) -> list[int]:
        return [sum(row) for row in self.counts]


@dataclass(frozen=True)
class HotSpot:
    category_id: int
    category_code: str
    category_name: str
    grid_id: int
    grid_code: str
    grid_name: str
    matters: int  # in the whole period
    peak: int  # the most within any window of the given days
    first_at: datetime
    last_at: datetime


def _query(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _year_before(township: Township, moment: datetime, bucket: Bucket) -> datetime:
    if bucket == "week":
        return moment - WEEK_YEAR
    local = moment.astimezone(township.zone)
    try:
        earlier = local.replace(year=local.year - 1)
    except ValueError:  # 29 February
        earlier = local.replace(year=local.year - 1, day=28)
    return earlier.replace(tzinfo=township.zone)


def _bucket_of(day: date, bucket: Bucket) -> date:
    return day - timedelta(days=day.weekday()) if bucket == "week" else day.replace(day=1)


def _next_bucket(day: date, bucket: Bucket) -> date:
    if bucket == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _buckets(township: Township, start: datetime, end: datetime, bucket: Bucket) -> list[date]:
    first = start.astimezone(township.zone).date()
    last = (end.astimezone(township.zone) - timedelta(microseconds=1)).date()
    found = []
    day = _bucket_of(first, bucket)
    while day <= last:
        found.append(day)
        day = _next_bucket(day, bucket)
    return found


def _shifted(day: date, bucket: Bucket) -> date:
    """Last year's bucket moved onto this year's."""
    if bucket == "week":
        return day + WEEK_YEAR
    return day.replace(year=day.year + 1)


@dataclass(frozen=True)
class Overview:
    """The page's figures at once: by category, by grid, by weekday and hour."""

    by_category: Trend
    by_grid: Trend
    hours: HourOfDay


def _overview(
    township: Township, start: datetime, end: datetime, bucket: Bucket, *, last_year: bool = True
) -> Overview:
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}")
    buckets = _buckets(township, start, end, bucket)
    index = {day: i for i, day in enumerate(buckets)}
    params = {
        "township": township.pk,
        "zone": township.zone.key,
        "unit": bucket,
        "start": start,
        "end": end,
        # Without last year, an empty period for it.
        "then_start": _year_before(township, start, bucket) if last_year else start,
        "then_end": _year_before(township, end, bucket) if last_year else start,
    }
    counts: dict[str, dict[int | None, list[int]]] = {"category_id": {}, "grid_id": {}}
    before: dict[str, dict[int | None, list[int]]] = {"category_id": {}, "grid_id": {}}
    hours = [[0] * 24 for _day in range(7)]
    for grouping, period, category, grid, day, weekday, hour, n in _query(_GROUPED, params):
        key = _SET_OF[grouping]
        if key == "hours":
            if period == 0:
                hours[weekday - 1][hour] = n
            continue
        i = index.get(_shifted(day, bucket) if period else day)
        if i is None:
            continue
        pk = category if key == "category_id" else grid
        counts[key].setdefault(pk, [0] * len(buckets))
        before[key].setdefault(pk, [0] * len(buckets))
        (before if period else counts)[key][pk][i] += n
    found = {}
    for key, model in (("category_id", Category), ("grid_id", Grid)):
        named = model.objects.in_bulk([pk for pk in counts[key] if pk is not None])
        series = [
            Series(
                pk,
                named[pk].code if pk in named else "",
                named[pk].display_name if pk in named else _("Not given"),
                counts[key][pk],
                before[key][pk],
            )
            for pk in counts[key]
        ]
        series.sort(key=lambda s: (-s.total, -s.last_year_total, s.code))
        found[key] = Trend(bucket, buckets, series)
    return Overview(found["category_id"], found["grid_id"], HourOfDay(hours))


def category_trend(
    *, township_id: int, start: datetime, end: datetime, bucket: Bucket = "month"
) -> Trend:
    """Matters per category per week or month of ``[start, end)``, with last year's."""
    township = Township.objects.get(pk=township_id)
    return _overview(township, start, end, bucket).by_category


def grid_trend(
    *, township_id: int, start: datetime, end: datetime, bucket: Bucket = "month"
) -> Trend:
    """Matters per grid per week or month of ``[start, end)``, with last year's."""
    township = Township.objects.get(pk=township_id)
    return _overview(township, start, end, bucket).by_grid


def hour_of_day(*, township_id: int, start: datetime, end: datetime) -> HourOfDay:
    """Matters of ``[start, end)`` per weekday and hour on the township's clock."""
    township = Township.objects.get(pk=township_id)
    return _overview(township, start, end, "month", last_year=False).hours


def overview(
    *, township_id: int, start: datetime, end: datetime, bucket: Bucket = "month"
) -> Overview:
    """``category_trend``, ``grid_trend`` and ``hour_of_day`` of one period in one query."""
    township = Township.objects.get(pk=township_id)
    return _overview(township, start, end, bucket)


def hot_spots(
    *,
    township_id: int,
    start: datetime,
    end: datetime,
    days: int = REPEAT_DAYS,
    at_least: int = REPEAT_AT_LEAST,
) -> list[HotSpot]:
    """Places where a category keeps coming back: ``at_least`` matters or more of it in one
    grid within ``days`` days in ``[start, end)``; the most within a window first."""
    params = {
        "township": township_id,
        "start": start,
        "end": end,
        # A window shorter than ``days`` by a microsecond: [at - days, at] would hold two
        # matters exactly ``days`` apart.
        "within": timedelta(days=days) - timedelta(microseconds=1),
        "least": at_least,
    }
    found = _query(_HOT_SPOTS, params)
    categories = Category.objects.in_bulk({row[0] for row in found})
    grids = Grid.objects.in_bulk({row[1] for row in found})
    return [
        HotSpot(
            category_id,
            categories[category_id].code,
            categories[category_id].display_name,
            grid_id,
            grids[grid_id].code,
            grids[grid_id].display_name,
            matters,
            peak,
            first_at,
            last_at,
        )
        for category_id, grid_id, matters, peak, first_at, last_at in found
    ]
