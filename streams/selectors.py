"""Reading the time series back: a device's series for any window at a fitting resolution.

On TimescaleDB minute and hour resolutions read the one-minute continuous aggregate; on plain
PostgreSQL the same query shape buckets the raw table with ``date_bin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from django.db import connection

from streams.timeseries import MINUTE_AGGREGATE, timescaledb_enabled

Resolution = Literal["raw", "minute", "hour", "auto"]
STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}
# TimescaleDB's default origin (a Monday, UTC midnight): both paths give the same buckets.
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Point:
    time: datetime
    avg: float
    min: float
    max: float
    count: int


def fitting_resolution(start: datetime, end: datetime) -> Literal["raw", "minute", "hour"]:
    """Aim for at most a few thousand points a chart."""
    span = end - start
    if span <= timedelta(hours=3):
        return "raw"
    if span <= timedelta(days=3):
        return "minute"
    return "hour"


def device_series(
    *,
    device_id: int,
    metric: str,
    start: datetime,
    end: datetime,
    resolution: Resolution = "auto",
) -> list[Point]:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if resolution == "auto":
        resolution = fitting_resolution(start, end)
    with connection.cursor() as cursor:
        if resolution == "raw":
            cursor.execute(
                "SELECT time, value, value, value, 1 FROM streams_reading"
                " WHERE device_id = %s AND metric = %s AND time >= %s AND time < %s"
                " ORDER BY time",
                [device_id, metric, start, end],
            )
        elif timescaledb_enabled(connection):
            cursor.execute(
                "SELECT time_bucket(%s, bucket) AS t, sum(avg * n) / sum(n), min(min), max(max),"
                f" sum(n) FROM {MINUTE_AGGREGATE}"
                " WHERE device_id = %s AND metric = %s AND bucket >= %s AND bucket < %s"
                " GROUP BY t ORDER BY t",
                [STEPS[resolution], device_id, metric, start, end],
            )
        else:
            cursor.execute(
                "SELECT date_bin(%s, time, %s::timestamptz) AS t, avg(value), min(value),"
                " max(value), count(*) FROM streams_reading"
                " WHERE device_id = %s AND metric = %s AND time >= %s AND time < %s"
                " GROUP BY t ORDER BY t",
                [STEPS[resolution], ORIGIN, device_id, metric, start, end],
            )
        return [Point(t, float(a), float(lo), float(hi), int(n)) for t, a, lo, hi, n in cursor]


def device_metrics(
    *, device_ids: list[int], start: datetime, end: datetime
) -> dict[int, list[str]]:
    """The metrics each device reported in the window, sorted: what there is to chart."""
    if not device_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT device_id, metric FROM streams_reading"
            " WHERE device_id = ANY(%s) AND time >= %s AND time < %s ORDER BY device_id, metric",
            [list(device_ids), start, end],
        )
        found: dict[int, list[str]] = {}
        for device_id, metric in cursor:
            found.setdefault(device_id, []).append(metric)
        return found
