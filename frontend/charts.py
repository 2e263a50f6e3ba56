"""A selected device's recent readings as SVG drawn on the server, with the alert thresholds
that apply to it: no chart library, the same drawing in every browser."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from alerts.models import AlertRule, Severity
from alerts.rules import rulebook
from command.org.models import Device
from streams.selectors import device_series

WIDTH, HEIGHT, PAD = 560.0, 150.0, 6.0
WINDOW = timedelta(hours=1)


@dataclass
class Threshold:
    value: float
    severity: str
    y: float = 0.0

    @property
    def label(self) -> str:
        return str(Severity(self.severity).label)


@dataclass
class MetricChart:
    metric: str
    latest: float | None
    latest_at: datetime | None
    low: float
    high: float
    line: str  # SVG path of the minute averages
    band: str  # SVG path of the min–max band
    thresholds: list[Threshold] = field(default_factory=list)


def _latest(device_id: int, since: datetime) -> dict[str, tuple[float, datetime]]:
    """The newest reading of each metric the device reported in the window."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (metric) metric, value, time FROM streams_reading"
            " WHERE device_id = %s AND time >= %s ORDER BY metric, time DESC",
            [device_id, since],
        )
        return {metric: (value, time) for metric, value, time in cursor}


def device_charts(device: Device, *, now: datetime | None = None) -> list[MetricChart]:
    now = now or timezone.now()
    start = now - WINDOW
    # The township's enabled rules, as ingest holds them (cached): the threshold ones that
    # apply to this device.
    rules = [
        r
        for r in rulebook.for_township(device.township_id)[0]
        if r.kind == AlertRule.Kind.THRESHOLD
        and r.threshold is not None
        and r.device_id in (None, device.pk)
    ]
    charts = []
    for metric, (latest, latest_at) in sorted(_latest(device.pk, start).items()):
        points = device_series(
            device_id=device.pk, metric=metric, start=start, end=now, resolution="minute"
        )
        thresholds = [Threshold(r.threshold, r.severity) for r in rules if r.metric == metric]
        values = [p.min for p in points] + [p.max for p in points] + [t.value for t in thresholds]
        low, high = min(values), max(values)
        if high - low < 1e-9:
            low, high = low - 1, high + 1
        span = high - low
        low, high = low - span * 0.05, high + span * 0.05

        def x(at: datetime) -> float:
            return PAD + (at - start).total_seconds() / WINDOW.total_seconds() * (WIDTH - 2 * PAD)

        def y(value: float, low: float = low, high: float = high) -> float:
            return PAD + (high - value) / (high - low) * (HEIGHT - 2 * PAD)

        line = " ".join(
            f"{'M' if i == 0 else 'L'}{x(p.time):.1f},{y(p.avg):.1f}" for i, p in enumerate(points)
        )
        upper = [f"{x(p.time):.1f},{y(p.max):.1f}" for p in points]
        lower = [f"{x(p.time):.1f},{y(p.min):.1f}" for p in reversed(points)]
        band = ("M" + " L".join(upper + lower) + " Z") if points else ""
        for threshold in thresholds:
            threshold.y = y(threshold.value)
        charts.append(MetricChart(metric, latest, latest_at, low, high, line, band, thresholds))
    return charts
