"""Sensor readings as SVG drawn on the server, with the alert thresholds that apply to the
device: no chart library, the same drawing in every browser.

One drawing for any window: the board's device panel draws the last hour, an incident's sensor
history the incident's window at a resolution that fits it, with its key moments marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.db import connection
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from alerts.models import Alert, AlertRule, Severity
from alerts.rules import rulebook
from command import clock
from command.org.models import Device
from incidents.models import Incident, Summons
from streams.selectors import STEPS, Point, device_metrics, device_series, fitting_resolution

WIDTH, HEIGHT, PAD = 560.0, 150.0, 6.0
WINDOW = timedelta(hours=1)

RESOLUTIONS = ("raw", "minute", "hour")
RESOLUTION_LABELS = {
    "raw": _("raw readings"),
    "minute": _("minute averages"),
    "hour": _("hourly averages"),
}
# A few thousand points a chart at most: a sensor reporting every 10 s gives 2,160 raw readings
# in 6 hours, and a week of minutes is 10,080. Longer windows are drawn coarser.
LONGEST = {"raw": timedelta(hours=6), "minute": timedelta(days=7)}
# The history reaches this far either side of the incident, to show what led to it and after.
MARGIN = timedelta(hours=1)
# Marker labels closer than this (a share of the width) go on separate rows so they stay legible.
LABEL_GAP = WIDTH * 0.16


@dataclass
class Threshold:
    value: float
    severity: str
    y: float = 0.0

    @property
    def label(self) -> str:
        return str(Severity(self.severity).label)

    @property
    def top(self) -> str:
        """Where the line is, as a percentage of the chart's height (for its HTML label)."""
        return f"{self.y / HEIGHT * 100:.1f}"


@dataclass
class Marker:
    """A moment on the time axis: one of the incident's key moments or a threshold crossing."""

    at: datetime
    kind: str  # a CSS class: opened, whistle, check-in, resolved, closed, crossed
    label: str
    severity: str = ""
    x: float = 0.0
    row: int = 0

    @property
    def left(self) -> str:
        return f"{self.x / WIDTH * 100:.2f}"


@dataclass
class MetricChart:
    metric: str
    latest: float | None
    latest_at: datetime | None
    low: float
    high: float
    line: str  # SVG path of the values (averages unless raw)
    band: str  # SVG path of the min–max band (none for raw readings)
    thresholds: list[Threshold] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    resolution: str = "minute"
    count: int = 0
    markers: list[Marker] = field(default_factory=list)

    @property
    def resolution_label(self) -> str:
        return str(RESOLUTION_LABELS[self.resolution])

    @property
    def marker_rows(self) -> int:
        return max((m.row for m in self.markers), default=-1) + 1


def threshold_rules(device: Device) -> list[AlertRule]:
    """The township's enabled threshold rules that apply to ``device``, as ingest holds them
    (cached), so a chart shows the lines the alerts are raised against."""
    return [
        r
        for r in rulebook.for_township(device.township_id)[0]
        if r.kind == AlertRule.Kind.THRESHOLD
        and r.threshold is not None
        and r.device_id in (None, device.pk)
    ]


def draw_chart(
    *,
    metric: str,
    points: Sequence[Point],
    start: datetime,
    end: datetime,
    resolution: str,
    thresholds: Iterable[Threshold] = (),
    markers: Iterable[Marker] = (),
    latest: tuple[float, datetime] | None = None,
) -> MetricChart:
    """Draw ``points`` (a series read at ``resolution``) over [start, end] on the chart's
    viewBox, the value axis wide enough for the thresholds too."""
    thresholds = list(thresholds)
    span = max((end - start).total_seconds(), 1.0)
    # A bucket stands for its whole step: drawn at its middle, an hour's average does not seem
    # to lead the readings it averages by half an hour.
    offset = STEPS[resolution] / 2 if resolution in STEPS else timedelta(0)

    def x(at: datetime) -> float:
        share = min(max((at - start).total_seconds() / span, 0.0), 1.0)
        return PAD + share * (WIDTH - 2 * PAD)

    values = [p.min for p in points] + [p.max for p in points] + [t.value for t in thresholds]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    margin = (high - low) * 0.05
    low, high = low - margin, high + margin

    def y(value: float) -> float:
        return PAD + (high - value) / (high - low) * (HEIGHT - 2 * PAD)

    placed_points = [(x(p.time + offset), p) for p in points]
    line = " ".join(
        f"{'M' if i == 0 else 'L'}{at:.1f},{y(p.avg):.1f}"
        for i, (at, p) in enumerate(placed_points)
    )
    band = ""
    if points and resolution != "raw":  # a raw reading's min and max are the reading
        upper = [f"{at:.1f},{y(p.max):.1f}" for at, p in placed_points]
        lower = [f"{at:.1f},{y(p.min):.1f}" for at, p in reversed(placed_points)]
        band = "M" + " L".join(upper + lower) + " Z"
    for threshold in thresholds:
        threshold.y = y(threshold.value)
    placed = _place(
        [replace(m, x=x(m.at)) for m in markers if start <= m.at <= end],
    )
    return MetricChart(
        metric=metric,
        latest=latest[0] if latest else None,
        latest_at=latest[1] if latest else None,
        low=low,
        high=high,
        line=line,
        band=band,
        thresholds=thresholds,
        start=start,
        end=end,
        resolution=resolution,
        count=len(points),
        markers=placed,
    )


def _place(markers: list[Marker]) -> list[Marker]:
    """Give each marker's label the first row where it does not overlap its left neighbour."""
    markers.sort(key=lambda m: m.at)
    row_ends: list[float] = []
    for marker in markers:
        row = next((i for i, end in enumerate(row_ends) if marker.x - end >= LABEL_GAP), None)
        if row is None:
            row = len(row_ends)
            row_ends.append(marker.x)
        row_ends[row] = marker.x
        marker.row = row
    return markers


# --- the board's device panel: the last hour -------------------------------------------------


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
    now = now or clock.now()
    start = now - WINDOW
    rules = threshold_rules(device)
    return [
        draw_chart(
            metric=metric,
            points=device_series(
                device_id=device.pk, metric=metric, start=start, end=now, resolution="minute"
            ),
            start=start,
            end=now,
            resolution="minute",
            thresholds=[Threshold(r.threshold, r.severity) for r in rules if r.metric == metric],
            latest=latest,
        )
        for metric, latest in sorted(_latest(device.pk, start).items())
    ]


# --- an incident's sensor history: the incident's window ---------------------------------------


@dataclass
class DeviceHistory:
    device: Device
    charts: list[MetricChart]
    # Not one of the incident's alerts' devices: a sensor of the incident's grid that crossed a
    # threshold in the window.
    nearby: bool = False


@dataclass
class SensorHistory:
    start: datetime
    end: datetime
    resolution: str  # the one drawn
    fitting: str  # the one that fits the window, drawn unless another is asked for
    notice: str  # why the resolution asked for is not the one drawn, if it is not
    devices: list[DeviceHistory]
    quiet: list[Device]  # involved, but without readings in the window (cameras, say)

    @property
    def choices(self) -> list[tuple[str, str, bool]]:
        """(resolution, label, fits the window) for the links that choose one."""
        return [(r, str(RESOLUTION_LABELS[r]), r == self.fitting) for r in RESOLUTIONS]

    @property
    def resolution_label(self) -> str:
        return str(RESOLUTION_LABELS[self.resolution])


def incident_window(
    incident: Incident, alerts: Sequence[Alert], *, now: datetime
) -> tuple[datetime, datetime]:
    """From an hour before the incident (or its first alert, if earlier) to an hour after it
    closed, or now while it is still open; never past now, where there is nothing to read."""
    began = min([incident.opened_at, *(a.first_seen for a in alerts)])
    start = began - MARGIN
    end = min(incident.closed_at + MARGIN, now) if incident.closed_at else now
    return start, max(end, start + timedelta(minutes=1))


def chosen_resolution(asked: str | None, start: datetime, end: datetime) -> tuple[str, str, str]:
    """(drawn, fitting, notice): the resolution asked for unless the window is too long for it,
    which the notice explains; the fitting one when none (or an unknown one) is asked for."""
    fitting = fitting_resolution(start, end)
    if asked not in RESOLUTIONS:
        return fitting, fitting, ""
    longest = LONGEST.get(asked)
    if longest is None or end - start <= longest:
        return asked, fitting, ""
    # The fitting resolution is always coarser here: it changes below these limits.
    facts = {"shown": RESOLUTION_LABELS[fitting]}
    if asked == "raw":
        facts |= {
            "limit": longest // timedelta(hours=1),
            "hours": (end - start) / timedelta(hours=1),
        }
        notice = gettext(
            "Raw readings are drawn for windows of up to %(limit)d hours; this window is"
            " %(hours).1f hours long, so the charts show %(shown)s."
        )
    else:
        facts |= {"limit": longest // timedelta(days=1), "days": (end - start) / timedelta(days=1)}
        notice = gettext(
            "Minute averages are drawn for windows of up to %(limit)d days; this window is"
            " %(days).1f days long, so the charts show %(shown)s."
        )
    return fitting, fitting, notice % facts


def _key_moments(incident: Incident) -> list[Marker]:
    first_whistle = incident.whistles.order_by("blown_at").values_list("blown_at", flat=True)
    first_check_in = (
        Summons.objects.filter(whistle__incident=incident, checked_in_at__isnull=False)
        .order_by("checked_in_at")
        .values_list("checked_in_at", flat=True)
    )
    moments = [
        (incident.opened_at, "opened", gettext("Incident opened")),
        (first_whistle.first(), "whistle", gettext("First whistle")),
        (first_check_in.first(), "check-in", gettext("First check-in")),
        (incident.resolved_at, "resolved", gettext("Incident resolved")),
        (incident.closed_at, "closed", gettext("Incident closed")),
    ]
    return [Marker(at, kind, label) for at, kind, label in moments if at is not None]


def _crossing(alert: Alert) -> Marker:
    return Marker(alert.first_seen, "crossed", gettext("Threshold crossed"), alert.severity)


def incident_history(
    incident: Incident, *, resolution: str | None = None, now: datetime | None = None
) -> SensorHistory:
    """The readings of the incident's devices around it: one chart per device and metric."""
    now = now or clock.now()
    alerts = list(incident.alerts.select_related("device").order_by("first_seen"))
    start, end = incident_window(incident, alerts, now=now)
    drawn, fitting, notice = chosen_resolution(resolution, start, end)
    devices: dict[int, Device] = {}
    for alert in alerts:
        if alert.device is not None:
            devices.setdefault(alert.device.pk, alert.device)
    involved = set(devices)
    if incident.grid_id:
        # The grid's sensors that crossed a threshold while it went on: one query, often the
        # reading behind what the camera or a person reported.
        nearby = (
            Alert.objects.filter(
                township_id=incident.township_id,
                source=Alert.Source.SENSOR,
                device__grid_id=incident.grid_id,
                first_seen__gte=start,
                first_seen__lt=end,
            )
            .exclude(device_id__in=involved)
            .select_related("device")
            .order_by("first_seen")
        )
        for alert in nearby:
            alerts.append(alert)
            devices.setdefault(alert.device.pk, alert.device)
    crossings: dict[tuple[int, str], list[Marker]] = {}
    for alert in alerts:
        metric = alert.detail.get("metric") if isinstance(alert.detail, dict) else None
        if alert.device_id and metric:
            crossings.setdefault((alert.device_id, metric), []).append(_crossing(alert))
    moments = _key_moments(incident)
    metrics = device_metrics(device_ids=list(devices), start=start, end=end)
    histories, quiet = [], []
    for device in devices.values():
        if device.pk not in metrics:
            quiet.append(device)
            continue
        rules = threshold_rules(device)
        charts = [
            draw_chart(
                metric=metric,
                points=device_series(
                    device_id=device.pk, metric=metric, start=start, end=end, resolution=drawn
                ),
                start=start,
                end=end,
                resolution=drawn,
                thresholds=[
                    Threshold(r.threshold, r.severity) for r in rules if r.metric == metric
                ],
                markers=moments + crossings.get((device.pk, metric), []),
            )
            for metric in metrics[device.pk]
        ]
        histories.append(DeviceHistory(device, charts, nearby=device.pk not in involved))
    return SensorHistory(start, end, drawn, fitting, notice, histories, quiet)
